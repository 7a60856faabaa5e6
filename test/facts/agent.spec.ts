import { afterEach, describe, expect, it } from 'vitest'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cpus } from 'node:os'
import { filePolicy, startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import type { Agent } from '../../src/node/agent.js'
import { RecordingLogger } from '../node/fakes.js'

let mesh: TestMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

async function fileIn (agent: Agent, path: string): Promise<string | undefined> {
  try {
    return await readFile(join(agent.status().node.root, path), 'utf8')
  } catch {
    return undefined
  }
}

async function factsDir (m: TestMesh, name: string, facts: Record<string, unknown>): Promise<string> {
  const dir = join(m.dir, `facts-${name}`)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'role.json'), JSON.stringify(facts))
  return dir
}

describe('an agent\'s facts', () => {
  it('choose what it applies (target.facts) and fill its templates ({{ facts.* }}), are gathered again before each apply, and travel in its beacons', async () => {
    mesh = await startMesh(0)
    const m = mesh
    const webFacts = await factsDir(m, 'web', { role: 'web' })
    const dbFacts = await factsDir(m, 'db', { role: 'db' })
    const web = await m.add({ factsDir: webFacts })
    // Re-applies every 200 ms: a change to its facts.d is seen at the next apply.
    const db = await m.add({ factsDir: dbFacts, bootstrapFrom: [0], reapplyInterval: 200 })
    expect(web.facts.facts).toMatchObject({ os: { family: 'debian' }, role: 'web' })

    const policy = filePolicy('web/motd', 'family={{ facts.os.family }} role={{ facts.role }} cpus={{ facts.processors.count }}\n', '/etc/motd', {
      target: { facts: { 'os.family': 'debian', role: 'web' } }
    })
    await waitFor(() => web.libp2p.getPeers().length > 0, 'the two nodes to connect')
    expect((await web.publish(m.sign(policy, 1))).outcome).toBe('accepted')
    await waitFor(async () => await fileIn(web, '/etc/motd') !== undefined, 'the web node to apply it')
    expect(await fileIn(web, '/etc/motd')).toBe(`family=debian role=web cpus=${cpus().length}\n`)
    await waitFor(() => db.envelope('web/motd') !== undefined && db.status().policies.find((p) => p.name === 'web/motd')?.targeted === false, 'the db node to hold it, not targeted')
    expect(await fileIn(db, '/etc/motd')).toBeUndefined()

    // Beacons carry the facts: each node's fleet view shows the other's.
    await db.beacon()
    await waitFor(() => web.fleet.list().find((n) => n.id === db.facts.id)?.facts?.role === 'db', 'the db node\'s facts in the web node\'s fleet view')
    expect(web.fleet.list().find((n) => n.id === db.facts.id)?.facts).toMatchObject({ os: { family: 'debian' }, role: 'db' })

    // The db node's facts.d now says web: its next apply sees it, and it applies the policy.
    await writeFile(join(dbFacts, 'role.json'), JSON.stringify({ role: 'web' }))
    await waitFor(async () => await fileIn(db, '/etc/motd') === `family=debian role=web cpus=${cpus().length}\n`, 'the db node, now role=web, to apply it')
    await db.beacon()
    await waitFor(() => web.fleet.list().find((n) => n.id === db.facts.id)?.facts?.role === 'web', 'its new facts in the web node\'s fleet view')
  })

  it('a bad fact file is a warning, never a stop', async () => {
    mesh = await startMesh(0)
    const m = mesh
    const dir = join(m.dir, 'facts-bad')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'a-bad.json'), '{ not json')
    await writeFile(join(dir, 'b-good.yaml'), 'role: web\n')
    const log = new RecordingLogger()
    const agent = await m.add({ factsDir: dir, logger: log })
    expect(agent.facts.facts).toMatchObject({ role: 'web' })
    expect(agent.status().node.facts).toMatchObject({ role: 'web' })
    const warnings = log.at('warn').filter((l) => l.msg === 'custom fact skipped').map((l) => l.obj.warning)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(new RegExp(`^${join(dir, 'a-bad.json')}: not valid JSON`))
  })
})
