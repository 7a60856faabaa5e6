import { describe, expect, it } from 'vitest'
import { loadScenario } from '../../../src/sim/scenario.js'
import { simulate } from '../../../src/sim/model/index.js'
import { churnRun, gossipFigures, physicalLimitMs, renderScale, sharedHostOverrides } from '../../../src/sim/model/scale.js'
import { centralPull, centralPush } from '../../../src/sim/model/baselines.js'

describe('scale sweep', () => {
  it('physical limit is hops × (latency + verify + one transfer)', () => {
    // N = 1,000, D = 6: ⌈ln 1000 / ln 6⌉ = 4 hops.
    expect(physicalLimitMs(1000, 50, 4096, 12.5e6, 1)).toBeCloseTo(4 * (50 + 1 + 4096 * 1000 / 12.5e6), 6)
    expect(physicalLimitMs(1, 50, 4096, 12.5e6, 1)).toBe(0)
  })

  it('figures and report for a small sweep, every number finite', async () => {
    const s = await loadScenario('simulations/scale-internet.yaml')
    const g = gossipFigures(simulate(s, { nodes: 200, policyBytes: 4096, ignoreChecks: true }), s)
    expect(g.times.t100).toBeDefined()
    expect(g.via.gossip).toBe(199)
    expect(g.busiest.bytes).toBeGreaterThan(4096 * 6)
    const a = gossipFigures(simulate(s, { nodes: 200, policyBytes: 1 << 20, ignoreChecks: true, }), s)
    expect(a.perNode.policyBytesMean / (1 << 20)).toBeLessThanOrEqual(1.5)
    const net = { latency: s.network.latency, loss: 0, rto: 200, uplinkBytesPerS: 12.5e6 }
    const push = { forks: 5, sessionRtts: 5, perHostMs: 0, applyMs: 25 }
    const pull = { intervalMs: 300_000, splayMs: 0, serveMs: 480, masterCores: 8, connectRtts: 2, pollBytes: 4096, applyMs: 25 }
    const html = renderScale({
      startedAt: new Date(0).toISOString(),
      machine: { cpus: 2, model: 'test', node: process.version },
      network: 'test',
      meanLatencyMs: 57,
      sweep: [{ nodes: 200, gossip: g, push: [centralPush(200, 4096, net, push)], pull: [{ ...centralPull(200, 4096, net, pull), tool: 'CFEngine-style' }] }],
      big: [{ nodes: 200, gossip: a, announce: a }],
      churn: [],
      calibration: { rows: [], note: 'none' }
    })
    expect(html).toContain('<svg')
    expect(html).not.toMatch(/NaN|undefined|Infinity/)
  })

  it('the churn scenario converges: every running node holds the last publish', async () => {
    const s = await loadScenario('simulations/scale-churn.yaml')
    const c = churnRun(s, 2000, 1)
    expect(c.holders).toBe(c.up)
    expect(c.convergedAt).toBeDefined()
  })

  it('the shared-host model routes every receipt back to the publisher, one hop per hop the envelope took', async () => {
    const s = await loadScenario('simulations/scale-calibration.yaml')
    const run = simulate({ ...s, engine: 'model' }, { nodes: 25, params: sharedHostOverrides(1) })
    expect(run.record.applies.length).toBe(25)
    const m = run.engine.msgs[0]!
    const received = run.engine.traffic.receiptsRecv
    expect(received[m.origin]).toBe(24)
    let hops = 0
    let routed = 0
    for (let v = 0; v < 25; v++) {
      hops += m.hops[v]!
      routed += received[v]!
    }
    expect(routed).toBe(hops)
    expect(routed).toBeGreaterThan(24)
  })
})
