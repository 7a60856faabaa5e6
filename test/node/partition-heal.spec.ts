// Real agents on 127.0.0.1 (issue 15): two sides of a cut that each kept their connections on
// their own side join up again after the heal, though no agent is below its target.
import { afterEach, describe, expect, it } from 'vitest'
import type { Agent } from '../../src/node/agent.js'
import { filePolicy, startMesh, waitFor, type TestMesh } from './fixtures.js'

let mesh: TestMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

const ids = (agents: Agent[]): string[] => agents.map((a) => a.peerId.toString())
const connectedTo = (a: Agent, peers: string[]): boolean => a.libp2p.getPeers().some((p) => peers.includes(p.toString()))

describe('a healed partition, live agents', () => {
  it('heals by itself when every agent is at its connection target: one rotates a connection across, and sync carries the newer version over', async () => {
    // A target of 1, and a random source of 0: every tick at the target rotates (0 < PEER_ROTATION_CHANCE).
    // Anti-entropy every second (with connected peers only, as ever), so no gossip race decides the test.
    mesh = await startMesh(4, { targetPeers: 1, random: () => 0, syncInterval: 1000 })
    const m = mesh
    const [a, b, c, d] = m.agents as [Agent, Agent, Agent, Agent]
    const left = ids([a, b])
    const right = ids([c, d])
    // Every agent knows every other, as a fleet that has run a while remembers its peers.
    for (const x of m.agents) x.addPeers(m.agents.filter((y) => y !== x).map((y) => y.multiaddrs.find((s) => s.includes('127.0.0.1'))!))
    await waitFor(() => m.agents.every((x) => x.libp2p.getPeers().length > 0), 'every agent connected')
    await a.publish(m.sign(filePolicy('test/split', 'v1\n'), 1))
    await waitFor(() => m.agents.every((x) => x.envelope('test/split')?.version === 1), 'v1 everywhere')

    // The cut: a–b and c–d stay connected, every link across drops.
    await Promise.all([a.block(right), b.block(right), c.block(left), d.block(left)])
    await Promise.all([a.connect(b.multiaddrs[0]!), c.connect(d.multiaddrs[0]!)])
    await waitFor(() => !m.agents.some((x) => connectedTo(x, left.includes(x.peerId.toString()) ? right : left)), 'the cut')
    await a.publish(m.sign(filePolicy('test/split', 'v2\n'), 2))
    await waitFor(() => b.envelope('test/split')?.version === 2, 'v2 on the publishing side')

    // The heal: blocks lift, and every agent is at its target of 1, so topping up dials nobody.
    for (const x of m.agents) x.unblock()
    expect(m.agents.every((x) => x.libp2p.getPeers().length >= 1)).toBe(true)
    expect([c, d].map((x) => x.envelope('test/split')?.version)).toEqual([1, 1])

    // At its next maintenance tick (within 12.5 s) each agent rotates one connection: a and b can
    // only dial across. Without rotation nothing dials, and c and d keep v1 for ever.
    await waitFor(() => m.agents.every((x) => x.envelope('test/split')?.version === 2), 'v2 everywhere after the heal')
  }, 45_000)
})
