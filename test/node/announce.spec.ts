import { afterEach, describe, expect, it } from 'vitest'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { nextEvent, startMesh, waitFor, type TestMesh } from './fixtures.js'
import type { Agent, AgentTraffic } from '../../src/node/agent.js'
import { announceTopic } from '../../src/node/constants.js'
import { validatePolicyObject, type Policy } from '../../src/policy/index.js'
import { encodeAnnouncement, validateEnvelope, type VerifiedEnvelope } from '../../src/envelope/index.js'
import { multiaddr, TopicValidatorResult, type PeerId } from '../../src/net/libp2p.js'
import { canonicalBytes } from '../../src/envelope/index.js'

/** The announcement validator the agent installed in gossipsub, called directly so each case sees its own result. */
async function validate (agent: Agent, bytes: Uint8Array, from: PeerId): Promise<TopicValidatorResult> {
  const topic = announceTopic(agent.mesh)
  const validator = agent.libp2p.services.pubsub.topicValidators.get(topic)
  if (validator === undefined) throw new Error(`no validator for ${topic}`)
  return await validator(from, { type: 'unsigned', topic, data: bytes })
}

function fields (bytes: Uint8Array): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>
}

let mesh: TestMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

/** A policy of two ~600 KB files (no templating): an envelope of about 1.2 MB. */
function largePolicy (name: string, fill: string): Policy {
  const big = (i: number): string => `${fill}-${i}\n`.padEnd(600_000, fill)
  return validatePolicyObject({
    kind: 'policy',
    name,
    resources: [
      { id: 'srv', type: 'directory', path: '/srv' },
      { id: 'dir', type: 'directory', path: '/srv/large' },
      { id: 'a', type: 'file', path: '/srv/large/a.bin', content: big(1), template: false },
      { id: 'b', type: 'file', path: '/srv/large/b.bin', content: big(2), template: false }
    ]
  })
}

function received (t: AgentTraffic): number {
  return t.gossipBytesReceived + t.syncBytesReceived + t.fetchBytesReceived
}

interface MeshPubSub { getMeshPeers: (topic: string) => string[] }

/** Every agent dials every other, then each has at least two gossip mesh peers on the topic. */
async function fullMesh (m: TestMesh, topic: string): Promise<void> {
  for (const a of m.agents) {
    for (const b of m.agents) {
      if (a !== b && a.libp2p.getConnections(b.peerId).length === 0) await a.libp2p.dial(multiaddr(b.multiaddrs[0] as string))
    }
  }
  const want = Math.min(2, m.agents.length - 1)
  await waitFor(() => m.agents.every((a) => (a.libp2p.services.pubsub as unknown as MeshPubSub).getMeshPeers(topic).length >= want), `gossip meshes of at least ${want} peers`)
}

async function appliedEverywhere (m: TestMesh, name: string, version: number): Promise<void> {
  await waitFor(async () => {
    const sizes = await Promise.all(m.agents.map(async (a) => await stat(join(a.status().node.root, 'srv/large/b.bin')).then((s) => s.size, () => 0)))
    return m.agents.every((a) => a.status().policies.some((p) => p.name === name && p.version === version && p.lastApply?.version === version)) && sizes.every((s) => s === 600_000)
  }, `${name} v${version} applied on every node`, 40_000)
}

/** Publishes from node-0 into a 6-node full mesh; returns the envelope size and bytes each other node received meanwhile. */
async function publishLarge (m: TestMesh, topic: string): Promise<{ size: number, perNode: number[] }> {
  await fullMesh(m, topic)
  const bytes = m.sign(largePolicy('test/large', 'x'), 1)
  const before = await Promise.all(m.agents.map(async (a) => await a.traffic()))
  expect((await (m.agents[0] as Agent).publish(bytes)).outcome).toBe('accepted')
  await appliedEverywhere(m, 'test/large', 1)
  const after = await Promise.all(m.agents.map(async (a) => await a.traffic()))
  const perNode = after.map((t, i) => received(t) - received(before[i] as AgentTraffic)).slice(1)
  return { size: bytes.byteLength, perNode }
}

describe('announce-and-fetch', () => {
  it('delivers a 1.2 MB policy to 6 nodes at no more than 1.5 × its size per node', async () => {
    mesh = await startMesh(6, { topology: 'star' })
    const { size, perNode } = await publishLarge(mesh, announceTopic(mesh.agents[0]!.mesh))
    expect(size).toBeGreaterThan(1024 * 1024)
    for (const r of perNode) expect(r).toBeLessThanOrEqual(1.5 * size)
    for (const a of mesh.agents.slice(1)) {
      const t = await a.traffic()
      expect(t.fetchBytesReceived).toBeGreaterThan(size)
      expect(t.policyMessages).toBe(0)
    }
    expect(await readFile(join(mesh.agents[3]!.status().node.root, 'srv/large/a.bin'), 'utf8')).toMatch(/^x-1\n/)
  })

  it('with the threshold disabled, gossips the whole envelope: several copies per node', async () => {
    mesh = await startMesh(6, { topology: 'star', announceThreshold: 0 })
    const { size, perNode } = await publishLarge(mesh, '/grapevine/default/policies/1')
    const mean = perNode.reduce((a, b) => a + b, 0) / perNode.length
    expect(mean).toBeGreaterThan(1.5 * size)
    for (const a of mesh.agents.slice(1)) expect((await a.traffic()).fetchBytesReceived).toBe(0)
  })

  it('keeps small envelopes gossiped whole', async () => {
    mesh = await startMesh(3, { topology: 'star' })
    const m = mesh
    await waitFor(() => m.agents.every((a) => a.libp2p.getPeers().length > 0), 'peers')
    await fullMesh(m, '/grapevine/default/policies/1')
    await m.agents[0]!.publish(m.sign(validatePolicyObject({ kind: 'policy', name: 'test/small', resources: [{ id: 'd', type: 'directory', path: '/srv/small' }] }), 1))
    await waitFor(() => m.agents.every((a) => a.envelope('test/small')?.version === 1), 'small policy everywhere')
    for (const a of m.agents.slice(1)) {
      const t = await a.traffic()
      expect(t.fetchBytesReceived).toBe(0)
      expect(t.announceMessages).toBe(0)
    }
  })

  it('fetches from another peer when the announcer cannot serve the body', async () => {
    mesh = await startMesh(3, { topology: 'star' })
    const m = mesh
    const [a, b, c] = m.agents as [Agent, Agent, Agent]
    await fullMesh(m, announceTopic(a.mesh))
    // b holds the envelope (taken directly, not gossiped); a announces it without holding it.
    const bytes = m.sign(largePolicy('test/fallback', 'y'), 1)
    expect(await b.ingest(bytes, 'local')).toBe('accepted')
    const env = validateEnvelope(bytes, { authorize: () => {} }) as VerifiedEnvelope
    const fetchedFromB = nextEvent(c, 'fetch', (f) => f.initiator && f.found && f.peer === b.peerId.toString())
    const missingAtA = nextEvent(c, 'fetch', (f) => f.initiator && !f.found && f.peer === a.peerId.toString())
    await a.libp2p.services.pubsub.publish(announceTopic(a.mesh), encodeAnnouncement(env))
    await missingAtA
    await fetchedFromB
    await waitFor(() => c.envelope('test/fallback')?.version === 1, 'c to hold the body fetched from b')
    expect(a.envelope('test/fallback')).toBeUndefined()
  })

  it('ignores an announcement nobody serves, and anti-entropy brings the body later', async () => {
    mesh = await startMesh(2, { topology: 'star' })
    const m = mesh
    const [a, b] = m.agents as [Agent, Agent]
    await fullMesh(m, announceTopic(a.mesh))
    const bytes = m.sign(largePolicy('test/orphan', 'z'), 1)
    const env = validateEnvelope(bytes, { authorize: () => {} }) as VerifiedEnvelope
    const missing = nextEvent(b, 'fetch', (f) => f.initiator && !f.found)
    await a.libp2p.services.pubsub.publish(announceTopic(a.mesh), encodeAnnouncement(env))
    await missing
    await waitFor(async () => {
      const json = await b.metrics.registry.getSingleMetric('grapevine_announcements_total')?.get()
      return (json?.values ?? []).some((v) => v.labels.result === 'fetch-failed' && v.value >= 1)
    }, 'the fetch to be given up')
    expect(b.envelope('test/orphan')).toBeUndefined()
    // a takes it now; a sync round carries the whole envelope as before.
    expect(await a.ingest(bytes, 'local')).toBe('accepted')
    // A round already in flight with a (started before a took it) makes syncNow skip that peer: ask until a round carries it.
    await waitFor(async () => {
      await b.syncNow()
      return b.envelope('test/orphan')?.version === 1
    }, 'b to get it by sync')
  })

  describe('the announcement validator', () => {
    it('rejects a forged header without fetching anything', async () => {
      mesh = await startMesh(2, { topology: 'star' })
      const [a, b] = mesh.agents as [Agent, Agent]
      const env = validateEnvelope(mesh.sign(largePolicy('test/forged', 'f'), 1), { authorize: () => {} })
      let fetches = 0
      b.on('fetch', () => { fetches++ })
      const forged = canonicalBytes({ ...fields(encodeAnnouncement(env)), version: 2 })
      const rejected = nextEvent(b, 'rejected', (r) => r.reason === 'bad-signature')
      expect(await validate(b, forged, a.peerId)).toBe(TopicValidatorResult.Reject)
      await rejected
      expect(await validate(b, canonicalBytes({ ...fields(encodeAnnouncement(env)), policy: {} }), a.peerId)).toBe(TopicValidatorResult.Reject)
      expect(fetches).toBe(0)
    })

    it('refuses a served body whose hash does not match, and one that is not the envelope announced, and hangs up on the server', async () => {
      mesh = await startMesh(2, { topology: 'star' })
      const [a, b] = mesh.agents as [Agent, Agent]
      const bytes = mesh.sign(largePolicy('test/tampered', 't'), 1)
      const env = validateEnvelope(bytes, { authorize: () => {} })
      // a serves the announced header with another body (hash mismatch), then another valid envelope.
      const tampered = canonicalBytes({ ...fields(bytes), policy: { ...(fields(bytes).policy as object), name: 'test/tampered', resources: [] } })
      const other = mesh.sign(largePolicy('test/tampered', 'u'), 1)
      for (const [served, reason] of [[tampered, 'hash-mismatch'], [other, 'not-announced']] as const) {
        // The policy book answers fetches: make it answer with this body.
        (a as unknown as { book: { servable: () => Uint8Array } }).book.servable = () => served
        const rejected = nextEvent(b, 'rejected', (r) => r.reason === reason && r.from === a.peerId.toString())
        expect(await validate(b, encodeAnnouncement(env), a.peerId)).toBe(TopicValidatorResult.Ignore)
        await rejected
        expect(b.envelope('test/tampered')).toBeUndefined()
        expect(b.libp2p.getConnections(a.peerId)).toEqual([])
      }
    })

    it('ignores a replay of an older version at no cost, and accepts the newer one once fetched', async () => {
      mesh = await startMesh(2, { topology: 'star' })
      const [a, b] = mesh.agents as [Agent, Agent]
      const v1 = validateEnvelope(mesh.sign(largePolicy('test/replay', '1'), 1), { authorize: () => {} })
      const v2 = mesh.sign(largePolicy('test/replay', '2'), 2)
      expect(await a.ingest(v2, 'local')).toBe('accepted')
      expect(await validate(b, encodeAnnouncement(validateEnvelope(v2, { authorize: () => {} })), a.peerId)).toBe(TopicValidatorResult.Accept)
      expect(b.envelope('test/replay')?.version).toBe(2)
      let fetches = 0
      b.on('fetch', () => { fetches++ })
      expect(await validate(b, encodeAnnouncement(v1), a.peerId)).toBe(TopicValidatorResult.Ignore)
      expect(await validate(b, encodeAnnouncement(validateEnvelope(v2, { authorize: () => {} })), a.peerId)).toBe(TopicValidatorResult.Ignore)
      expect(fetches).toBe(0)
      expect(b.envelope('test/replay')?.version).toBe(2)
    })

    it('fetches once for concurrent announcements of one envelope', async () => {
      mesh = await startMesh(2, { topology: 'star' })
      const [a, b] = mesh.agents as [Agent, Agent]
      const bytes = mesh.sign(largePolicy('test/once', 'o'), 1)
      expect(await a.ingest(bytes, 'local')).toBe('accepted')
      let fetches = 0
      b.on('fetch', (f) => { if (f.initiator) fetches++ })
      const ann = encodeAnnouncement(validateEnvelope(bytes, { authorize: () => {} }))
      const results = await Promise.all([1, 2, 3, 4].map(async () => await validate(b, ann, a.peerId)))
      expect(results).toEqual([1, 2, 3, 4].map(() => TopicValidatorResult.Accept))
      expect(fetches).toBe(1)
    })
  })
})
