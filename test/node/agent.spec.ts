import { afterEach, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { filePolicy, nextEvent, startMesh, waitFor, type TestMesh } from './fixtures.js'
import type { Agent } from '../../src/node/agent.js'
import { policyTopic } from '../../src/node/constants.js'

async function fileIn (agent: Agent, path: string): Promise<string | undefined> {
  try {
    return await readFile(join(agent.status().node.root, path), 'utf8')
  } catch {
    return undefined
  }
}

/** Runs `fn` after `depth` turns of the microtask queue. */
function afterMicrotasks (depth: number, fn: () => void): void {
  if (depth === 0) fn()
  else queueMicrotask(() => { afterMicrotasks(depth - 1, fn) })
}

let mesh: TestMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

describe('agent mesh on 127.0.0.1', () => {
  it('converges a 5-node mesh on a published policy and writes the files', async () => {
    mesh = await startMesh(5)
    const m = mesh
    await waitFor(() => m.agents.every((a) => a.libp2p.getPeers().length > 0), 'every node to have a peer')
    const bytes = m.sign(filePolicy('test/motd', 'hello from {{ node.name }}\n'), 1)
    const published = await m.agents[0]!.publish(bytes)
    expect(published.outcome).toBe('accepted')
    await waitFor(async () => (await Promise.all(m.agents.map(async (a) => await fileIn(a, '/etc/grapevine-test/motd')))).every((c, i) => c === `hello from node-${i}\n`), 'files on all 5 nodes')
    for (const a of m.agents) expect(a.envelope('test/motd')?.version).toBe(1)
  })

  it('lets a node started after the publish, knowing one peer, catch up and apply', async () => {
    mesh = await startMesh(2)
    const m = mesh
    await m.agents[0]!.publish(m.sign(filePolicy('test/late', 'v1\n'), 1))
    await waitFor(async () => await fileIn(m.agents[1]!, '/etc/grapevine-test/motd') === 'v1\n', 'node-1 to apply')
    const late = await m.add({ bootstrapFrom: [1] })
    await waitFor(async () => await fileIn(late, '/etc/grapevine-test/motd') === 'v1\n', 'the late node to apply')
    expect(late.envelope('test/late')?.version).toBe(1)
  })

  it('heals a partition: every node ends on the newest version', async () => {
    mesh = await startMesh(4)
    const m = mesh
    const [a, b, c, d] = m.agents as [Agent, Agent, Agent, Agent]
    await a.publish(m.sign(filePolicy('test/part', 'v1\n'), 1))
    await waitFor(() => m.agents.every((x) => x.envelope('test/part')?.version === 1), 'v1 everywhere')
    // Cut {a, b} from {c, d}.
    const left = [a, b].map((x) => x.peerId.toString())
    const right = [c, d].map((x) => x.peerId.toString())
    await Promise.all([a.block(right), b.block(right), c.block(left), d.block(left)])
    await waitFor(() => !b.libp2p.getPeers().some((p) => right.includes(p.toString())), 'the cut')
    await a.publish(m.sign(filePolicy('test/part', 'v2\n'), 2))
    await waitFor(() => b.envelope('test/part')?.version === 2, 'v2 on the publishing side')
    expect(c.envelope('test/part')?.version).toBe(1)
    expect(d.envelope('test/part')?.version).toBe(1)
    // Heal: lift the block and reconnect across it; sync on connect carries v2 over.
    for (const x of m.agents) x.unblock()
    await c.connect(b.multiaddrs[0]!)
    await waitFor(() => m.agents.every((x) => x.envelope('test/part')?.version === 2), 'v2 everywhere after healing')
    await waitFor(async () => (await Promise.all(m.agents.map(async (x) => await fileIn(x, '/etc/grapevine-test/motd')))).every((t) => t === 'v2\n'), 'v2 applied everywhere')
  })

  it('gossips on an update that arrived by sync, so it spreads without waiting for anti-entropy', async () => {
    mesh = await startMesh(4)
    const m = mesh
    await waitFor(() => m.agents.every((a) => a.libp2p.getPeers().length > 0), 'every node to have a peer')
    await m.agents[0]!.publish(m.sign(filePolicy('test/relay', 'v1\n'), 1))
    await waitFor(() => m.agents.every((x) => x.envelope('test/relay')?.version === 1), 'v1 everywhere by gossip')
    // v2 reaches node 2 by sync only (periodic anti-entropy is off here): gossip must carry it on.
    const from = m.agents[1]!.peerId.toString()
    expect(await m.agents[2]!.ingest(m.sign(filePolicy('test/relay', 'v2\n'), 2), 'sync', from)).toBe('accepted')
    await waitFor(() => m.agents.every((x) => x.envelope('test/relay')?.version === 2), 'v2 everywhere')
    expect(m.agents.map((a) => a.status().policies.find((p) => p.name === 'test/relay')?.version)).toEqual([2, 2, 2, 2])
  })

  it('applies only the newest version and never goes back to an older one', async () => {
    mesh = await startMesh(2)
    const m = mesh
    const [a, b] = m.agents as [Agent, Agent]
    const v1 = m.sign(filePolicy('test/replay', 'one\n'), 1)
    const v2 = m.sign(filePolicy('test/replay', 'two\n'), 2)
    await a.publish(v2)
    await waitFor(async () => await fileIn(b, '/etc/grapevine-test/motd') === 'two\n', 'v2 on b')
    expect((await a.publish(v1)).outcome).toBe('ignored')
    expect(await b.ingest(v1, 'gossip')).toBe('ignored')
    await b.idle()
    expect(b.envelope('test/replay')?.version).toBe(2)
    expect(await fileIn(b, '/etc/grapevine-test/motd')).toBe('two\n')
  })

  it('records a version conflict and converges on the same winner everywhere', async () => {
    mesh = await startMesh(3)
    const m = mesh
    const [a, b, c] = m.agents as [Agent, Agent, Agent]
    await waitFor(() => b.libp2p.getPeers().length >= 2, 'b connected to both')
    const x = m.sign(filePolicy('test/race', 'from admin x\n'), 5)
    const y = m.sign(filePolicy('test/race', 'from admin y\n'), 5)
    await Promise.all([a.publish(x), c.publish(y)])
    await waitFor(() => new Set(m.agents.map((n) => n.envelope('test/race')?.hash)).size === 1, 'one winner')
    const winner = a.envelope('test/race')!.hash
    await waitFor(() => m.agents.some((n) => n.status().conflicts.some((k) => k.kind === 'version' && k.winner === winner)), 'a recorded conflict')
  })

  it('keeps its state across a restart', async () => {
    mesh = await startMesh(1)
    const m = mesh
    const a = m.agents[0]!
    await a.publish(m.sign(filePolicy('test/keep', 'kept\n'), 3))
    await waitFor(async () => await fileIn(a, '/etc/grapevine-test/motd') === 'kept\n', 'apply')
    const id = a.peerId.toString()
    await a.stop()
    const again = await m.add({ stateDir: join(m.dir, 'node-0', 'state'), root: join(m.dir, 'node-0', 'root') })
    expect(again.peerId.toString()).toBe(id)
    expect(again.envelope('test/keep')?.version).toBe(3)
    // It re-applies on start; the files are already right, so nothing changes.
    await waitFor(() => again.status().policies.find((p) => p.name === 'test/keep')?.lastApply?.outcome === 'no-changes', 'the re-apply on start')
    const history = await again.readHistory()
    expect(history.some((h) => h.event === 'accepted' && h.name === 'test/keep' && h.version === 3)).toBe(true)
  })

  it('joins through a bootstrap node that was down when it started, once that node is back', async () => {
    mesh = await startMesh(1)
    const m = mesh
    const boot = m.agents[0]!
    const addr = boot.multiaddrs.find((a) => a.includes('127.0.0.1'))!
    const port = addr.split('/')[4]!
    await boot.stop()
    // Started while its only bootstrap peer is unreachable: the one bootstrap dial fails.
    const late = await m.add({ bootstrap: [addr] })
    expect(late.libp2p.getPeers()).toHaveLength(0)
    const back = await m.add({ stateDir: join(m.dir, 'node-0', 'state'), root: join(m.dir, 'node-0', 'root'), listen: [`/ip4/127.0.0.1/tcp/${port}`] })
    await back.publish(m.sign(filePolicy('test/late-boot', 'joined\n'), 1))
    // Peer maintenance (every ~10 s) dials it, and the sync on connect brings the policy.
    await waitFor(async () => await fileIn(late, '/etc/grapevine-test/motd') === 'joined\n', 'the late node to join and apply', 30_000)
  }, 40_000)

  it('keeps working when the bootstrap node dies: peers found each other through peer exchange', async () => {
    mesh = await startMesh(4, { topology: 'star' })
    const m = mesh
    const [boot, ...rest] = m.agents as [Agent, Agent, Agent, Agent]
    // Sync on connect exchanges peer lists; periodic maintenance dials them.
    await waitFor(() => rest.every((a) => a.libp2p.getPeers().length >= 3), 'the leaves to connect to each other', 40_000)
    // And to hear each other's subscriptions: a publish before that reaches nobody, and these
    // agents run no periodic sync to make up for it (a race of this test, on a loaded machine).
    const topic = policyTopic(rest[0]!.mesh)
    await waitFor(() => rest.every((a) => a.libp2p.services.pubsub.getSubscribers(topic).filter((p) => !p.equals(boot.peerId)).length >= 2), 'the leaves to hear each other subscribed', 40_000)
    await boot.stop()
    await rest[0]!.publish(m.sign(filePolicy('test/orphan', 'still here\n'), 1))
    await waitFor(async () => (await Promise.all(rest.map(async (a) => await fileIn(a, '/etc/grapevine-test/motd')))).every((t) => t === 'still here\n'), 'every survivor to apply')
  })

  it('reports two policies managing one path as a conflict, never a flip-flop', async () => {
    mesh = await startMesh(1)
    const m = mesh
    const a = m.agents[0]!
    await a.publish(m.sign(filePolicy('b/owner', 'from b\n'), 1))
    await waitFor(async () => await fileIn(a, '/etc/grapevine-test/motd') === 'from b\n', 'b applied')
    await a.publish(m.sign(filePolicy('a/owner', 'from a\n'), 1))
    await a.publish(m.sign(filePolicy('b/owner', 'from b, v2\n'), 2))
    await waitFor(() => a.status().conflicts.some((c) => c.kind === 'path' && c.path === '/etc/grapevine-test/motd'), 'the path conflict')
    await a.idle()
    // "a/owner" sorts first and keeps the path; b's resource fails with the reason, every time.
    expect(await fileIn(a, '/etc/grapevine-test/motd')).toBe('from a\n')
    const b = a.status().policies.find((p) => p.name === 'b/owner')!
    expect(b.lastApply?.errors?.[0]?.error).toMatch(/also managed by policy "a\/owner"/)
  })

  it('applies an envelope taken while the previous apply is finishing', async () => {
    mesh = await startMesh(1)
    const m = mesh
    const a = m.agents[0]!
    // The apply loop ends a few microtasks after the last apply's 'applied' event. Take a new
    // envelope at each depth in that window in turn: whichever lands between the loop's last
    // look at its queue and its end must still be applied, not left held until the next re-apply.
    const lost: number[] = []
    for (let depth = 0; depth < 8; depth++) {
      const next = m.sign(filePolicy(`test/next-${depth}`, `next ${depth}\n`, `/next-${depth}.txt`), 1)
      a.once('applied', () => { afterMicrotasks(depth, () => { void a.publish(next) }) })
      const applied = nextEvent(a, 'applied', (e) => e.envelope.name === `test/next-${depth}`, 5000).then(() => true, () => false)
      await a.publish(m.sign(filePolicy(`test/first-${depth}`, 'first\n', `/first-${depth}.txt`), 1))
      if (!await applied) lost.push(depth)
      else expect(await fileIn(a, `/next-${depth}.txt`)).toBe(`next ${depth}\n`)
    }
    expect(lost).toEqual([])
  }, 60_000)
})
