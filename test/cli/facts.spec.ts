import { afterEach, describe, expect, it } from 'vitest'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cpus } from 'node:os'
import { runCli as run, type CliEntry, type RunCliOptions } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'
import { startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { startApi, type ApiServer } from '../../src/node/api.js'
import type { FleetNode } from '../../src/receipt/index.js'
import { generateSigningKey, writeSigningKey } from '../../src/envelope/index.js'
import { agentProcesses } from '../helpers/agent-process.js'

const dir = useTempDir('grapevine-cli-facts-')

async function factsDir (facts: Record<string, string>): Promise<string> {
  const d = join(dir(), 'facts.d')
  await mkdir(d, { recursive: true })
  for (const [name, text] of Object.entries(facts)) await writeFile(join(d, name), text)
  return d
}

describe('grapevine facts', () => {
  it('--json prints every fact, custom ones from --facts-dir beside the built-in ones', async () => {
    const d = await factsDir({ 'site.yaml': 'role: web\nrack: { row: 3 }\n' })
    const r = await run(['facts', '--json', '--facts-dir', d])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const facts = JSON.parse(r.stdout) as Record<string, unknown>
    expect(facts).toMatchObject({ os: { family: 'debian', name: 'debian', release: { major: '12' } }, kernel: { name: 'Linux' }, processors: { count: cpus().length }, role: 'web', rack: { row: 3 } })
    // Built-in facts first, custom ones after them in the order their files gave them.
    expect(Object.keys(facts)).toEqual(expect.arrayContaining(['os', 'kernel', 'architecture', 'hostname', 'fqdn', 'processors', 'init', 'memory', 'networking']))
    expect(Object.keys(facts).slice(-2)).toEqual(['role', 'rack'])
  })

  it('prints dotted lines, or one fact; a bad fact file is a warning on stderr naming it; a fact that is not there exits 1', async () => {
    const d = await factsDir({ 'a.json': '{"role": "web"}', 'b.json': '[1]' })
    const text = await run(['facts', '--facts-dir', d])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^os\.family: debian$/m)
    expect(text.stdout).toMatch(/^processors\.count: \d+$/m)
    expect(text.stdout).toMatch(/^role: web$/m)
    expect(text.stderr).toBe(`warning: ${join(d, 'b.json')}: expected a map of fact names to values, got a list; its facts are skipped\n`)

    const one = await run(['facts', 'os.family', '--facts-dir', d])
    expect([one.code, one.stdout]).toEqual([0, 'debian\n'])
    const release = await run(['facts', 'os.release', '--facts-dir', d])
    expect(release.stdout).toMatch(/^os\.release\.full: 12\.\d+\nos\.release\.major: 12\n/)
    const missing = await run(['facts', 'os.nope', '--facts-dir', d])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('error: no fact "os.nope" on this machine (grapevine facts lists them)')
  })
})

const POLICY = `
name: web/facts
target:
  facts: { os.family: debian, role: web }
resources:
  - { id: etc, type: directory, path: /etc }
  - id: motd
    type: file
    path: /etc/motd
    content: "{{ facts.os.family }} {{ facts.os.release.major }} {{ facts.role }} on {{ facts.processors.count }} cpus\\n"
`

describe.each<CliEntry>(['module', 'launcher'])('plan / apply with facts (%s)', (entry) => {
  const runCli = async (args: readonly string[], opts: RunCliOptions = {}): ReturnType<typeof run> => await run(args, { ...opts, entry })

  it('a policy targeting facts, templated from them, is applied where the facts match and not elsewhere', async () => {
    const file = join(dir(), 'policy.yaml')
    await writeFile(file, POLICY)
    const root = join(dir(), 'root')
    await mkdir(root)
    const web = await factsDir({ 'role.json': '{"role": "web"}' })
    const args = ['--root', root, '--state', join(dir(), 'state'), '--facts-dir', web]
    const plan = await runCli(['plan', file, ...args])
    expect(plan.stderr).toBe('')
    expect(plan.code).toBe(2)
    const apply = await runCli(['apply', file, ...args])
    expect(apply.code).toBe(2)
    expect(await readFile(join(root, 'etc/motd'), 'utf8')).toBe(`debian 12 web on ${cpus().length} cpus\n`)
    expect((await runCli(['apply', file, ...args])).code).toBe(0)

    const db = join(dir(), 'db.d')
    await mkdir(db)
    await writeFile(join(db, 'role.json'), '{"role": "db"}')
    const other = await runCli(['apply', file, '--root', join(dir(), 'other'), '--state', join(dir(), 'state'), '--facts-dir', db])
    expect(other.code).toBe(0)
    expect(other.stdout).toContain('policy "web/facts" does not target this node (name ')
    expect(other.stdout).toContain(', facts role="db" (wanted "web")); nothing to do')
  })

  it('a template naming a fact the node does not have fails, saying so', async () => {
    const file = join(dir(), 'policy.yaml')
    await writeFile(file, 'name: web/facts\nresources:\n  - { id: f, type: file, path: /f, content: "{{ facts.nope.x }}" }\n')
    const r = await runCli(['apply', file, '--root', dir(), '--state', join(dir(), 'state'), '--facts-dir', join(dir(), 'none')])
    expect(r.code).toBe(4)
    expect(r.stdout + r.stderr).toContain('this node has no fact "nope.x"')
  })
})

describe('grapevine fleet --where', () => {
  let mesh: TestMesh | undefined
  let api: ApiServer | undefined
  afterEach(async () => {
    await api?.close()
    await mesh?.stop()
    api = undefined
    mesh = undefined
  })

  it('lists only the nodes whose beacons carry every fact asked for', async () => {
    mesh = await startMesh(0)
    const m = mesh
    for (const [i, role] of ['web', 'db', 'web'].entries()) {
      const d = join(m.dir, `facts-${i}`)
      await mkdir(d)
      await writeFile(join(d, 'role.json'), JSON.stringify({ role, rack: String(i) }))
      await m.add({ factsDir: d, bootstrapFrom: i === 0 ? [] : [0] })
    }
    const [a0] = m.agents
    await waitFor(() => a0!.libp2p.getPeers().length === 2, 'the nodes to connect')
    for (const a of m.agents) await a.beacon()
    await waitFor(() => a0!.fleet.list().filter((n) => n.facts !== undefined).length === 3, 'every node\'s facts heard by node-0')
    api = await startApi(a0!, { stateDir: join(m.dir, 'node-0', 'state') })
    const agent = ['--agent', `unix:${api.socket!}`]

    const names = async (...where: string[]): Promise<string[]> => {
      const r = await run(['fleet', ...agent, '--json', ...where.flatMap((w) => ['--where', w])])
      expect(r.code).toBe(0)
      return (JSON.parse(r.stdout) as { nodes: FleetNode[] }).nodes.map((n) => n.name)
    }
    expect(await names()).toEqual(['node-0', 'node-1', 'node-2'])
    expect(await names('role=web')).toEqual(['node-0', 'node-2'])
    expect(await names('role=web', 'rack=2')).toEqual(['node-2'])
    expect(await names('os.family=debian', 'role=db')).toEqual(['node-1'])
    expect(await names('os=debian')).toEqual([])
    const all = JSON.parse((await run(['fleet', ...agent, '--json'])).stdout) as { nodes: FleetNode[] }
    expect(all.nodes[0]?.facts).toMatchObject({ os: { family: 'debian' }, role: 'web', rack: '0' })

    const text = await run(['fleet', ...agent, '--where', 'role=nobody'])
    expect(text.stdout).toBe('no node matches --where role=nobody\n')
    const bad = await run(['fleet', ...agent, '--where', 'role'])
    expect(bad.code).toBe(64)
    expect(bad.stderr).toContain('--where expects FACT=VALUE')

    // publish --wait judges target.facts by the beacons: the db node is not targeted, not waited for.
    const rootKey = join(m.dir, 'root.key')
    await writeSigningKey(rootKey, m.root)
    const policy = join(m.dir, 'web.json')
    await writeFile(policy, JSON.stringify({ name: 'web/role', target: { facts: { role: 'web', 'os.family': 'debian' } }, resources: [{ id: 'etc', type: 'directory', path: '/etc' }, { id: 'f', type: 'file', path: '/etc/role', content: '{{ facts.role }} {{ facts.rack }}\n' }] }))
    const published = await run(['publish', policy, '--key', rootKey, ...agent, '--wait', '--timeout', '30', '--json'])
    expect(published.stderr).toBe('')
    const out = JSON.parse(published.stdout) as { exitCode: number, timedOut: boolean, progress: { applied: FleetNode[], notTargeted: FleetNode[], pending: FleetNode[] } }
    expect(out.timedOut).toBe(false)
    expect(out.exitCode).toBe(0)
    expect(out.progress.applied.map((n) => n.name).sort()).toEqual(['node-0', 'node-2'])
    expect(out.progress.notTargeted.map((n) => n.name)).toEqual(['node-1'])
    expect(await readFile(join(m.dir, 'node-2', 'root', 'etc/role'), 'utf8')).toBe('web 2\n')
  })
})

describe('grapevine agent --facts-dir', () => {
  const spawnAgent = agentProcesses()

  it('gathers the custom facts there (flag or config key factsDir); status shows them; a bad file is logged, not fatal', async () => {
    const d = await factsDir({ 'a.json': '{"role": "web"}', 'b.yaml': 'role: [unclosed\n' })
    const trust = generateSigningKey().id
    const flag = await spawnAgent(['--state', join(dir(), 'state-1'), '--root', join(dir(), 'root-1'), '--trust', trust, '--facts-dir', d])
    const status = await run(['status', '--agent', `unix:${flag.api}`, '--json'])
    expect((JSON.parse(status.stdout) as { node: { facts: Record<string, unknown> } }).node.facts).toMatchObject({ os: { family: 'debian' }, role: 'web' })
    expect(flag.lines.find((l) => l.msg === 'agent started')?.facts).toMatch(/^debian 12\.\d+ \S+ (systemd|other)$/)
    const warned = flag.lines.filter((l) => l.msg === 'custom fact skipped').map((l) => l.warning)
    expect(warned).toHaveLength(1)
    expect(String(warned[0])).toMatch(new RegExp(`^${join(d, 'b.yaml')}: not valid YAML`))

    const config = join(dir(), 'agent.yaml')
    await writeFile(config, `factsDir: ${d}\n`)
    const fromConfig = await spawnAgent(['--config', config, '--state', join(dir(), 'state-2'), '--root', join(dir(), 'root-2'), '--trust', trust])
    const again = await run(['status', '--agent', `unix:${fromConfig.api}`, '--json'])
    expect((JSON.parse(again.stdout) as { node: { facts: Record<string, unknown> } }).node.facts).toMatchObject({ role: 'web' })
  })
})
