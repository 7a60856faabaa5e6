import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createTcpServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import { CHECK_OUTPUT_TAIL_BYTES, exitCodeFor, formatReport, runChecks, type CheckResult } from '../../src/apply/index.js'
import { validatePolicyObject, type Check, type ConfigPolicy } from '../../src/policy/index.js'
import { useTempDir } from '../helpers/tmp.js'
import { useSandbox } from './helpers.js'

/** Checks as a policy declares them, with the validator's defaults filled in. */
function checksOf (...checks: unknown[]): Check[] {
  return (validatePolicyObject({ name: 'test/checks', resources: [], checks }, '<test>') as ConfigPolicy).checks ?? []
}

const listen = async (server: Server | ReturnType<typeof createTcpServer>): Promise<number> => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}
const close = async (server: { close: (cb: () => void) => unknown }): Promise<void> => { await new Promise<void>((resolve) => server.close(() => resolve())) }

/** A port nothing listens on: one the system gave out and that was closed again. */
async function closedPort (): Promise<number> {
  const s = createTcpServer()
  const port = await listen(s)
  await close(s)
  return port
}

describe('runChecks: exec', () => {
  const dir = useTempDir('grapevine-checks-')
  const run = async (...checks: unknown[]): Promise<CheckResult[]> => await runChecks(checksOf(...checks), { root: dir(), policy: 'test/checks' })

  it('passes on exit 0 and fails on another status, with the output tail', async () => {
    const [ok, bad] = await run(
      { id: 'ok', type: 'exec', command: ['true'] },
      { id: 'bad', type: 'exec', command: 'echo looking; echo "nginx: [emerg] bad port" >&2; exit 3' }
    )
    expect(ok).toMatchObject({ id: 'ok', type: 'exec', passed: true, attempts: 1, message: 'true: exited 0' })
    expect(bad).toMatchObject({ id: 'bad', passed: false, attempts: 1, message: expect.stringContaining('exited 3') as string })
    expect(bad?.output).toBe('looking\nnginx: [emerg] bad port')
  })

  it('keeps only the last 2 KiB of output', async () => {
    const [r] = await run({ id: 'chatty', type: 'exec', command: 'i=0; while [ $i -lt 500 ]; do echo "line $i of noise"; i=$((i+1)); done; echo LAST; exit 1' })
    expect(Buffer.byteLength(r?.output ?? '')).toBeLessThanOrEqual(CHECK_OUTPUT_TAIL_BYTES)
    expect(r?.output?.endsWith('line 499 of noise\nLAST')).toBe(true)
  })

  it('fails a command that runs past its timeout, and kills it', async () => {
    const [r] = await run({ id: 'slow', type: 'exec', command: ['sleep', '30'], timeout: 0.2 })
    expect(r).toMatchObject({ passed: false, attempts: 1, message: 'sleep 30: timed out after 0.2 s' })
    expect(r?.durationMs).toBeLessThan(10_000)
  })

  it('retries a failing check, and passes once an attempt does', async () => {
    const counter = join(dir(), 'count')
    const script = `n=$(cat ${counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${counter}; echo "attempt $n"; [ $n -ge 3 ]`
    const [passed] = await run({ id: 'warming', type: 'exec', command: script, retries: 3, interval: 0.01 })
    expect(passed).toMatchObject({ passed: true, attempts: 3, output: 'attempt 3' })
    expect(await readFile(counter, 'utf8')).toBe('3\n')
  })

  it('fails after its retries are spent', async () => {
    const counter = join(dir(), 'count')
    const [failed] = await run({ id: 'down', type: 'exec', command: `n=$(cat ${counter} 2>/dev/null || echo 0); echo $((n+1)) > ${counter}; exit 1`, retries: 2, interval: 0 })
    expect(failed).toMatchObject({ passed: false, attempts: 3 })
    expect(await readFile(counter, 'utf8')).toBe('3\n')
  })

  it('says when a command cannot start', async () => {
    const [r] = await run({ id: 'missing', type: 'exec', command: ['/no/such/program'] })
    expect(r).toMatchObject({ passed: false, message: '/no/such/program: cannot start (ENOENT)' })
  })

  it('stops at once when aborted, failing the check', async () => {
    const controller = new AbortController()
    const pending = runChecks(checksOf({ id: 'wait', type: 'exec', command: ['sleep', '30'], timeout: 60 }), { root: dir(), policy: 'p', signal: controller.signal })
    controller.abort()
    const [r] = await pending
    expect(r?.passed).toBe(false)
  })
})

describe('runChecks: http', () => {
  let server: Server
  let port: number
  let hang: Array<() => void> = []
  beforeEach(async () => {
    server = createHttpServer((req, res) => {
      if (req.url === '/ok') res.end('fine')
      else if (req.url === '/down') { res.statusCode = 503; res.end('upstream is down\n') }
      else if (req.url === '/moved') { res.statusCode = 301; res.setHeader('location', '/ok'); res.end() }
      else if (req.url === '/hang') hang.push(() => res.end())
      else { res.statusCode = 404; res.end() }
    })
    port = await listen(server)
  })
  afterEach(async () => {
    for (const h of hang) h()
    hang = []
    server.closeAllConnections()
    await close(server)
  })
  const run = async (...checks: unknown[]): Promise<CheckResult[]> => await runChecks(checksOf(...checks), { root: '/', policy: 'p' })

  it('passes on a 2xx and fails on anything else, with the body tail', async () => {
    const [ok, down] = await run(
      { id: 'ok', type: 'http', url: `http://127.0.0.1:${port}/ok` },
      { id: 'down', type: 'http', url: `http://127.0.0.1:${port}/down` }
    )
    expect(ok).toMatchObject({ passed: true, message: `GET http://127.0.0.1:${port}/ok: HTTP 200` })
    expect(down).toMatchObject({ passed: false, message: `GET http://127.0.0.1:${port}/down: HTTP 503 (expected 2xx)`, output: 'upstream is down\n' })
  })

  it('passes on the status given, and does not follow redirects', async () => {
    const [moved, down] = await run(
      { id: 'moved', type: 'http', url: `http://127.0.0.1:${port}/moved`, status: 301 },
      { id: 'down', type: 'http', url: `http://127.0.0.1:${port}/down`, status: 503 }
    )
    expect(moved?.passed).toBe(true)
    expect(down?.passed).toBe(true)
    const [redirected] = await run({ id: 'r', type: 'http', url: `http://127.0.0.1:${port}/moved` })
    expect(redirected).toMatchObject({ passed: false, message: expect.stringContaining('HTTP 301') as string })
  })

  it('fails on a server that does not answer in time', async () => {
    const [r] = await run({ id: 'hang', type: 'http', url: `http://127.0.0.1:${port}/hang`, timeout: 0.2 })
    expect(r).toMatchObject({ passed: false, message: `GET http://127.0.0.1:${port}/hang: timed out after 0.2 s` })
  })

  it('fails on a refused connection, retrying as told', async () => {
    const closed = await closedPort()
    const [r] = await run({ id: 'gone', type: 'http', url: `http://127.0.0.1:${closed}/`, retries: 1, interval: 0 })
    expect(r).toMatchObject({ passed: false, attempts: 2, message: `GET http://127.0.0.1:${closed}/: ECONNREFUSED` })
  })
})

describe('runChecks: tcp', () => {
  it('passes when a connection opens and fails when it is refused', async () => {
    const server = createTcpServer((s) => s.end())
    const port = await listen(server)
    const closed = await closedPort()
    try {
      const [open, shut] = await runChecks(checksOf(
        { id: 'open', type: 'tcp', host: '127.0.0.1', port },
        { id: 'shut', type: 'tcp', host: '127.0.0.1', port: closed }
      ), { root: '/', policy: 'p' })
      expect(open).toMatchObject({ passed: true, message: `connected to 127.0.0.1:${port}` })
      expect(shut).toMatchObject({ passed: false, message: `connect 127.0.0.1:${closed}: ECONNREFUSED` })
    } finally {
      await close(server)
    }
  })
})

describe('applyPolicy runs the checks', () => {
  const sandbox = useSandbox()
  const policy = (checks: unknown[]): ConfigPolicy => validatePolicyObject({
    name: 'test/apply',
    resources: [{ id: 'page', type: 'file', path: '/index.html', content: 'hello' }],
    checks
  }, '<test>') as ConfigPolicy

  it('after the resources, so a check sees what the apply wrote; a failing one makes the report unhealthy (exit 8)', async () => {
    const s = sandbox()
    const p = policy([
      { id: 'written', type: 'exec', command: 'grep -q hello "$GRAPEVINE_ROOT/index.html"' },
      { id: 'broken', type: 'exec', command: 'echo "port 80 is taken" >&2; exit 1' }
    ])
    const report = await s.apply(p)
    expect(report.outcome).toBe('changes')
    expect(report.health).toBe('unhealthy')
    expect(report.checks?.map((c) => [c.id, c.passed])).toEqual([['written', true], ['broken', false]])
    expect(exitCodeFor(report)).toBe(8)
    const text = formatReport(report).join('\n')
    expect(text).toContain('health: unhealthy, 1 of 2 checks after the apply failed: broken')
    expect(text).toContain('port 80 is taken')
  })

  it('a plan runs them against the current state and says so', async () => {
    const s = sandbox()
    const report = await s.plan(policy([{ id: 'written', type: 'exec', command: 'test -f "$GRAPEVINE_ROOT/index.html"' }]))
    expect(report.health).toBe('unhealthy')
    expect(formatReport(report).join('\n')).toContain('health: unhealthy, 1 of 1 checks of the current state (plan changes nothing first) failed: written')
    await s.apply(policy([]))
    const again = await s.plan(policy([{ id: 'written', type: 'exec', command: 'test -f "$GRAPEVINE_ROOT/index.html"' }]))
    expect(again.health).toBe('healthy')
    expect(exitCodeFor(again)).toBe(0)
  })

  it('an exec check\'s env is templated with the node\'s facts, as an exec\'s is', async () => {
    const s = sandbox()
    const report = await s.apply(validatePolicyObject({
      name: 'test/apply',
      vars: { want: 'web' },
      resources: [],
      checks: [{ id: 'role', type: 'exec', command: 'echo "$ROLE on $NODE"; test "$ROLE" = "$WANT"', env: { ROLE: '{{ node.tags.role }}', NODE: '{{ node.name }}', WANT: '{{ vars.want }}' } }]
    }, '<test>') as ConfigPolicy)
    expect(report.checks?.[0]).toMatchObject({ passed: true, output: 'web on web1' })
  })

  it('a stop while the checks run leaves no health (not a false unhealthy) and marks the run aborted', async () => {
    const s = sandbox()
    const controller = new AbortController()
    const p = policy([{ id: 'slow', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/started"; sleep 30', timeout: 60 }])
    const running = s.apply(p, { signal: controller.signal })
    const { access } = await import('node:fs/promises')
    for (let i = 0; i < 2000 && !(await access(s.at('/started')).then(() => true, () => false)); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    controller.abort()
    const report = await running
    expect(report.aborted).toBe(true)
    // As any stopped apply: the node has not converged, so the exit code says failures.
    expect(exitCodeFor(report)).toBe(6)
    expect(report.health).toBeUndefined()
    expect(report.checks?.[0]?.passed).toBe(false)
  })

  it('resource failures keep exit 4 or 6 when a check fails too; a policy without checks has no health', async () => {
    const s = sandbox()
    const failing = validatePolicyObject({
      name: 'test/apply',
      resources: [{ id: 'boom', type: 'exec', command: ['false'] }],
      checks: [{ id: 'c', type: 'exec', command: ['false'] }]
    }, '<test>') as ConfigPolicy
    const report = await s.apply(failing)
    expect(report.health).toBe('unhealthy')
    expect(exitCodeFor(report)).toBe(4)
    const none = await s.apply(policy([]))
    expect(none.health).toBeUndefined()
    expect(none.checks).toBeUndefined()
  })
})
