import { afterEach, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { filePolicy, startMesh, waitFor, type TestMesh } from './fixtures.js'
import { multiaddr, type GrapevineLibp2p } from '../../src/net/libp2p.js'
import { startRogue } from './rogue.js'
import { envelopeId, generateSigningKey, signPolicy } from '../../src/envelope/index.js'
import { policyTopic } from '../../src/node/constants.js'
import { trustPolicy } from '../helpers/envelope.js'
import type { Agent } from '../../src/node/agent.js'

let mesh: TestMesh | undefined
let rogue: GrapevineLibp2p | undefined
afterEach(async () => {
  await rogue?.stop()
  await mesh?.stop()
  mesh = undefined
  rogue = undefined
})

const site = async (m: TestMesh, i: number): Promise<string> => await readFile(join(m.dir, `node-${i}`, 'root', 'site'), 'utf8')

describe('version integrity against a hostile peer', () => {
  it('a withheld higher version released later is a visible fork, never a rollback', async () => {
    mesh = await startMesh(3)
    const m = mesh
    const [a] = m.agents as [Agent]
    const admin = generateSigningKey()
    await a.publish(m.sign(trustPolicy([{ key: admin.id, scopes: ['web/'] }]), 1))
    await waitFor(() => m.agents.every((x) => x.status().trust.policyVersion === 1), 'trust everywhere')
    // The admin published content A through a malicious bootstrap that claimed the mesh held
    // v999 (an id nobody holds); the peer kept the signed v1000.
    const withheld = signPolicy(filePolicy('web/site', 'A\n', '/site'), { version: 1000, key: admin, prev: 'f'.repeat(64) })
    // Later the admin publishes B and C through honest agents.
    await a.publish(m.sign(filePolicy('web/site', 'B\n', '/site'), 1, admin))
    await a.publish(m.sign(filePolicy('web/site', 'C\n', '/site'), 2, admin))
    await waitFor(() => m.agents.every((x) => x.envelope('web/site')?.version === 2), 'C (v2) everywhere')

    // The attacker releases v1000: by gossip to one node, and by sync to another.
    rogue = await startRogue({ offers: [withheld] })
    const forks = m.agents.map(() => 0)
    m.agents.forEach((x, i) => { x.on('fork', () => { forks[i]!++ }) })
    await rogue.dial(multiaddr(m.agents[1]!.multiaddrs[0]!))
    await waitFor(() => rogue!.services.pubsub.getSubscribers(policyTopic('default')).length > 0, 'the rogue to see a subscriber')
    await rogue.services.pubsub.publish(policyTopic('default'), withheld)
    await rogue.dial(multiaddr(m.agents[2]!.multiaddrs[0]!)) // a new connection syncs at once
    await waitFor(() => forks[1]! > 0 && forks[2]! > 0, 'nodes 1 and 2 to see the fork')

    for (const [i, x] of m.agents.entries()) {
      await x.idle()
      expect(x.envelope('web/site')?.version).toBe(2)
      expect(await site(m, i)).toBe('C\n')
    }
    for (const x of [m.agents[1]!, m.agents[2]!]) {
      expect(x.status().forks).toEqual([expect.objectContaining({ name: 'web/site', held: expect.objectContaining({ version: 2 }), offered: expect.objectContaining({ version: 1000, id: envelopeId(withheld) }) })])
      expect((await x.readHistory()).some((h) => h.event === 'fork' && h.name === 'web/site' && h.version === 1000)).toBe(true)
    }
    // The honest mesh goes on: v3 extends v2 everywhere, and the fork is no longer open.
    await a.publish(m.sign(filePolicy('web/site', 'D\n', '/site'), 3, admin))
    await waitFor(() => m.agents.every((x) => x.envelope('web/site')?.version === 3), 'D (v3) everywhere')
  })

  it('no envelope makes a name unpublishable: a jump to the end of the integers is refused, even from a trusted insider', async () => {
    mesh = await startMesh(1)
    const m = mesh
    const a = m.agents[0]!
    const admin = generateSigningKey()
    await a.ingest(m.sign(trustPolicy([{ key: admin.id, scopes: ['web/'] }]), 1), 'local')
    const v1 = m.sign(filePolicy('web/site', 'one\n', '/site'), 1, admin)
    expect(await a.ingest(v1, 'local')).toBe('accepted')
    // A trusted insider extends the chain, but jumps to 2^53 − 1.
    const last = signPolicy(filePolicy('web/site', 'stuck\n', '/site'), { version: Number.MAX_SAFE_INTEGER, key: admin, prev: envelopeId(v1) })
    expect(await a.ingest(last, 'gossip')).toBe('ignored')
    expect(a.envelope('web/site')?.version).toBe(1)
    expect(a.status().forks).toEqual([expect.objectContaining({ reason: 'jump' })])
    // Even a root cannot jump that far; the next honest version is taken.
    expect(await a.ingest(signPolicy(filePolicy('web/site', 'root\n', '/site'), { version: Number.MAX_SAFE_INTEGER, key: m.root }), 'local')).toBe('ignored')
    expect(await a.ingest(m.sign(filePolicy('web/site', 'two\n', '/site'), 2, admin), 'local')).toBe('accepted')
  })

  it('a newer version that extends what a node lacks is taken once sync brings the versions between', async () => {
    mesh = await startMesh(2)
    const m = mesh
    const [a, b] = m.agents as [Agent, Agent]
    const admin = generateSigningKey()
    const trust = m.sign(trustPolicy([{ key: admin.id, scopes: ['web/'] }]), 1)
    await a.ingest(trust, 'local')
    await b.ingest(trust, 'local')
    const v1 = m.sign(filePolicy('web/site', 'one\n', '/site'), 1, admin)
    await a.ingest(v1, 'local')
    await b.ingest(v1, 'local')
    // b misses v2 and v3 (taken by a alone), then gets v4 by gossip from a.
    await a.ingest(m.sign(filePolicy('web/site', 'two\n', '/site'), 2, admin), 'local')
    await a.ingest(m.sign(filePolicy('web/site', 'three\n', '/site'), 3, admin), 'local')
    const v4 = m.sign(filePolicy('web/site', 'four\n', '/site'), 4, admin)
    await a.ingest(v4, 'local')
    await a.idle()
    expect(await b.ingest(v4, 'gossip', a.peerId.toString())).toBe('ignored')
    await waitFor(() => b.envelope('web/site')?.version === 4, 'b to catch up along the chain')
    expect(b.status().forks).toEqual([])
    expect((await b.readHistory()).filter((h) => h.event === 'accepted' && h.name === 'web/site').map((h) => h.version)).toEqual([1, 2, 3, 4])
  })
})
