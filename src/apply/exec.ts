import { lstat } from 'node:fs/promises'
import type { CommandLine, ExecResource } from '../policy/index.js'
import { describeCommand, runCommand, type RunOptions, type RunResult } from './command.js'
import { resolveRunAs, spawnIdentity, type RunAsUser } from './run-as.js'
import { EXEC_ERROR_TAIL_BYTES, EXEC_PATH } from './constants.js'
import { ExecFailedError, ExecTimeoutError } from './errors.js'
import type { RootGuard } from './paths.js'
import type { Action, ExecOutput, Status } from './report.js'
import { redactRun, type ReportRedactor } from './redact.js'

/** Whether a resource that notifies this exec changed: plan may not know when the notifier is itself an exec. */
export type Notified = { state: 'yes' | 'maybe', by: string[] } | { state: 'no', by: [] }

export interface ExecContext {
  guard: RootGuard
  policy: string
  dryRun: boolean
  runGuards: boolean
  signal?: AbortSignal
  notified: Notified
  /** Who could notify this exec, for "runs only when notified by ..." */
  notifiers: string[]
  /** Directories a plan expects earlier resources to create. */
  plannedDirs: ReadonlySet<string>
  /** The agent's uid, for `run_as`; defaults to this process's. */
  uid?: number
  /** The passwd file `run_as` names are looked up in; defaults to /etc/passwd. */
  passwd?: string
  /** Hides the apply's secrets in the output, before an error message or a shorter tail is cut from it. */
  redact?: ReportRedactor
}

export interface ExecOutcome {
  action: Action
  status: Status
  reason?: string
  warnings?: string[]
  exec?: ExecOutput
  error?: Error
}

const list = (ids: string[]): string => ids.map((id) => `"${id}"`).join(', ')
const quote = (c: CommandLine): string => `\`${describeCommand(c)}\``

/** The minimal environment commands run with: the policy's `env` goes on top. */
export function execEnv (r: ExecResource, root: string, policy: string, home = process.env.HOME ?? '/'): Record<string, string> {
  return {
    PATH: EXEC_PATH,
    HOME: home,
    GRAPEVINE_ROOT: root,
    GRAPEVINE_POLICY: policy,
    GRAPEVINE_RESOURCE: r.id,
    ...r.env
  }
}

function tail (text: string): string {
  const t = text.trimEnd()
  return t.length <= EXEC_ERROR_TAIL_BYTES ? t : `...${t.slice(t.length - EXEC_ERROR_TAIL_BYTES)}`
}

/** Turns a finished run into the error it means, or undefined for exit 0. */
export function runError (command: CommandLine, r: RunResult, timeoutSeconds: number): Error | undefined {
  const shown = describeCommand(command)
  if (r.spawnError !== undefined) return new ExecFailedError(shown, null, null, `cannot start (${r.spawnError})`)
  if (r.timedOut) return new ExecTimeoutError(shown, timeoutSeconds)
  if (r.aborted) return new ExecFailedError(shown, r.exitCode, r.signal, 'stopped: the apply was aborted')
  if (r.signal !== null) return new ExecFailedError(shown, null, r.signal, `killed by ${r.signal}${r.stderr.trim() !== '' ? `: ${tail(r.stderr)}` : ''}`)
  if (r.exitCode !== 0) {
    const out = r.stderr.trim() !== '' ? r.stderr : r.stdout
    return new ExecFailedError(shown, r.exitCode, null, `exited ${String(r.exitCode)}${out.trim() !== '' ? `: ${tail(out)}` : ''}`)
  }
  return undefined
}

/**
 * Decides whether an exec runs and runs it. In a plan nothing is run except, with
 * `runGuards`, the unless/onlyif guards (which are meant to be read-only).
 * `creates` and `cwd` are under the root; the command itself runs on the real system.
 */
export async function applyExec (r: ExecResource, ctx: ExecContext): Promise<ExecOutcome> {
  const root = ctx.guard.root
  const because = ctx.notified.state !== 'no' ? `notified by ${list(ctx.notified.by)}` : undefined

  if (r.refreshonly && ctx.notified.state === 'no') {
    const by = ctx.notifiers.length > 0 ? ` by ${list(ctx.notifiers)}` : ' (nothing notifies it)'
    return { action: 'none', status: 'ok', reason: ctx.dryRun ? `would run if notified${by}` : `refresh only, not notified${by}` }
  }

  if (r.creates !== undefined) {
    const host = ctx.guard.host(r.creates)
    await ctx.guard.check(r.creates, host)
    if (await lstat(host).then(() => true, () => false)) return { action: 'none', status: 'ok', reason: `creates ${r.creates}, which exists` }
  }

  const cwdPath = r.cwd ?? '/'
  const cwd = ctx.guard.host(cwdPath)
  const cwdExists = await ctx.guard.check(cwdPath, cwd, true)
  if (!cwdExists && !(ctx.dryRun && ctx.plannedDirs.has(cwdPath))) {
    return { action: 'none', status: 'failed', error: new ExecFailedError(describeCommand(r.command), null, null, `cwd ${cwdPath} does not exist`) }
  }

  let user: RunOptions['user']
  let home: string | undefined
  if (r.run_as !== undefined) {
    // Resolved before anything runs, guards included: they run as the same user.
    const resolved = await resolveRunAs(r.run_as, ctx.passwd)
    const identity = typeof resolved === 'string' ? resolved : spawnIdentity(resolved, ctx.uid ?? process.getuid?.())
    if (typeof identity === 'string') {
      return { action: 'none', status: 'failed', error: new ExecFailedError(describeCommand(r.command), null, null, `cannot run as "${r.run_as}": ${identity}`) }
    }
    user = identity
    home = (resolved as RunAsUser).home
  }
  const env = execEnv(r, root, ctx.policy, home)
  const timeoutMs = r.timeout * 1000
  const guards: Array<['unless' | 'onlyif', CommandLine]> = []
  if (r.unless !== undefined) guards.push(['unless', r.unless])
  if (r.onlyif !== undefined) guards.push(['onlyif', r.onlyif])

  if (ctx.dryRun && !ctx.runGuards && guards.length > 0) {
    const which = guards.map(([k, c]) => `${k} ${quote(c)}`).join(' and ')
    return { action: 'run', status: 'unknown', reason: `would run, guarded by ${which} (not run; plan --run-guards runs guards)${because !== undefined ? `; ${because}` : ''}` }
  }
  for (const [kind, command] of guards) {
    const res = redactRun(await runCommand(command, { cwd: cwdExists ? cwd : root, env, timeoutMs, signal: ctx.signal, user }), ctx.redact)
    if (res.spawnError !== undefined || res.timedOut || res.aborted || res.signal !== null) {
      // The guard itself could not give an answer; the command was not run.
      return { action: 'none', status: 'failed', error: runError(command, res, r.timeout), exec: output(res) }
    }
    if (kind === 'unless' && res.exitCode === 0) return { action: 'none', status: 'ok', reason: `unless ${quote(command)} exited 0` }
    if (kind === 'onlyif' && res.exitCode !== 0) return { action: 'none', status: 'ok', reason: `onlyif ${quote(command)} exited ${String(res.exitCode)}` }
  }

  if (ctx.dryRun) {
    const status: Status = ctx.notified.state === 'maybe' && r.refreshonly ? 'unknown' : 'ok'
    const reason = status === 'unknown' ? `would run if ${list(ctx.notified.by)} change` : because !== undefined ? `would run, ${because}` : 'would run'
    return { action: 'run', status, reason }
  }

  const res = redactRun(await runCommand(r.command, { cwd, env, timeoutMs, signal: ctx.signal, user }), ctx.redact)
  const error = runError(r.command, res, r.timeout)
  const outcome: ExecOutcome = { action: 'run', status: error === undefined ? 'ok' : 'failed', exec: output(res) }
  if (error !== undefined) outcome.error = error
  if (because !== undefined) outcome.reason = because
  if (error === undefined && r.creates !== undefined && !(await lstat(ctx.guard.host(r.creates)).then(() => true, () => false))) {
    outcome.warnings = [`the command succeeded but ${r.creates} still does not exist, so it will run again on the next apply`]
  }
  return outcome
}

function output (r: RunResult): ExecOutput {
  return { exitCode: r.exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr }
}
