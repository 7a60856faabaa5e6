import { afterEach, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startMesh, filePolicy, waitFor, type TestMesh } from '../node/fixtures.js'
import { actOnRollout, connectMesh, driveRollout, publishPolicy, readRecord, startRollout, waitForFleet, type MeshClient } from '../../src/client/index.js'
import { parseMaxFailures, parseStages, rank, stageOf } from '../../src/rollout/index.js'
import type { Agent } from '../../src/node/agent.js'
import type { ConfigPolicy } from '../../src/policy/index.js'

// Staged rollouts on real agents over loopback TCP (docs/rollout.md): the record gates which
// nodes apply the new version, the publisher's process evaluates each stage from receipts.

let mesh: TestMesh | undefined
const clients: MeshClient[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
  await mesh?.stop()
  mesh = undefined
})

const PATH = '/etc/site/motd'
const site = (content: string, extra: Record<string, unknown> = {}): ConfigPolicy => filePolicy('site/motd', content, PATH, extra) as ConfigPolicy
// A check that fails on every node: the new version's service never comes up.
const broken = (content: string): ConfigPolicy => site(content, { checks: [{ id: 'up', type: 'exec', command: 'test -f "$GRAPEVINE_ROOT/never"' }] })

async function fleetOf (n: number): Promise<TestMesh> {
  const m = mesh = await startMesh(n, { beaconInterval: 0, topology: 'star' })
  await waitFor(() => m.agents.every((x) => x.libp2p.getPeers().length > 0), 'connections')
  await Promise.all(m.agents.map(async (x) => await x.beacon()))
  await waitFor(() => m.agents.every((x) => x.fleet.size === n), 'every node known everywhere')
  return m
}

async function admin (via: Agent): Promise<MeshClient> {
  const c = await connectMesh({ bootstrap: [via.multiaddrs[0] as string] })
  clients.push(c)
  return c
}

const motdOf = async (m: TestMesh, i: number): Promise<string | undefined> => await readFile(join(m.dir, `node-${i}`, 'root', PATH), 'utf8').catch(() => undefined)

/** Names of the nodes that ever applied `version` of site/motd (the blast radius). */
function appliedEver (m: TestMesh, version: number): Set<string> {
  const names = new Set<string>()
  m.agents.forEach((a, i) => a.on('applied', ({ envelope }) => { if (envelope.name === 'site/motd' && envelope.version === version) names.add(`node-${i}`) }))
  return names
}

async function publishV1 (m: TestMesh, client: MeshClient): Promise<void> {
  const { envelope } = await publishPolicy(client, { policy: site('v1\n'), key: m.root })
  const { timedOut } = await waitForFleet(client, envelope, { timeoutMs: 15_000 })
  expect(timedOut).toBe(false)
}

const plan = (stages: string, over: { bakeMs?: number, autoRollback?: boolean, maxFailures?: string } = {}) => ({
  stages: parseStages(stages), maxFailures: parseMaxFailures(over.maxFailures ?? '0'), bakeMs: over.bakeMs ?? 0, stageTimeoutMs: 30_000, autoRollback: over.autoRollback ?? false
})

describe('a staged rollout on real agents', () => {
  it('halts a bad version at the one-node canary: no other node ever applies it, and --auto-rollback restores the canary\'s files', async () => {
    const m = await fleetOf(5)
    const client = await admin(m.agents[0] as Agent)
    await publishV1(m, client)
    const ever = appliedEver(m, 2)
    const started = await startRollout(client, { policy: broken('v2\n'), key: m.root, ...plan('1,50%,100%', { autoRollback: true }) })
    expect(started.targeted).toBe(5)
    const result = await driveRollout(client, started.record, { key: m.root, pollMs: 100 })
    expect(result.end).toBe('halted')
    expect(result.record.record).toEqual(expect.objectContaining({ state: 'halted', stage: 0, rolledBack: true }))
    expect(result.record.record.reason).toMatch(/^stage 1\/3 \(1\): 1 of 1 nodes failed or unhealthy, 0 allowed: node-\d unhealthy$/)
    // The canary is the node of lowest rank, which every node computes alike.
    const ids = m.agents.map((a) => a.peerId.toString())
    const canary = ids.findIndex((id) => stageOf(started.record.record.stages, id, 'site/motd', 2) === 0)
    expect(canary).toBeGreaterThanOrEqual(0)
    expect([...ever]).toEqual([`node-${canary}`])
    // Rolled back: the canary's file is v1 again; every other node never left v1.
    await waitFor(async () => await motdOf(m, canary) === 'v1\n', 'the canary back on v1')
    for (let i = 0; i < 5; i++) expect(await motdOf(m, i)).toBe('v1\n')
    // Every node holds v2 (it gossiped as usual) and says why it does not enforce it.
    await waitFor(() => m.agents.every((a) => a.envelope('site/motd')?.version === 2), 'v2 held everywhere')
    for (const a of m.agents) expect(a.status().policies.find((p) => p.name === 'site/motd')?.heldBack).toMatch(/v1/)
    expect([...ever]).toEqual([`node-${canary}`])
  })

  it('takes a good version through every stage to every node', async () => {
    const m = await fleetOf(4)
    const client = await admin(m.agents[1] as Agent)
    await publishV1(m, client)
    const started = await startRollout(client, { policy: site('v2\n'), key: m.root, ...plan('1,50%,100%') })
    const stages: number[] = []
    const result = await driveRollout(client, started.record, { key: m.root, pollMs: 100, onStage: ({ record }) => { stages.push(record.stage) } })
    expect(result.end).toBe('done')
    expect(result.history.map((h) => `${h.stage} ${h.state}`)).toEqual(['1 running', '2 running', '2 done'])
    for (let i = 0; i < 4; i++) await waitFor(async () => await motdOf(m, i) === 'v2\n', `node-${i} on v2`)
  })

  it('is paused, resumed and aborted with rollback from other admin peers than the publisher\'s', async () => {
    const m = await fleetOf(4)
    const publisher = await admin(m.agents[0] as Agent)
    await publishV1(m, publisher)
    // A long bake keeps the canary stage open while the others act.
    const started = await startRollout(publisher, { policy: site('v2\n'), key: m.root, ...plan('1,100%', { bakeMs: 60_000 }) })
    const driving = driveRollout(publisher, started.record, { key: m.root, pollMs: 100 })
    const other = await admin(m.agents[3] as Agent)
    await waitFor(async () => (await readRecord(other, 'site/motd'))?.record.target.version === 2, 'the record seen from the other peer')
    const paused = await actOnRollout(other, 'site/motd', m.root, { type: 'pause', at: Date.now(), reason: 'looking at the canary' })
    expect(paused.record.state).toBe('paused')
    // The publisher's evaluator sees a record it did not sign, and stops.
    const ended = await driving
    expect(ended.end).toBe('paused')
    // A third peer resumes it and becomes the evaluator; then aborts with rollback.
    const third = await admin(m.agents[2] as Agent)
    await waitFor(async () => (await readRecord(third, 'site/motd'))?.record.state === 'paused', 'the pause seen from a third peer')
    const resumed = await actOnRollout(third, 'site/motd', m.root, { type: 'resume', at: Date.now() })
    expect(resumed.record.state).toBe('running')
    const canary = m.agents.findIndex((a) => stageOf(resumed.record.stages, a.peerId.toString(), 'site/motd', 2) === 0)
    await waitFor(async () => await motdOf(m, canary) === 'v2\n', 'the canary on v2')
    await waitFor(async () => (await readRecord(other, 'site/motd'))?.record.state === 'running', 'the resume seen from the other peer')
    const aborted = await actOnRollout(other, 'site/motd', m.root, { type: 'abort', at: Date.now(), reason: 'wrong motd', rollback: true })
    expect(aborted.record).toEqual(expect.objectContaining({ state: 'aborted', rolledBack: true, reason: 'wrong motd' }))
    await waitFor(async () => await motdOf(m, canary) === 'v1\n', 'the canary back on v1')
    for (let i = 0; i < 4; i++) expect(await motdOf(m, i)).toBe('v1\n')
  })

  it('a node that was down during the first stages comes back and follows the current one', async () => {
    const m = await fleetOf(4)
    const client = await admin(m.agents[0] as Agent)
    await publishV1(m, client)
    // One of the two nodes of highest rank for v2 is in the last stage only; it goes down (not
    // node-0, which the admin and the returning node go through), its state directory stays.
    const ranked = m.agents.map((a, i) => ({ i, r: rank(a.peerId.toString(), 'site/motd', 2) })).sort((a, b) => a.r < b.r ? -1 : 1)
    const last = ranked.slice(2).map((x) => x.i).find((i) => i !== 0) as number
    const down = m.agents[last] as Agent
    await down.stop()
    const started = await startRollout(client, { policy: site('v2\n'), key: m.root, ...plan('1,50%,100%') })
    expect(stageOf(started.record.record.stages, down.peerId.toString(), 'site/motd', 2)).toBe(2)
    // Stages 1 and 2 pass without it; when stage 3 starts, the publisher stops (and signs a pause).
    const stop = new AbortController()
    const first = await driveRollout(client, started.record, { key: m.root, pollMs: 100, signal: stop.signal, onStage: ({ record }) => { if (record.stage === 2) stop.abort() } })
    expect(first.end).toBe('interrupted')
    expect(first.record.record).toEqual(expect.objectContaining({ stage: 2, state: 'paused' }))
    // It comes back: it learns the newest record by sync, is in its stage, and applies v2.
    const dir = join(m.dir, `node-${last}`)
    const back = await m.add({ bootstrapFrom: [0], stateDir: join(dir, 'state'), root: join(dir, 'root'), name: `node-${last}` })
    expect(back.peerId.toString()).toBe(down.peerId.toString())
    await waitFor(() => back.envelope('rollout/site/motd')?.version === first.record.envelope.version, 'the newest record on the returning node')
    await waitFor(async () => await readFile(join(dir, 'root', PATH), 'utf8') === 'v2\n', 'the returning node on v2')
    // Another peer resumes it; with the returning node's receipt the last stage passes.
    await back.beacon()
    // Through a running node other than the publisher's (the stopped one keeps its index).
    const other = await admin(m.agents.find((_, i) => i !== 0 && i !== last) as Agent)
    const resumed = await actOnRollout(other, 'site/motd', m.root, { type: 'resume', at: Date.now() })
    const done = await driveRollout(other, resumed, { key: m.root, pollMs: 100, signal: AbortSignal.timeout(30_000) })
    expect(done.end).toBe('done')
  })
})
