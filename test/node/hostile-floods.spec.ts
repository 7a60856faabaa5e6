import { afterEach, describe, expect, it } from 'vitest'
import { startMesh, waitFor, type TestMesh } from './fixtures.js'
import type { GrapevineLibp2p } from '../../src/net/libp2p.js'
import { startRogue } from './rogue.js'
import { generateIdentity, nodeSigningKey, peerIdOf } from '../../src/net/identity.js'
import { signReport, type NodeReport } from '../../src/receipt/index.js'
import { receiptTopic } from '../../src/node/constants.js'
import { PEER_REPORTS } from '../../src/node/report-gate.js'
import type { Agent } from '../../src/node/agent.js'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { multiaddr } from '../../src/net/libp2p.js'
import { generateSigningKey, signPolicy } from '../../src/envelope/index.js'
import { SYNC_PROTOCOL, encodeFrame } from '../../src/sync/index.js'
import { SYNC_REFUSALS } from '../../src/node/network.js'
import { filePolicy } from './fixtures.js'
import { validateEnvelope } from '../../src/envelope/index.js'
import { connectMesh } from '../../src/client/index.js'
import { UNVOUCHED_GRACE_MS } from '../../src/node/connection-guard.js'
import { DEFAULT_MAX_CONNECTIONS } from '../../src/node/network.js'

let mesh: TestMesh | undefined
let rogues: GrapevineLibp2p[] = []
afterEach(async () => {
  await Promise.allSettled(rogues.map(async (r) => { await r.stop() }))
  await mesh?.stop()
  mesh = undefined
  rogues = []
})

/** A counter's total over its labels, as the agent's /metrics shows it. */
async function counted (agent: Agent, name: string, label: (l: Record<string, string | number>) => boolean): Promise<number> {
  const metric = await agent.metrics.registry.getSingleMetric(name)?.get()
  return (metric?.values ?? []).filter((v) => label(v.labels as Record<string, string | number>)).reduce((s, v) => s + v.value, 0)
}

/** Presence beacons from made-up nodes, each signed by its own fresh identity: valid, and worthless. */
async function fakeBeacons (n: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for (let i = 0; i < n; i++) {
    const key = await generateIdentity()
    const signing = nodeSigningKey(key)
    const report: NodeReport = { format: 1, kind: 'presence', node: peerIdOf(key).toString(), key: signing.id, name: `fake-${i}`, tags: {}, at: new Date().toISOString(), policies: [] }
    out.push(signReport(report, signing))
  }
  return out
}

describe('bounded work under floods', () => {
  it('a peer gossiping 2,000 made-up beacons gets its burst verified and the rest dropped unverified (before: all 2,000 verified, /health stalled)', async () => {
    mesh = await startMesh(1, { beaconInterval: 0 })
    const agent = mesh.agents[0]!
    const topic = receiptTopic(agent.mesh)
    const rogue = await startRogue({ target: agent, topics: [topic] })
    rogues.push(rogue)
    const beacons = await fakeBeacons(2000)
    const started = Date.now()
    for (const b of beacons) await rogue.services.pubsub.publish(topic, b).catch(() => {})
    const seconds = (Date.now() - started) / 1000
    const dropped = async (): Promise<number> => await counted(agent, 'grapevine_receipts_total', (l) => String(l.result).startsWith('dropped-'))
    // Every beacon is accounted for: in the fleet view (verified), or dropped for rate before any check.
    await waitFor(async () => agent.fleet.size + await dropped() >= beacons.length, 'every beacon taken or dropped', 60_000)
    // What the rate lets through while the rogue sent (its burst and the refill), never all of them.
    expect(agent.fleet.size).toBeLessThanOrEqual(PEER_REPORTS.capacity + Math.ceil(seconds + 1) * PEER_REPORTS.perSecond + 1)
    expect(agent.fleet.size).toBeLessThan(beacons.length)
    expect(await dropped()).toBeGreaterThan(0)
  }, 120_000)

  it('a peer whose sync deliveries keep being refused is cut off and kept out (before: 40 large untrusted envelopes read and refused one by one)', async () => {
    mesh = await startMesh(1)
    const agent = mesh.agents[0]!
    const rogue = await startRogue()
    rogues.push(rogue)
    const outsider = generateSigningKey()
    const big = signPolicy(filePolicy('web/big', 'z'.repeat(256 * 1024)), { version: 1, key: outsider })
    const refused: string[] = []
    agent.on('rejected', ({ reason, via }) => { if (via === 'sync') refused.push(reason) })
    const stream = await rogue.dialProtocol(multiaddr(agent.multiaddrs[0]!), SYNC_PROTOCOL)
    const frames = [encodeFrame({ type: 'digest', entries: [] }), ...Array.from({ length: 40 }, () => encodeFrame({ type: 'envelope', bytes: big }))]
    void pipe(frames, (src) => lp.encode(src), stream.sink).catch(() => {})
    await waitFor(() => agent.libp2p.getConnections(rogue.peerId).length === 0 && refused.length > SYNC_REFUSALS.capacity, 'the agent to hang up on the rogue')
    // It stopped reading at the first refusal past the allowance (a frame or two may be in flight).
    expect(refused.length).toBeLessThanOrEqual(SYNC_REFUSALS.capacity + 2)
    expect(refused.every((r) => r === 'untrusted')).toBe(true)
    // And it is kept out for a while: the agent refuses its next connection.
    const again = await rogue.dial(multiaddr(agent.multiaddrs[0]!), { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
    await waitFor(() => again === undefined || again.status !== 'open', 'the agent to refuse the new connection', 5000)
    expect(agent.status().peers.map((p) => p.id)).not.toContain(rogue.peerId.toString())
  })

  it('made-up identities filling every connection do not lock out an admin publishing through the agent (before: refused at 64, exit 69)', async () => {
    // All peers here share 127.0.0.1: libp2p's per-host inbound rate would otherwise pace the flood.
    mesh = await startMesh(2, { inboundLimits: { perHostPerSecond: 1000, pending: 100 } })
    const agent = mesh.agents[0]!
    const addr = agent.multiaddrs[0]!
    const flooded = Date.now()
    for (let i = 0; agent.libp2p.getConnections().length < DEFAULT_MAX_CONNECTIONS && i < DEFAULT_MAX_CONNECTIONS; i++) {
      const rogue = await startRogue()
      rogues.push(rogue)
      await rogue.dial(multiaddr(addr)).catch(() => {})
    }
    // The honest neighbour keeps its connection whatever the flood did.
    expect(agent.libp2p.getConnections(mesh.agents[1]!.peerId).length).toBeGreaterThan(0)
    // A made-up identity connected this recently is spared (UNVOUCHED_GRACE_MS); past that, a newcomer gets in.
    await waitFor(() => Date.now() - flooded > UNVOUCHED_GRACE_MS, 'the flood\'s connections to pass their grace', UNVOUCHED_GRACE_MS + 5000)
    const env = validateEnvelope(mesh.sign(filePolicy('web/admin', 'from the admin\n'), 1), { authorize: () => {} })
    const client = await connectMesh({ bootstrap: [addr], signal: AbortSignal.timeout(20_000) })
    try {
      const delivery = await client.deliver(env)
      expect(delivery.confirmedBy).toContain(agent.peerId.toString())
    } finally {
      await client.close()
    }
    await waitFor(() => mesh!.agents.every((a) => a.envelope('web/admin')?.version === 1), 'both agents to hold the admin\'s policy')
  }, 60_000)
})
