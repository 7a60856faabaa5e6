import { describe, expect, it } from 'vitest'
import { parseScenario, type Scenario } from '../../../src/sim/scenario.js'
import { validatePolicyObject } from '../../../src/policy/index.js'
import { simulate, type HostModel, type ModelOverrides } from '../../../src/sim/model/index.js'
import { NETNS_SHARED_CPU, SHARED_HOST_CPU } from '../../../src/sim/model/constants.js'
import { runModelScenario } from '../../../src/sim/model/run.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

function scenario (yaml: string): Scenario {
  const { scenario: s } = parseScenario(yaml, 'test.yaml')
  const loaded: Scenario['loaded'] = {}
  for (const [k, v] of Object.entries(s.policies)) loaded[k] = validatePolicyObject({ kind: 'policy', ...(v as Record<string, unknown>) })
  return { ...s, loaded }
}

const PLACED = (n: number, perHost: number | undefined, network: string, engine = 'model'): Scenario => scenario(`
name: perhost-test
engine: ${engine}
seed: 5
nodes: { count: ${n}${perHost !== undefined ? `, perHost: ${perHost}` : ''} }
topology: { kind: random, peers: 2 }
network: ${network}
policies:
  motd: { name: test/motd, resources: [ { id: motd, type: file, path: /etc/motd, content: "hi" } ] }
timeline:
  - { at: 1s, do: publish, policy: motd }
`)

/** ms after the publish at which each node took the envelope (node-0 published it). */
function heldAfter (s: Scenario, host: HostModel, params: ModelOverrides = {}): { held: Map<number, number>, applied: number[] } {
  const run = simulate(s, { host, params })
  const p = run.record.publishes[0]!
  return {
    held: new Map(run.record.deliveries.filter((d) => d.name === p.name).map((d) => [d.node, d.at - p.at])),
    applied: run.record.applies.filter((a) => a.name === p.name).map((a) => a.at - p.at).sort((a, b) => a - b)
  }
}

const QUICK: ModelOverrides = { cpu: { verifyMs: 1, applyMs: 1, applyIoMs: 1, backgroundMsPerS: 0 } }

describe('model engine: several agents per host (nodes.perHost)', () => {
  it('agents on one host reach each other over loopback: no delay, no loss; other hosts keep the scenario\'s', () => {
    // 4 agents, 2 per host: node i is on host i mod 2, so node-2 shares node-0's host, node-1 and node-3 do not.
    const lossy = '{ latency: 300ms, loss: 30% }'
    for (const host of [{ kind: 'dedicated' }, { kind: 'shared', cores: 2 }] as HostModel[]) {
      const { held } = heldAfter(PLACED(4, 2, lossy), host, QUICK)
      expect(held.size).toBe(4)
      expect(held.get(2)!).toBeLessThan(50)
      expect(held.get(1)!).toBeGreaterThanOrEqual(300)
      expect(held.get(3)!).toBeGreaterThanOrEqual(300)
      // One agent per host: every link has the delay.
      const apart = heldAfter(PLACED(4, undefined, lossy), host, QUICK).held
      expect(apart.get(2)!).toBeGreaterThanOrEqual(300)
    }
  })

  it('dedicated hosts: agents on one host share its disk, agents on other hosts do not', () => {
    const io: ModelOverrides = { cpu: { ...QUICK.cpu, applyIoMs: 100 } }
    // 3 agents on one host: their applies queue on its disk, 100 ms each.
    const together = heldAfter(PLACED(3, 3, '{ latency: 0ms }'), { kind: 'dedicated' }, io).applied
    expect(together).toHaveLength(3)
    expect(together[2]! - together[0]!).toBeGreaterThanOrEqual(200)
    // One agent per host: three disks, the applies overlap.
    const apart = heldAfter(PLACED(3, undefined, '{ latency: 0ms }'), { kind: 'dedicated' }, io).applied
    expect(apart[2]! - apart[0]!).toBeLessThan(100)
  })

  it('a shared host has one disk for every agent, whatever perHost says', () => {
    const io: ModelOverrides = { cpu: { ...QUICK.cpu, applyIoMs: 100 } }
    for (const perHost of [undefined, 2]) {
      const applied = heldAfter(PLACED(6, perHost, '{ latency: 0ms }'), { kind: 'shared', cores: 2 }, io).applied
      expect(applied).toHaveLength(6)
      expect(applied[5]! - applied[0]!).toBeGreaterThanOrEqual(500)
    }
  })

  it('with perHost > 1 a host\'s agents run in one thread (one worker process), even with cores to spare', () => {
    // 2 agents, both on one host, 8 cores: their 200 ms validations cannot overlap.
    const slow: ModelOverrides = { cpu: { ...QUICK.cpu, verifyMs: 200 } }
    const s = (perHost: number | undefined): Scenario => scenario(`
name: thread-test
engine: model
seed: 5
nodes: { count: 3${perHost !== undefined ? `, perHost: ${perHost}` : ''} }
topology: { kind: ring }
policies:
  motd: { name: test/motd, resources: [ { id: motd, type: file, path: /etc/motd, content: "hi" } ] }
timeline:
  - { at: 1s, do: publish, policy: motd }
`)
    // Node-0 publishes to node-1 and node-2 at once; each validates its copy for 200 ms.
    const one = heldAfter(s(3), { kind: 'shared', cores: 8 }, slow).held
    const apart = heldAfter(s(undefined), { kind: 'shared', cores: 8 }, slow).held
    expect(Math.max(one.get(1)!, one.get(2)!)).toBeGreaterThanOrEqual(400)
    expect(Math.max(apart.get(1)!, apart.get(2)!)).toBeLessThan(400)
  })

  it('an envelope is applied once it is stored: the saves of every agent queue on the disk before the applies\' CPU', () => {
    // One disk for 4 agents, 100 ms to store each envelope: the last save ends 400 ms after the
    // publish, and each apply (50 ms of CPU, no apply I/O) starts after its own save.
    const saving: ModelOverrides = { cpu: { ...QUICK.cpu, saveIoMs: 100, applyMs: 50, applyIoMs: 0 } }
    const { held, applied } = heldAfter(PLACED(4, undefined, '{ latency: 0ms }'), { kind: 'shared', cores: 4 }, saving)
    expect(applied).toHaveLength(4)
    expect(applied[0]!).toBeGreaterThanOrEqual(150)
    expect(applied[3]!).toBeGreaterThanOrEqual(450)
    // Storing is not on the gossip path: every agent held it long before.
    expect(Math.max(...held.values())).toBeLessThan(50)
  })

  it('a shared host takes the costs fitted to the engine the file was written for', async () => {
    const cpuOf = (engine: string): number | undefined => simulate(PLACED(6, 3, '{ latency: 25ms }', engine), { host: { kind: 'shared', cores: 2 } }).stats.params.cpu.saveIoMs
    expect(cpuOf('netns')).toBe(NETNS_SHARED_CPU.saveIoMs)
    // The live fit has no separate save: its apply CPU stays at acceptance time.
    expect(cpuOf('live')).toBe(undefined)
    const live = simulate(PLACED(6, undefined, '{ latency: 25ms }', 'live'), { host: { kind: 'shared', cores: 2 } }).stats.params
    expect(live.cpu.applyIoMs).toBe(SHARED_HOST_CPU.applyIoMs)
    expect(live.net.shapedHopMs ?? 0).toBe(0)
    // So does `grapevine sim FILE --engine model`, which makes the run a model one.
    const dir = mkdtempSync(join(tmpdir(), 'grapevine-perhost-'))
    try {
      const run = await runModelScenario(PLACED(6, 3, '{ latency: 25ms }', 'netns'), { out: dir, host: { kind: 'shared', cores: 2 } })
      expect(run.stats.params.cpu.saveIoMs).toBe(NETNS_SHARED_CPU.saveIoMs)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    // A named fit wins.
    expect(simulate(PLACED(6, 3, '{ latency: 25ms }', 'live'), { host: { kind: 'shared', cores: 2, fit: 'netns' } }).stats.params.cpu.applyIoMs).toBe(NETNS_SHARED_CPU.applyIoMs)
  })
})
