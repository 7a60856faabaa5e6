import { afterEach, describe, expect, it } from 'vitest'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { startMesh, filePolicy, waitFor, type TestMesh } from './fixtures.js'
import { createNet, multiaddr, type GrapevineLibp2p } from '../../src/net/libp2p.js'
import { generateIdentity, nodeSigningKey, peerIdOf } from '../../src/net/identity.js'
import { generateSigningKey } from '../../src/envelope/index.js'
import { signReport, type FleetNode, type Receipt } from '../../src/receipt/index.js'
import { connectMesh, publishPolicy } from '../../src/client/index.js'
import { RECEIPT_PROTOCOL } from '../../src/node/receipts.js'
import type { Agent } from '../../src/node/agent.js'

let mesh: TestMesh | undefined
let client: GrapevineLibp2p | undefined
afterEach(async () => {
  await client?.stop()
  await mesh?.stop()
  mesh = undefined
  client = undefined
})

async function counter (agent: Agent, result: string): Promise<number> {
  const m = await agent.metrics.receipts.get()
  return m.values.filter((v) => v.labels.result === result).reduce((sum, v) => sum + v.value, 0)
}

/** Nodes a fleet view knows applied one policy version (receipts and presence beacons both say `applied`). */
function appliedAt (fleet: FleetNode[], policy: string, version: number): string[] {
  return fleet.filter((n) => n.policies[policy]?.version === version && n.policies[policy]?.outcome === 'applied').map((n) => n.name)
}

function receiptsFor (agent: Agent, policy: string, version: number): string[] {
  return appliedAt(agent.fleet.list(), policy, version)
}

describe('receipts routed to the publisher', () => {
  it('reach the publishing node from every node, without a copy for every node', async () => {
    const n = 6
    mesh = await startMesh(n, { beaconInterval: 0 })
    const m = mesh
    await waitFor(() => m.agents.every((a) => a.libp2p.getPeers().length > 0), 'connections')
    const receiptsSeen = m.agents.map(() => 0)
    m.agents.forEach((a, i) => a.on('report', (r) => { if (r.kind === 'receipt' && r.node !== a.peerId.toString()) receiptsSeen[i]!++ }))

    await m.agents[0]!.publish(m.sign(filePolicy('site/motd', 'hello\n'), 1))
    await waitFor(() => receiptsFor(m.agents[0]!, 'site/motd', 1).length === n, 'every receipt at the publisher', 30_000)
    expect(receiptsFor(m.agents[0]!, 'site/motd', 1).sort()).toEqual(m.agents.map((_, i) => `node-${i}`).sort())
    await Promise.all(m.agents.map(async (a) => { await a.idle() }))
    await new Promise((resolve) => setTimeout(resolve, 300))

    // Flooded, each node would see the other n − 1 receipts: n(n − 1) in all. Routed, a receipt
    // is seen once per hop back to the publisher, n(n − 1)/2 even if the mesh were one chain.
    const total = receiptsSeen.reduce((a, b) => a + b, 0)
    expect(receiptsSeen[0]).toBe(n - 1)
    expect(total).toBeLessThanOrEqual(n * (n - 1) / 2)
    expect(await counter(m.agents[0]!, 'received')).toBeGreaterThanOrEqual(1)
    expect(await counter(m.agents[0]!, 'kept')).toBeGreaterThanOrEqual(n - 1)
    const forwarded = await Promise.all(m.agents.slice(1).map(async (a) => await counter(a, 'forwarded')))
    expect(forwarded.every((f) => f >= 1)).toBe(true)
  })

  it('reach a `publish` client while it waits, and stay with its neighbours once it has left', async () => {
    mesh = await startMesh(4, { beaconInterval: 0 })
    const m = mesh
    await waitFor(() => m.agents.every((a) => a.libp2p.getPeers().length > 0), 'connections')
    const boot = m.agents[1]!.multiaddrs[0]!

    const admin = await connectMesh({ bootstrap: [boot] })
    try {
      const { envelope } = await publishPolicy(admin, { policy: filePolicy('site/a', 'a\n'), key: m.root })
      await waitFor(async () => appliedAt(await admin.fleet(), 'site/a', envelope.version).length === 4, 'all four receipts at the client', 30_000)
    } finally {
      await admin.close()
    }

    // A publish that does not wait: the client leaves at once, and the agents it was connected
    // to keep the receipts routed to it. Which ones those are depends on timing: besides its
    // bootstrap peer the client dials up to two more witnesses (publisher.ts, HEAD_WITNESSES),
    // and a node that took the envelope from one of those routes its receipt there. So every
    // receipt must be held somewhere in the mesh, none lost with the client.
    const quick = await connectMesh({ bootstrap: [boot] })
    const { envelope } = await publishPolicy(quick, { policy: filePolicy('site/b', 'b\n', '/srv/b'), key: m.root })
    await quick.close()
    const held = (): Set<string> => new Set(m.agents.flatMap((a) => receiptsFor(a, 'site/b', envelope.version)))
    await waitFor(() => held().size === 4, 'every receipt held by the agents', 30_000)
    expect([...held()].sort()).toEqual(m.agents.map((_, i) => `node-${i}`).sort())
  })

  it('presence beacons tell other nodes the outcome in the receipts\' words', async () => {
    mesh = await startMesh(2, { beaconInterval: 0 })
    const [a, b] = mesh.agents as [Agent, Agent]
    await waitFor(() => a.libp2p.getPeers().length > 0, 'connected')
    await a.publish(mesh.sign(filePolicy('site/motd', 'hello\n'), 1))
    await waitFor(() => receiptsFor(a, 'site/motd', 1).length === 2, 'both receipts at the publisher')
    // a's own receipt stays with a; b learns a's outcome from a's beacon.
    await a.beacon()
    await waitFor(() => b.fleet.list().find((n) => n.id === a.peerId.toString())?.policies['site/motd']?.version === 1, 'a\'s beacon at b')
    expect(b.fleet.list().find((n) => n.id === a.peerId.toString())?.policies['site/motd']?.outcome).toBe('applied')
  })

  it('drops garbage and forged receipts and the stream that carried them', async () => {
    mesh = await startMesh(1, { beaconInterval: 0 })
    const agent = mesh.agents[0]!
    const key = await generateIdentity()
    client = await createNet({ privateKey: key, listen: [], scoredTopics: [], sync: { interval: 0, source: { wantsEnvelopes: false, digest: () => [], envelope: () => undefined, ingest: async () => 'ignored' } } })
    await client.dial(multiaddr(agent.multiaddrs[0]!))
    const send = async (frames: Uint8Array[]): Promise<void> => {
      const stream = await client!.dialProtocol(agent.peerId, RECEIPT_PROTOCOL)
      await pipe(frames, (src) => lp.encode(src), stream.sink).catch(() => {})
    }
    const me = peerIdOf(key).toString()
    const receipt = (node: string, signer = nodeSigningKey(key)): Uint8Array => {
      const body: Receipt = {
        format: 1, kind: 'receipt', node, key: signer.id, name: 'intruder', tags: {}, at: new Date().toISOString(),
        policy: 'site/x', version: 1, hash: `sha256:${'0'.repeat(64)}`, outcome: 'applied', changed: 0, failures: [], failedCount: 0, durationMs: 1
      }
      return signReport(body, signer)
    }

    await send([new TextEncoder().encode('not a receipt')])
    // Signed, but by a key that is not the named node's.
    await send([receipt(agent.peerId.toString(), generateSigningKey())])
    await waitFor(async () => await counter(agent, 'rejected') === 2, 'both refused')
    expect(agent.fleet.list().some((node) => node.name === 'intruder')).toBe(false)

    // The same peer's own, honestly signed receipt is taken (and kept: this node has no route for it).
    await send([receipt(me)])
    await waitFor(() => agent.fleet.list().some((node) => node.id === me && node.policies['site/x']?.outcome === 'applied'), 'an honest receipt taken')
    expect(await counter(agent, 'received')).toBe(1)
    expect(await counter(agent, 'kept')).toBe(1)
  })
})
