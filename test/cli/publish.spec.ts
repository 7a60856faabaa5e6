import { afterEach, describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.js'
import { startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { writeSigningKey } from '../../src/envelope/index.js'
import { startApi, type ApiServer } from '../../src/node/api.js'

let mesh: TestMesh | undefined
let api: ApiServer | undefined
afterEach(async () => {
  await api?.close()
  await mesh?.stop()
  mesh = undefined
  api = undefined
})

const POLICY = (extra = '') => `name: site/motd
resources:
  - id: etc
    type: directory
    path: /etc
  - id: motd
    type: file
    path: /etc/motd
    content: "hello {{ node.name }}${extra}\\n"
`

/** Five agents, two tagged role=db; the admin key file is the mesh's root key. */
async function setup (): Promise<{ m: TestMesh, key: string, boot: string, dir: string }> {
  const m = await startMesh(0)
  for (let i = 0; i < 5; i++) await m.add({ bootstrapFrom: i === 0 ? [] : [i - 1], tags: { role: i < 2 ? 'db' : 'web' } })
  const key = join(m.dir, 'root.key')
  await writeSigningKey(key, m.root)
  // Every node announces itself once connected; wait until node 0 has heard all five.
  await waitFor(() => m.agents[0]!.fleet.size === 5, 'presence beacons from all nodes')
  return { m, key, boot: m.agents[0]!.multiaddrs[0]!, dir: m.dir }
}

describe('publish --wait', () => {
  it('reports every node applied and exits 0', async () => {
    const { m, key, boot, dir } = await setup()
    mesh = m
    await writeFile(join(dir, 'p.yaml'), POLICY())
    const r = await runCli(['publish', join(dir, 'p.yaml'), '--key', key, '--bootstrap', boot, '--wait', '--timeout', '30', '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ name: 'site/motd', version: 1, timedOut: false })
    expect(out.progress.applied).toHaveLength(5)
    expect(out.progress.failed).toHaveLength(0)
    for (let i = 0; i < 5; i++) expect(await readFile(join(dir, `node-${i}`, 'root/etc/motd'), 'utf8')).toBe(`hello node-${i}\n`)
  })

  it('names the failing nodes and their error, and exits 4', async () => {
    const { m, key, boot, dir } = await setup()
    mesh = m
    await writeFile(join(dir, 'p.yaml'), POLICY() + `  - id: check
    type: exec
    env: { ROLE: "{{ node.tags.role }}" }
    command: ['/bin/sh', '-c', 'test "$ROLE" != db || { echo db nodes refuse this >&2; exit 1; }']
    requires: [motd]
`)
    const r = await runCli(['publish', join(dir, 'p.yaml'), '--key', key, '--bootstrap', boot, '--wait', '--timeout', '30'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(4)
    expect(r.stdout).toMatch(/3\/5 reported|5\/5 reported/)
    expect(r.stdout).toContain('FAILED node-0 (role=db)')
    expect(r.stdout).toContain('FAILED node-1 (role=db)')
    expect(r.stdout).toContain('db nodes refuse this')
    expect(r.stdout).not.toContain('FAILED node-2')
  })

  it('learns the next version late, rolls back, and retires', async () => {
    const { m, key, boot, dir } = await setup()
    mesh = m
    await writeFile(join(dir, 'p.yaml'), POLICY())
    expect((await runCli(['publish', join(dir, 'p.yaml'), '--key', key, '--bootstrap', boot])).code).toBe(0)
    await writeFile(join(dir, 'p.yaml'), POLICY(' v2'))
    // A publisher that joins through another node still learns that v1 exists.
    const late = await runCli(['publish', join(dir, 'p.yaml'), '--key', key, '--bootstrap', m.agents[4]!.multiaddrs[0]!, '--json'])
    expect(late.code).toBe(0)
    expect(JSON.parse(late.stdout)).toMatchObject({ version: 2, previous: { version: 1 } })
    await waitFor(() => m.agents.every((a) => a.envelope('site/motd')?.version === 2), 'v2 everywhere')

    api = await startApi(m.agents[2]!, { stateDir: join(dir, 'node-2', 'state') })
    const rb = await runCli(['rollback', 'site/motd', '--to', '1', '--key', key, '--agent', `unix:${api.socket ?? ''}`, '--wait', '--json'])
    expect(rb.code).toBe(0)
    expect(JSON.parse(rb.stdout)).toMatchObject({ version: 3 })
    await waitFor(async () => await readFile(join(dir, 'node-3/root/etc/motd'), 'utf8') === 'hello node-3\n', 'v1 content back as v3')
    expect(m.agents[3]!.envelope('site/motd')?.hash).toBe(m.agents[3]!.status().policies.find((p) => p.name === 'site/motd')?.hash)

    const rt = await runCli(['retire', 'site/motd', '--key', key, '--bootstrap', boot, '--wait', '--json'])
    expect(rt.code).toBe(0)
    expect(JSON.parse(rt.stdout).progress.applied.every((n: { outcome: string }) => n.outcome === 'retired')).toBe(true)
    await waitFor(() => m.agents.every((a) => a.status().policies.find((p) => p.name === 'site/motd')?.kind === 'retired'), 'retired everywhere')
    // The files stay as they were.
    expect(await readFile(join(dir, 'node-3/root/etc/motd'), 'utf8')).toBe('hello node-3\n')

    const fleet = await runCli(['fleet', '--bootstrap', boot, '--json'])
    expect(fleet.code).toBe(0)
    expect(JSON.parse(fleet.stdout).nodes).toHaveLength(5)
  })

  it('leaves every node on one winner when two admins publish the same version at once', async () => {
    const { m, key, boot, dir } = await setup()
    mesh = m
    await writeFile(join(dir, 'a.yaml'), POLICY(' from a'))
    await writeFile(join(dir, 'b.yaml'), POLICY(' from b'))
    const [ra, rb] = await Promise.all([
      runCli(['publish', join(dir, 'a.yaml'), '--key', key, '--bootstrap', boot, '--version', '7', '--json']),
      runCli(['publish', join(dir, 'b.yaml'), '--key', key, '--bootstrap', m.agents[4]!.multiaddrs[0]!, '--version', '7', '--json'])
    ])
    await waitFor(() => new Set(m.agents.map((a) => a.envelope('site/motd')?.hash)).size === 1 && m.agents.every((a) => a.envelope('site/motd') !== undefined), 'one winner everywhere')
    const winner = m.agents[0]!.envelope('site/motd')!.hash
    const results = [JSON.parse(ra.stdout), JSON.parse(rb.stdout)]
    const loser = results.find((r) => r.hash !== winner)
    // The loser learns it lost, either at once or (if its envelope arrived first somewhere) from the nodes' digests.
    if (loser.conflictLost === true) expect([ra.code, rb.code]).toContain(3)
    await waitFor(() => m.agents.some((a) => a.status().conflicts.some((c) => c.kind === 'version' && c.version === 7)), 'a recorded conflict')
  })
})

describe('publish and retire say when there is nothing to do (issue 15)', () => {
  it('republishing unchanged content publishes nothing and exits 0 unless --force; retiring an unknown name exits 65', async () => {
    const m = await startMesh(0)
    mesh = m
    for (let i = 0; i < 2; i++) await m.add({ bootstrapFrom: i === 0 ? [] : [0] })
    const key = join(m.dir, 'root.key')
    await writeSigningKey(key, m.root)
    const boot = m.agents[0]!.multiaddrs[0]!
    const file = join(m.dir, 'p.yaml')
    await writeFile(file, POLICY())
    expect((await runCli(['publish', file, '--key', key, '--bootstrap', boot])).code).toBe(0)
    await waitFor(() => m.agents.every((a) => a.envelope('site/motd')?.version === 1), 'v1 everywhere')

    const again = await runCli(['publish', file, '--key', key, '--bootstrap', boot])
    expect(again.stderr).toBe('')
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/^unchanged, nothing published: site\/motd v1 already has this content/)
    const json = await runCli(['publish', file, '--key', key, '--bootstrap', boot, '--json'])
    expect(JSON.parse(json.stdout)).toMatchObject({ name: 'site/motd', unchanged: true, version: 1, exitCode: 0 })

    const forced = await runCli(['publish', file, '--key', key, '--bootstrap', boot, '--force', 're-apply everywhere', '--json'])
    expect(forced.code).toBe(0)
    expect(JSON.parse(forced.stdout)).toMatchObject({ version: 2, previous: { version: 1 } })
    await waitFor(() => m.agents.every((a) => a.envelope('site/motd')?.version === 2), 'v2 everywhere')
    // Nothing was bumped by the unchanged publishes in between.
    expect(m.agents.map((a) => a.envelope('site/motd')?.version)).toEqual([2, 2])

    const nope = await runCli(['retire', 'web/nope', '--key', key, '--bootstrap', boot])
    expect(nope.code).toBe(65)
    expect(nope.stderr).toContain('the mesh holds no policy named web/nope, so there is nothing to retire')
    expect(m.agents.every((a) => a.envelope('web/nope') === undefined)).toBe(true)

    expect((await runCli(['retire', 'site/motd', '--key', key, '--bootstrap', boot])).code).toBe(0)
    await waitFor(() => m.agents.every((a) => a.envelope('site/motd')?.version === 3), 'the tombstone everywhere')
    const twice = await runCli(['retire', 'site/motd', '--key', key, '--bootstrap', boot])
    expect(twice.code).toBe(0)
    expect(twice.stdout).toMatch(/^unchanged, nothing published: site\/motd v3/)
  })
})
