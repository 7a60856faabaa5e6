// The netns engine as a user runs it (root): `grapevine sim --engine netns` spawned, its
// results.json read, and the machine checked afterwards for anything the run left behind.
import { execFile, spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { CLI_PATH, REPO_ROOT, runCli } from '../helpers/cli.js'
import { makeTempDir, removeTempDir, useTempDir } from '../helpers/tmp.js'

const run = promisify(execFile)
const isRoot = process.getuid?.() === 0

interface NetnsResult {
  passed: boolean
  engine: { kind: string, network?: { hosts: number, perHost: number, delay: string, setupMs: number, teardownMs?: number } }
  publishes: Array<{ id: string, applied: number, targeted: number, times: { t100?: number }, held?: { t100?: number } }>
}

/** Everything on this machine named with the run's prefix: namespaces, links, iptables rules. */
async function leftovers (prefix: string): Promise<string[]> {
  const named = new RegExp(`${prefix}(?![0-9])`)
  const [ns, links, rules] = await Promise.all([run('ip', ['netns', 'list']), run('ip', ['-o', 'link', 'show']), run('iptables-save')])
  return [...ns.stdout.split('\n'), ...links.stdout.split('\n'), ...rules.stdout.split('\n')].filter((l) => named.test(l))
}

async function until (what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }

const prefixIn = (text: string): string | undefined => /network up in [^(]*\((gv\d+)\*/.exec(text)?.[1]

/** A scenario that runs long enough to be interrupted: 4 agents on 2 hosts, 20 ms, a publish late. */
function longScenario (): string {
  return [
    'name: netns-long',
    'engine: netns',
    'nodes: { count: 4, perHost: 2 }',
    'topology: { kind: random, peers: 1 }',
    'network: { latency: 20ms }',
    'policies: { motd: { name: t/motd, resources: [{ id: m, type: file, path: /etc/motd, content: hi }] } }',
    'timeline:',
    '  - { at: 60s, do: publish, policy: motd }',
    ''
  ].join('\n')
}

/** Starts the CLI on a scenario and resolves once its network is up and its clock runs, with the run's prefix. */
async function startLong (file: string, out: string): Promise<{ child: ReturnType<typeof spawn>, prefix: string, pids: number[], exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI_PATH, 'sim', file, '--out', out, '--settle', '0'], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { text += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { text += d })
  const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
  await until('the run\'s clock to start', async () => text.includes('timeline starts') || child.exitCode !== null, 60_000)
  const prefix = prefixIn(text)
  if (prefix === undefined) throw new Error(`no network line in the output:\n${text}`)
  // The processes in its namespaces: a worker per host, a delayer per host.
  const pids = (await Promise.all([0, 1].map(async (h) => (await run('ip', ['netns', 'pids', `${prefix}-h${h}`])).stdout.split('\n').filter((l) => l !== '').map(Number)))).flat()
  return { child, prefix, pids, exited }
}

describe.runIf(isRoot)('grapevine sim --engine netns (root)', () => {
  const dir = useTempDir('grapevine-netns-')

  it('runs netns-smoke: 6 agents on 3 host namespaces, kernel delay and loss; every node applies; nothing is left behind', async () => {
    const out = join(dir(), 'out')
    const r = await runCli(['sim', 'netns-smoke', '--out', out, '--settle', '0', '--json'], { timeoutMs: 120_000, env: { CI: 'true' } })
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as NetnsResult
    expect(result.passed).toBe(true)
    expect(result.engine.kind).toBe('netns')
    expect(result.engine.network).toMatchObject({ hosts: 3, perHost: 2 })
    // This kernel has no netem: the NFQUEUE delayer does the delay (netem where the kernel has it).
    expect(['nfqueue', 'netem']).toContain(result.engine.network?.delay)
    expect(result.engine.network?.teardownMs).toBeGreaterThan(0)
    const motd = result.publishes.find((p) => p.id === 'motd')
    expect(motd).toMatchObject({ applied: 6, targeted: 6 })
    // Every other node is at least one 20 ms hop from the publisher, and all held well before the deadline.
    expect(motd?.held?.t100).toBeGreaterThanOrEqual(20)
    expect(motd?.times.t100).toBeGreaterThanOrEqual(20)
    expect(motd?.times.t100).toBeLessThan(20_000)
    const prefix = prefixIn(r.stderr)
    expect(prefix, r.stderr).toBeDefined()
    expect(await leftovers(prefix as string)).toEqual([])
  }, 130_000)

  it('holds a partition with iptables (drop, then reset mode) until the heal; the far side gets the publish only after it', async () => {
    for (const mode of ['drop', 'reset']) {
      const file = join(dir(), `part-${mode}.yaml`)
      await writeFile(file, [
        `name: netns-part-${mode}`,
        'engine: netns',
        'nodes: { count: 4 }',
        'topology: { kind: ring }',
        'network: { latency: 5ms }',
        'agent: { syncInterval: 2s }',
        'policies: { motd: { name: t/motd, resources: [{ id: m, type: file, path: /etc/motd, content: hi }] } }',
        'timeline:',
        `  - { at: 500ms, do: partition, groups: [first 50%, rest], mode: ${mode}, id: split }`,
        '  - { at: 1500ms, do: publish, policy: motd, from: node-0 }',
        '  - { at: 5s, do: heal, id: heal }',
        'expect:',
        '  - { check: delivered, within: 30s }',
        ''
      ].join('\n'))
      const out = join(dir(), `out-${mode}`)
      const r = await runCli(['sim', file, '--out', out, '--settle', '0', '--json'], { timeoutMs: 120_000, env: { CI: 'true' } })
      expect(r.code, r.stderr).toBe(0)
      const record = JSON.parse(await readFile(join(out, 'record.json'), 'utf8')) as { markers: Array<{ id: string, at: number }>, deliveries: Array<{ node: number, name: string, at: number }> }
      const heal = record.markers.find((m) => m.id === 'heal')?.at as number
      const got = (node: number): number | undefined => record.deliveries.find((d) => d.node === node && d.name === 't/motd')?.at
      // node-1 is on the publisher's side (4 hosts, one agent each): it gets it during the cut.
      expect(got(1)).toBeLessThan(heal)
      for (const far of [2, 3]) expect(got(far), `${mode}: node-${far}`).toBeGreaterThanOrEqual(heal)
      expect(await leftovers(prefixIn(r.stderr) as string)).toEqual([])
    }
  }, 250_000)

  it('tears everything down when the coordinator is SIGKILLed (the reaper), and on SIGTERM (its own teardown)', async () => {
    const file = join(dir(), 'long.yaml')
    await writeFile(file, longScenario())
    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      const run = await startLong(file, join(dir(), `out-${signal}`))
      expect(await leftovers(run.prefix)).not.toEqual([])
      expect(run.pids.length).toBeGreaterThanOrEqual(4)
      run.child.kill(signal)
      await run.exited
      await until(`${signal}: nothing named ${run.prefix} left`, async () => (await leftovers(run.prefix)).length === 0, 20_000)
      await until(`${signal}: the workers and delayers gone`, async () => run.pids.every((p) => !alive(p)), 20_000)
    }
  }, 200_000)
})

describe.runIf(isRoot)('the sweep of dead runs (root)', () => {
  it('removes what a run whose coordinator is gone left behind: namespace, bridge, FORWARD rule', async () => {
    // A pid that existed and is gone: a finished child's.
    const done = spawn('true')
    await new Promise((resolve) => done.once('exit', resolve))
    const prefix = `gv${done.pid as number}`
    await run('ip', ['netns', 'add', `${prefix}-h0`])
    await run('ip', ['link', 'add', `${prefix}br`, 'type', 'bridge'])
    await run('iptables', ['-I', 'FORWARD', '-i', `${prefix}br`, '-o', `${prefix}br`, '-j', 'ACCEPT', '-m', 'comment', '--comment', prefix])
    expect(await leftovers(prefix)).toHaveLength(3)
    const code = `import(${JSON.stringify(join(REPO_ROOT, 'dist', 'sim', 'netns', 'index.js'))}).then((m) => m.sweepDeadRuns()).then((p) => console.log(JSON.stringify(p)))`
    const r = await run(process.execPath, ['-e', code])
    expect(JSON.parse(r.stdout)).toContain(prefix)
    expect(await leftovers(prefix)).toEqual([])
  })
})

describe('grapevine sim --engine netns without root', () => {
  it('says it needs root in one line and exits 77', async () => {
    const node = process.execPath
    const args = [CLI_PATH, 'sim', 'netns-smoke', '--engine', 'netns', '--out', '/tmp/never']
    const nobody = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', node]
    // As nobody where nobody can read the checkout; else (a checkout under /root) as root in a
    // user namespace of its own, where it is uid 65534 with no privilege over the host's network.
    const readable = isRoot && await run(nobody[0] as string, [...nobody.slice(1), '-e', `require('fs').accessSync(${JSON.stringify(join(REPO_ROOT, 'node_modules', 'commander'))})`]).then(() => true, () => false)
    const [command, ...prefix] = readable ? nobody : ['unshare', '--user', node]
    const r = isRoot
      ? await run(command as string, [...prefix, ...args], { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1' } }).then(() => ({ code: 0, stderr: '' }), (e: { code: number, stderr: string }) => ({ code: e.code, stderr: e.stderr }))
      : await runCli(args.slice(1))
    expect(r.code).toBe(77)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/the netns engine needs root/)
  })

  it('names the Debian packages when the delayer cannot be built (no compiler on PATH)', async () => {
    const dir = await makeTempDir('grapevine-nfq-')
    try {
      const code = `import(${JSON.stringify(join(REPO_ROOT, 'dist', 'sim', 'netns', 'index.js'))}).then((m) => m.buildDelayer(${JSON.stringify(join(dir, 'nfq-delay'))})).then(() => console.log('built'), (e) => console.log(e.name + ': ' + e.message))`
      const r = await run(process.execPath, ['-e', code], { env: { PATH: '/nonexistent' } })
      expect(r.stdout).toMatch(/^DelayerBuildError: cannot build the NFQUEUE delayer .*: no C compiler \(cc\); install the Debian packages gcc libnetfilter-queue-dev/)
    } finally {
      await removeTempDir(dir)
    }
  })
})

describe.runIf(isRoot)('grapevine sim --engine netns past one /24 (root)', () => {
  const dir = useTempDir('grapevine-netns-big-')

  it('refuses more hosts than the subnet holds in one line, exit 69, rather than crowding agents onto fewer', async () => {
    const file = join(dir(), 'big.yaml')
    await writeFile(file, `name: big\nnodes: { count: 260 }\npolicies: { motd: ${join(REPO_ROOT, 'simulations', 'policies', 'motd.yaml')} }\ntimeline:\n  - { at: 1s, do: publish, policy: motd }\n`)
    const r = await runCli(['sim', file, '--engine', 'netns', '--out', join(dir(), 'out')])
    expect(r.code).toBe(69)
    expect(r.stderr.trim().split('\n')).toEqual(['error: 260 hosts: the netns engine makes at most 250 (one /24); put more agents on each with nodes.perHost'])
  })
})
