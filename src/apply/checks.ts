import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Check, ExecCheck, HttpCheck, TcpCheck } from '../policy/schema.js'
import { describeCommand, runCommand, TailBuffer, type RunOptions } from './command.js'
import { resolveRunAs, spawnIdentity } from './run-as.js'
import { hostPath } from './paths.js'
import { CHECK_OUTPUT_TAIL_BYTES, EXEC_PATH } from './constants.js'
import { redactRun, type ReportRedactor } from './redact.js'

/** What one health check found, as reports and receipts carry it. */
export interface CheckResult {
  id: string
  type: Check['type']
  passed: boolean
  /** Attempts made: 1 plus the retries used. */
  attempts: number
  /** The last attempt in a line: `exited 1`, `HTTP 503`, `connected to 127.0.0.1:80`. */
  message: string
  /** The last attempt's output tail (a command's stdout and stderr, a response body), at most CHECK_OUTPUT_TAIL_BYTES. */
  output?: string
  durationMs: number
}

/** `healthy` when every check passed (or there were none), else `unhealthy`. */
export type Health = 'healthy' | 'unhealthy'

export interface ChecksOptions {
  /** `--root`: an exec check's cwd is under it, as an exec resource's is. */
  root: string
  policy: string
  /** Stops the checks: a running command is killed, a request or connection given up, and the check fails. */
  signal?: AbortSignal
  now?: () => number
  /** The agent's uid, for `run_as`; defaults to this process's. */
  uid?: number
  /** The passwd file `run_as` names are looked up in. */
  passwd?: string
  /** Called as each check finishes, for live progress. */
  onResult?: (result: CheckResult) => void
  /** An exec check's env as it runs (the applier substitutes templates); a throw fails the attempt with its message. Default: `env` as written. */
  renderEnv?: (check: ExecCheck) => Record<string, string>
  /** Hides the apply's secrets in every message and output tail, before `onResult` sees them. */
  redact?: ReportRedactor
}

interface Attempt {
  passed: boolean
  message: string
  output?: string
}

export function healthOf (results: readonly CheckResult[]): Health {
  return results.every((r) => r.passed) ? 'healthy' : 'unhealthy'
}

/**
 * Runs a policy's health checks one after another, each up to `retries + 1` times with
 * `interval` seconds between attempts. Checks only look: they run in a plan as in an apply.
 * Never rejects: a check that cannot even start fails with the reason.
 */
export async function runChecks (checks: readonly Check[], opts: ChecksOptions): Promise<CheckResult[]> {
  const now = opts.now ?? Date.now
  const results: CheckResult[] = []
  for (const check of checks) {
    const t0 = now()
    let attempt: Attempt = { passed: false, message: 'not run: the checks were stopped' }
    let attempts = 0
    for (let i = 0; i <= check.retries && opts.signal?.aborted !== true; i++) {
      if (i > 0) {
        try {
          await sleep(check.interval * 1000, undefined, { signal: opts.signal })
        } catch {
          break
        }
      }
      attempts++
      attempt = await attemptOnce(check, opts).catch((err: Error) => ({ passed: false, message: err.message }))
      if (attempt.passed) break
    }
    const result: CheckResult = { id: check.id, type: check.type, passed: attempt.passed, attempts, message: opts.redact?.text(attempt.message) ?? attempt.message, durationMs: now() - t0 }
    if (attempt.output !== undefined && attempt.output !== '') result.output = opts.redact?.text(attempt.output) ?? attempt.output
    results.push(result)
    try {
      opts.onResult?.(result)
    } catch {
      // A progress callback's bug must not cost the report.
    }
  }
  return results
}

async function attemptOnce (check: Check, opts: ChecksOptions): Promise<Attempt> {
  switch (check.type) {
    case 'exec': return await execAttempt(check, opts)
    case 'http': return await httpAttempt(check, opts.signal, opts.redact)
    case 'tcp': return await tcpAttempt(check, opts.signal)
  }
}

/** The last CHECK_OUTPUT_TAIL_BYTES of `text`, cut between characters. */
export function outputTail (text: string): string {
  const buf = new TailBuffer(CHECK_OUTPUT_TAIL_BYTES)
  buf.push(Buffer.from(text))
  return buf.toString()
}

async function execAttempt (check: ExecCheck, opts: ChecksOptions): Promise<Attempt> {
  let user: RunOptions['user']
  let home = process.env.HOME ?? '/'
  if (check.run_as !== undefined) {
    const resolved = await resolveRunAs(check.run_as, opts.passwd)
    const identity = typeof resolved === 'string' ? resolved : spawnIdentity(resolved, opts.uid ?? process.getuid?.())
    if (typeof identity === 'string' || typeof resolved === 'string') return { passed: false, message: `cannot run as "${check.run_as}": ${String(identity)}` }
    user = identity
    home = resolved.home
  }
  const env = { PATH: EXEC_PATH, HOME: home, GRAPEVINE_ROOT: opts.root, GRAPEVINE_POLICY: opts.policy, GRAPEVINE_CHECK: check.id, ...(opts.renderEnv?.(check) ?? check.env) }
  // Redacted before the two streams are joined and cut to a tail, so no cut leaves part of a value.
  const res = redactRun(await runCommand(check.command, { cwd: hostPath(opts.root, check.cwd ?? '/'), env, timeoutMs: check.timeout * 1000, signal: opts.signal, user }), opts.redact)
  // Both streams, stdout first: a check script says what it found on either.
  const output = outputTail([res.stdout.trimEnd(), res.stderr.trimEnd()].filter((s) => s !== '').join('\n'))
  const shown = describeCommand(check.command)
  if (res.spawnError !== undefined) return { passed: false, message: `${shown}: cannot start (${res.spawnError})` }
  if (res.timedOut) return { passed: false, message: `${shown}: timed out after ${check.timeout} s`, output }
  if (res.aborted) return { passed: false, message: `${shown}: stopped`, output }
  if (res.signal !== null) return { passed: false, message: `${shown}: killed by ${res.signal}`, output }
  return { passed: res.exitCode === 0, message: `${shown}: exited ${String(res.exitCode)}`, output }
}

async function httpAttempt (check: HttpCheck, signal?: AbortSignal, redact?: ReportRedactor): Promise<Attempt> {
  const timeout = AbortSignal.timeout(check.timeout * 1000)
  const both = signal === undefined ? timeout : AbortSignal.any([timeout, signal])
  try {
    // A redirect is an answer, not a reason to go elsewhere: `status: 301` can check for it.
    const res = await fetch(check.url, { method: 'GET', redirect: 'manual', signal: both })
    const body = await bodyTail(res, redact)
    const passed = check.status !== undefined ? res.status === check.status : res.status >= 200 && res.status < 300
    const expected = check.status !== undefined ? String(check.status) : '2xx'
    return { passed, message: `GET ${check.url}: HTTP ${res.status}${passed ? '' : ` (expected ${expected})`}`, output: body }
  } catch (err) {
    if (timeout.aborted) return { passed: false, message: `GET ${check.url}: timed out after ${check.timeout} s` }
    const e = err as Error & { cause?: { code?: string, message?: string } }
    return { passed: false, message: `GET ${check.url}: ${e.cause?.code ?? e.cause?.message ?? e.message}` }
  }
}

/** The last bytes of a response body, read as it streams, so a huge page costs no memory. */
async function bodyTail (res: Response, redact?: ReportRedactor): Promise<string> {
  const buf = new TailBuffer(CHECK_OUTPUT_TAIL_BYTES)
  if (res.body === null) return ''
  for await (const chunk of res.body) buf.push(Buffer.from(chunk as Uint8Array))
  const text = buf.toString()
  return redact === undefined ? text : buf.dropped > 0 ? redact.tail(text) : redact.text(text)
}

async function tcpAttempt (check: TcpCheck, signal?: AbortSignal): Promise<Attempt> {
  const where = check.host.includes(':') ? `[${check.host}]:${check.port}` : `${check.host}:${check.port}`
  return await new Promise<Attempt>((resolve) => {
    const socket = connect({ host: check.host, port: check.port })
    const done = (a: Attempt): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      socket.destroy()
      resolve(a)
    }
    const timer = setTimeout(() => done({ passed: false, message: `connect ${where}: timed out after ${check.timeout} s` }), check.timeout * 1000)
    const onAbort = (): void => done({ passed: false, message: `connect ${where}: stopped` })
    signal?.addEventListener('abort', onAbort, { once: true })
    if (signal?.aborted === true) onAbort()
    socket.once('connect', () => done({ passed: true, message: `connected to ${where}` }))
    socket.once('error', (err: NodeJS.ErrnoException) => done({ passed: false, message: `connect ${where}: ${err.code ?? err.message}` }))
  })
}

/** How a failing check is named where resources are: `check:<id>` (a resource id has no ":", so the two never meet). */
export const checkFailureName = (id: string): string => `check:${id}`

/**
 * The failing checks as failures in a receipt or status: the check's name, and its result with
 * the end of its output, cut from the front so that the whole fits in `maxChars`: the end of
 * a log says most about why.
 */
export function checkFailures (results: readonly CheckResult[] | undefined, maxChars: number): Array<{ resource: string, error: string }> {
  return (results ?? []).filter((c) => !c.passed).map((c) => {
    const output = c.output?.trimEnd() ?? ''
    const room = maxChars - c.message.length - 5
    if (output === '' || room <= 0) return { resource: checkFailureName(c.id), error: c.message }
    const tail = output.length <= room ? output : `...${output.slice(output.length - room + 3)}`
    return { resource: checkFailureName(c.id), error: `${c.message}\n${tail}` }
  })
}
