import { afterEach, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { filePolicy, nextEvent, startMesh, waitFor, type TestMesh } from './fixtures.js'
import { generateSigningKey } from '../../src/envelope/index.js'
import { trustPolicy } from '../helpers/envelope.js'
import type { Agent } from '../../src/node/agent.js'

/** A revoked admin's content stops being applied at once, on a running node, not at its next restart. */
describe('live revocation', () => {
  let mesh: TestMesh | undefined
  afterEach(async () => { await mesh?.stop(); mesh = undefined })

  const read = async (agent: Agent, dir: string, i: number): Promise<string> => await readFile(join(dir, `node-${i}`, 'root', 'site'), 'utf8')

  it('a stale node drops what a revoked key signed when it learns the revocation: it falls back to the newest allowed version, or reports the policy untrusted', async () => {
    mesh = await startMesh(1)
    const agent = mesh.agents[0]!
    const admin = generateSigningKey()
    const grant = mesh.sign(trustPolicy([{ key: admin.id, scopes: ['web/'] }]), 1)
    const revoke = mesh.sign(trustPolicy([], [admin.id]), 2)
    expect(await agent.ingest(grant, 'sync')).toBe('accepted')
    // web/site v1 from the root, v2 from the admin; web/app only ever from the admin.
    expect(await agent.ingest(mesh.sign(filePolicy('web/site', 'root v1\n', '/site'), 1), 'sync')).toBe('accepted')
    expect(await agent.ingest(mesh.sign(filePolicy('web/site', 'admin v2\n', '/site'), 2, admin), 'gossip')).toBe('accepted')
    expect(await agent.ingest(mesh.sign(filePolicy('web/app', 'admin app\n', '/app'), 1, admin), 'gossip')).toBe('accepted')
    await agent.idle()
    expect(await read(agent, mesh.dir, 0)).toBe('admin v2\n')

    // The revocation arrives (a node that was offline during it catches up by sync).
    const fellBack = nextEvent(agent, 'applied', ({ envelope }) => envelope.name === 'web/site' && envelope.version === 1)
    expect(await agent.ingest(revoke, 'sync')).toBe('accepted')
    await fellBack
    await agent.idle()

    // web/site: back to the newest version the trust policy allows, applied.
    expect(agent.envelope('web/site')?.version).toBe(1)
    expect(await read(agent, mesh.dir, 0)).toBe('root v1\n')
    // web/app: nothing allowed to fall back to; no longer held or applied, its file left as it is, reported.
    expect(agent.envelope('web/app')).toBeUndefined()
    expect(await readFile(join(mesh.dir, 'node-0', 'root', 'app'), 'utf8')).toBe('admin app\n')
    const status = agent.status()
    expect(status.untrusted).toEqual([expect.objectContaining({ name: 'web/app', version: 1, signer: admin.id, reason: 'revoked' })])
    expect(status.policies.map((p) => p.name)).not.toContain('web/app')
    const history = await agent.readHistory()
    expect(history.filter((h) => h.event === 'untrusted').map((h) => [h.name, h.version])).toEqual(expect.arrayContaining([['web/site', 2], ['web/app', 1]]))
    expect(history.some((h) => h.event === 'accepted' && h.name === 'web/site' && h.version === 1 && h.via === 'disk')).toBe(true)

    // What the revoked key signed is refused from now on; an honest newer version is taken.
    expect(await agent.ingest(mesh.sign(filePolicy('web/site', 'admin v3\n', '/site'), 3, admin), 'gossip')).toBe('rejected')
    expect(await agent.ingest(mesh.sign(filePolicy('web/site', 'root v2\n', '/site'), 2), 'gossip')).toBe('accepted')
    await agent.idle()
    expect(await read(agent, mesh.dir, 0)).toBe('root v2\n')
  })

  it('fleet views show an untrusted policy, from the node\'s beacons', async () => {
    mesh = await startMesh(2)
    const [a, b] = mesh.agents as [Agent, Agent]
    const admin = generateSigningKey()
    await a.ingest(mesh.sign(trustPolicy([{ key: admin.id, scopes: ['web/'] }]), 1), 'sync')
    await a.ingest(mesh.sign(filePolicy('web/app', 'admin app\n', '/app'), 1, admin), 'sync')
    await a.ingest(mesh.sign(trustPolicy([], [admin.id]), 2), 'sync')
    await a.beacon()
    await waitFor(() => b.fleet.list().find((n) => n.id === a.facts.id)?.policies['web/app']?.outcome === 'untrusted', 'b to hear that web/app is untrusted on a')
  })

  it('a node restarted after the revocation falls back too', async () => {
    mesh = await startMesh(1)
    const agent = mesh.agents[0]!
    const admin = generateSigningKey()
    await agent.ingest(mesh.sign(trustPolicy([{ key: admin.id, scopes: ['web/'] }]), 1), 'sync')
    await agent.ingest(mesh.sign(filePolicy('web/site', 'root v1\n', '/site'), 1), 'sync')
    await agent.ingest(mesh.sign(filePolicy('web/site', 'admin v2\n', '/site'), 2, admin), 'sync')
    await agent.idle()
    await agent.stop()
    // The revocation is on disk before the next start, as if written by an earlier run.
    const { StateStore } = await import('../../src/store/index.js')
    const store = await StateStore.open(join(mesh.dir, 'node-0', 'state'))
    await store.saveEnvelope('grapevine/trust', mesh.sign(trustPolicy([], [admin.id]), 2), 2)
    const restarted = await mesh.add({ stateDir: join(mesh.dir, 'node-0', 'state'), root: join(mesh.dir, 'node-0', 'root') })
    await waitFor(() => restarted.envelope('web/site')?.version === 1, 'the restarted node to fall back to v1')
    await restarted.idle()
    expect(await read(restarted, mesh.dir, 0)).toBe('root v1\n')
  })
})
