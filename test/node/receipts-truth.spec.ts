import { afterEach, describe, expect, it } from 'vitest'
import { startMesh, filePolicy, outcomeAt, waitFor, type TestMesh } from './fixtures.js'
import { connectMesh, publishPolicy, waitForFleet } from '../../src/client/index.js'
import { trustPolicy } from '../helpers/envelope.js'
import type { Agent } from '../../src/node/agent.js'

let mesh: TestMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

describe('receipts say what a version did', () => {
  it('a quiet re-apply after an apply with changes leaves the receipt and the beacon saying applied', async () => {
    // Re-applies every 200 ms: the node re-applied v22 102 ms after applying it.
    mesh = await startMesh(2, { beaconInterval: 0, reapplyInterval: 200 })
    const [a, b] = mesh.agents as [Agent, Agent]
    await waitFor(() => a.libp2p.getPeers().length > 0, 'connected')
    let runs = 0
    b.on('applied', ({ envelope }) => { if (envelope.name === 'site/motd') runs++ })
    await a.publish(mesh.sign(filePolicy('site/motd', 'hello\n'), 1))
    await waitFor(() => outcomeAt(a, b, 'site/motd') === 'applied', 'b\'s first receipt at the publisher')
    const firstRun = runs
    // Several quiet re-applies (nothing changed) since the first; their receipts, if any, have had time to arrive.
    await waitFor(() => runs >= firstRun + 3, 'b re-applied v1 three times')
    await b.beacon()
    await waitFor(() => (a.fleet.list().find((n) => n.id === b.peerId.toString())?.lastSeen ?? '') >= new Date(Date.now() - 1000).toISOString(), 'b\'s beacon at a')
    expect(outcomeAt(a, b, 'site/motd')).toBe('applied')
    expect(outcomeAt(b, b, 'site/motd')).toBe('applied')
    expect(b.status().policies.find((p) => p.name === 'site/motd')).toBeDefined()
  })

  it('every node sends a receipt for a trust policy it takes, so a wait on it ends with all of them', async () => {
    mesh = await startMesh(3, { beaconInterval: 0 })
    const m = mesh
    await waitFor(() => m.agents.every((x) => x.libp2p.getPeers().length > 0), 'connections')
    // Every node announces itself once (beacons are off): the publisher then knows whom to wait for.
    await Promise.all(m.agents.map(async (x) => await x.beacon()))
    await waitFor(() => m.agents.every((x) => x.fleet.size === 3), 'every node known everywhere')
    // Each node's own receipt. (A beacon, minutes later, would also say each node holds it: too late for a --wait.)
    const receipted = new Set<string>()
    for (const x of m.agents) x.on('report', (r) => { if (r.kind === 'receipt' && r.policy === 'grapevine/trust' && r.node === x.peerId.toString()) receipted.add(r.name) })
    const admin = await connectMesh({ bootstrap: [m.agents[1]!.multiaddrs[0]!] })
    try {
      const { envelope } = await publishPolicy(admin, { policy: trustPolicy([]), key: m.root })
      await waitFor(() => receipted.size === 3, 'a receipt for the trust policy from every node')
      expect([...receipted].sort()).toEqual(['node-0', 'node-1', 'node-2'])
      const { progress, timedOut } = await waitForFleet(admin, envelope, { timeoutMs: 15_000 })
      expect(timedOut).toBe(false)
      expect(progress.applied.map((n) => n.name).sort()).toEqual(['node-0', 'node-1', 'node-2'])
      expect(progress.pending).toEqual([])
    } finally {
      await admin.close()
    }
  })
})
