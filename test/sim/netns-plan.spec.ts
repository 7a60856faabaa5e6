// The netns engine's pure core: names, placement, partitions as host rules, the teardown script.
import { describe, expect, it } from 'vitest'
import { hostCount, hostOf, hostPartition, ownerOf, runNames, teardownScript } from '../../src/sim/netns/index.js'
import { delayerArgs, netemArgs, partitionCommands, shapingCommands } from '../../src/sim/netns/plan.js'
import { planTopology } from '../../src/sim/topology.js'
import { prng } from '../../src/sim/random.js'
import { loadScenario } from '../../src/sim/scenario.js'
import { REPO_ROOT } from '../helpers/cli.js'
import { join } from 'node:path'

describe('netns plan', () => {
  it('names every object from the coordinator pid, within 15-character interface names, and reads the pid back', () => {
    const n = runNames(4194304)
    expect([n.bridge, n.veth(249)].every((x) => x.length <= 15)).toBe(true)
    for (const name of [n.bridge, n.namespace(3), n.veth(12)]) expect(ownerOf(name)).toBe(4194304)
    for (const name of ['eth0', 'gv12x', 'gvbr', 'docker0']) expect(ownerOf(name)).toBeUndefined()
    expect(n.address(0)).toBe('10.77.0.1')
  })

  it('deals agents to hosts round-robin: 30 agents at 3 per host are 10 hosts', () => {
    expect(hostCount(30, 3)).toBe(10)
    expect(hostCount(31, 3)).toBe(11)
    expect([0, 10, 20].map((i) => hostOf(i, 10))).toEqual([0, 0, 0])
  })

  it('bootstraps each agent through peers on other hosts when several share one', () => {
    const plan = planTopology({ kind: 'random', peers: 2 }, 30, prng(7), (i) => hostOf(i, 10))
    expect(plan.edges.length).toBeGreaterThan(50)
    for (const [a, b] of plan.edges) expect(hostOf(a, 10)).not.toBe(hostOf(b, 10))
  })

  it.each([
    { groups: [[0, 1], [2, 3]], hosts: 4, want: { groups: [[0, 1], [2, 3]], split: [] } },
    // 4 nodes on 2 hosts: node 0 and 2 on host 0, 1 and 3 on host 1; [0,1] | [2,3] splits both hosts.
    { groups: [[0, 1], [2, 3]], hosts: 2, want: { groups: [[], []], split: [0, 1] } },
    { groups: [[0, 2], [1, 3]], hosts: 2, want: { groups: [[0], [1]], split: [] } }
  ])('turns node groups $groups on $hosts hosts into host groups', ({ groups, hosts, want }) => {
    expect(hostPartition(groups, hosts)).toEqual(want)
  })

  it('drops, or resets, traffic to the other groups\' hosts only, and a host in no group keeps every path', () => {
    const n = runNames(1)
    const rules = (h: number, mode: 'drop' | 'reset'): string[] => partitionCommands(n, h, [[0], [1, 2]], mode).map((c) => c.slice(5).join(' '))
    expect(rules(0, 'drop')).toEqual(['-F GV-PARTITION', '-A GV-PARTITION -d 10.77.0.2 -j DROP', '-A GV-PARTITION -d 10.77.0.3 -j DROP'])
    expect(rules(1, 'reset')).toEqual(['-F GV-PARTITION', '-A GV-PARTITION -d 10.77.0.1 -p tcp -j REJECT --reject-with tcp-reset', '-A GV-PARTITION -d 10.77.0.1 -j DROP'])
    expect(rules(3, 'drop')).toEqual(['-F GV-PARTITION'])
  })

  it('drops lost packets before they are queued for delay', () => {
    const c = shapingCommands(runNames(1), 0, { loss: 0.05, delay: 'nfqueue' }).map((x) => x.slice(5).join(' '))
    expect(c).toEqual(['-A OUTPUT -d 10.77.0.0/24 -m statistic --mode random --probability 0.05 -j DROP', '-A OUTPUT -d 10.77.0.0/24 -j NFQUEUE --queue-num 0'])
    expect(shapingCommands(runNames(1), 0, { loss: 0, delay: 'netem' })).toEqual([])
  })

  it('gives the delayer every latency distribution, and netem those it has', () => {
    expect(delayerArgs({ dist: 'uniform', min: 5, max: 25 })).toEqual(['uniform', '5', '25'])
    expect(delayerArgs({ dist: 'lognormal', median: 20, sigma: 0.5 })).toEqual(['lognormal', '20', '0.5'])
    expect(netemArgs({ dist: 'uniform', min: 5, max: 25 })).toEqual(['delay', '15ms', '10ms'])
    expect(netemArgs({ dist: 'lognormal', median: 20, sigma: 0.5 })).toBeUndefined()
  })

  it('writes a teardown script for a run prefix only', () => {
    expect(teardownScript('gv42')).toContain("grep -E '^gv42-h[0-9]+$'")
    expect(() => teardownScript('gv42; rm -rf /')).toThrow(/not a run prefix/)
  })

  it('loads the shipped netns scenarios (netns-calibration is 10 hosts of 3 agents)', async () => {
    const smoke = await loadScenario(join(REPO_ROOT, 'simulations', 'netns-smoke.yaml'))
    const cal = await loadScenario(join(REPO_ROOT, 'simulations', 'netns-calibration.yaml'))
    expect([smoke.engine, cal.engine]).toEqual(['netns', 'netns'])
    expect(hostCount(cal.nodes.count, cal.nodes.perHost ?? 1)).toBe(10)
    expect(cal.timeline.filter((e) => e.do === 'publish')).toHaveLength(10)
  })
})
