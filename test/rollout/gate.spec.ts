import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { evaluateGate, allowedFailures, type GateOptions, type GateReport, type GateResult, type GateOutcome } from '../../src/rollout/index.js'

const S = 1000
const stage = { members: ['a', 'b', 'c'], startedAt: 0 }
const opts: GateOptions = { maxFailures: { kind: 'count', count: 0 }, bakeMs: 60 * S, stageTimeoutMs: 600 * S }
const r = (node: string, outcome: GateOutcome, at: number, admitted = true): GateReport => ({ node, outcome, at, admitted })
const allGood = [r('a', 'applied', 10 * S), r('b', 'unchanged', 20 * S), r('c', 'applied', 30 * S)]

describe('evaluateGate', () => {
  it.each<[string, GateReport[], number, Partial<GateOptions>, GateResult]>([
    ['nobody reported yet', [], 5 * S, {},
      { verdict: 'wait', missing: ['a', 'b', 'c'], healthy: 0, failures: [] }],
    ['one missing', allGood.slice(0, 2), 100 * S, {},
      { verdict: 'wait', missing: ['c'], healthy: 2, failures: [] }],
    ['all healthy, baking', allGood, 60 * S, {},
      { verdict: 'wait', missing: [], bakeUntil: 90 * S, healthy: 3, failures: [] }],
    ['all healthy, baked', allGood, 90 * S, {},
      { verdict: 'pass', healthy: 3 }],
    ['bake 0 passes as soon as the last reports', allGood, 30 * S, { bakeMs: 0 },
      { verdict: 'pass', healthy: 3 }],
    ['one failure over max 0', [...allGood.slice(0, 2), r('c', 'failed', 30 * S)], 31 * S, {},
      { verdict: 'halt', reason: 'too-many-failures', failures: [{ node: 'c', outcome: 'failed', at: 30 * S }], allowed: 0 }],
    ['unhealthy counts as a failure', [r('a', 'unhealthy', 5 * S)], 6 * S, {},
      { verdict: 'halt', reason: 'too-many-failures', failures: [{ node: 'a', outcome: 'unhealthy', at: 5 * S }], allowed: 0 }],
    ['a failure halts before everyone reported', [r('b', 'failed', 1 * S)], 2 * S, {},
      { verdict: 'halt', reason: 'too-many-failures', failures: [{ node: 'b', outcome: 'failed', at: 1 * S }], allowed: 0 }],
    ['one failure within max 1: waits for the bake', [...allGood.slice(0, 2), r('c', 'failed', 30 * S)], 31 * S, { maxFailures: { kind: 'count', count: 1 } },
      { verdict: 'wait', missing: [], bakeUntil: 80 * S, healthy: 2, failures: [{ node: 'c', outcome: 'failed', at: 30 * S }] }],
    ['one failure within max 1, baked', [...allGood.slice(0, 2), r('c', 'failed', 30 * S)], 80 * S, { maxFailures: { kind: 'count', count: 1 } },
      { verdict: 'pass', healthy: 2 }],
    ['max 34% of 3 allows 1', [r('a', 'failed', S), r('b', 'applied', S), r('c', 'applied', S)], S, { maxFailures: { kind: 'percent', milli: 34_000 }, bakeMs: 0 },
      { verdict: 'pass', healthy: 2 }],
    ['max 33% of 3 allows 0', [r('a', 'failed', S), r('b', 'applied', S), r('c', 'applied', S)], S, { maxFailures: { kind: 'percent', milli: 33_000 } },
      { verdict: 'halt', reason: 'too-many-failures', failures: [{ node: 'a', outcome: 'failed', at: S }], allowed: 0 }],
    ['stage timeout with a member missing', allGood.slice(0, 2), 600 * S, {},
      { verdict: 'halt', reason: 'stage-timeout', missing: ['c'], failures: [] }],
    ['no timeout while baking', allGood, 595 * S, { bakeMs: 10_000 * S },
      { verdict: 'wait', missing: [], bakeUntil: 10_030 * S, healthy: 3, failures: [] }],
    ['the latest report counts: a recovered node is healthy', [r('a', 'failed', S), ...allGood], 90 * S, {},
      { verdict: 'pass', healthy: 3 }],
    ['the latest report counts: a node that turned unhealthy during the bake halts', [...allGood, r('b', 'unhealthy', 50 * S)], 50 * S, {},
      { verdict: 'halt', reason: 'too-many-failures', failures: [{ node: 'b', outcome: 'unhealthy', at: 50 * S }], allowed: 0 }],
    ['a recovery restarts the bake from when it became healthy', [r('a', 'failed', S), r('a', 'applied', 40 * S), ...allGood.slice(1)], 80 * S, { maxFailures: { kind: 'count', count: 1 } },
      { verdict: 'wait', missing: [], bakeUntil: 100 * S, healthy: 3, failures: [] }],
    ['later healthy receipts (drift repair) do not restart the bake', [...allGood, r('a', 'unchanged', 85 * S)], 90 * S, {},
      { verdict: 'pass', healthy: 3 }],
    ['reports in any order', [...allGood].reverse(), 90 * S, {},
      { verdict: 'pass', healthy: 3 }]
  ])('%s', (_, reports, now, o, expected) => {
    expect(evaluateGate(stage, reports, now, { ...opts, ...o })).toEqual(expected)
  })

  it('bake counts from the stage start at the earliest (a resumed stage bakes again)', () => {
    expect(evaluateGate({ ...stage, startedAt: 100 * S }, allGood, 120 * S, opts)).toEqual({ verdict: 'wait', missing: [], bakeUntil: 160 * S, healthy: 3, failures: [] })
  })

  it('a stage with no admitted members passes after its bake', () => {
    expect(evaluateGate({ members: [], startedAt: 0 }, [], 59 * S, opts).verdict).toBe('wait')
    expect(evaluateGate({ members: [], startedAt: 0 }, [], 60 * S, opts).verdict).toBe('pass')
  })

  describe('only admitted members count', () => {
    it('reports from nodes that are not admitted cannot fill a stage', () => {
      const fakes = ['a', 'b', 'c'].map((n) => r(n, 'applied', S, false))
      expect(evaluateGate(stage, fakes, 100 * S, opts)).toEqual({ verdict: 'wait', missing: ['a', 'b', 'c'], healthy: 0, failures: [] })
    })

    it('nor fail it', () => {
      const fakes = ['a', 'b', 'c'].map((n) => r(n, 'failed', 50 * S, false))
      expect(evaluateGate(stage, [...allGood, ...fakes], 90 * S, opts)).toEqual({ verdict: 'pass', healthy: 3 })
    })

    it('reports from nodes outside the stage are ignored, however many', () => {
      const outsiders = Array.from({ length: 1000 }, (_, i) => r(`sybil${i}`, i % 2 === 0 ? 'failed' : 'applied', S))
      expect(evaluateGate(stage, [...allGood, ...outsiders], 90 * S, opts)).toEqual({ verdict: 'pass', healthy: 3 })
    })
  })

  it('property: adding reports from non-admitted or non-member nodes never changes the verdict', () => {
    const outcome = fc.constantFrom<GateOutcome>('applied', 'unchanged', 'failed', 'unhealthy')
    const report = (nodes: string[], admitted: fc.Arbitrary<boolean>): fc.Arbitrary<GateReport> =>
      fc.record({ node: fc.constantFrom(...nodes), outcome, admitted, at: fc.integer({ min: 0, max: 1000 * S }) })
    fc.assert(fc.property(
      fc.array(report(['a', 'b', 'c'], fc.constant(true)), { maxLength: 8 }),
      fc.array(fc.oneof(report(['a', 'b', 'c'], fc.constant(false)), report(['x', 'y'], fc.boolean())), { maxLength: 8 }),
      fc.integer({ min: 0, max: 2000 * S }),
      (real, noise, now) => {
        expect(evaluateGate(stage, [...real, ...noise], now, opts)).toEqual(evaluateGate(stage, real, now, opts))
      }))
  })

  it('property: a pass needs every member reported healthy or within max-failures, and the bake done', () => {
    const outcome = fc.constantFrom<GateOutcome>('applied', 'unchanged', 'failed', 'unhealthy')
    fc.assert(fc.property(
      fc.uniqueArray(fc.record({ node: fc.constantFrom('a', 'b', 'c'), outcome, admitted: fc.constant(true), at: fc.integer({ min: 0, max: 100 * S }) }), { maxLength: 8, selector: (x) => x.at }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 200 * S }),
      (reports, maxF, now) => {
        const o = { ...opts, maxFailures: { kind: 'count' as const, count: maxF } }
        if (evaluateGate(stage, reports, now, o).verdict !== 'pass') return
        const isFailure = (x: GateReport): boolean => x.outcome === 'failed' || x.outcome === 'unhealthy'
        let failed = 0
        for (const node of stage.members) {
          const mine = reports.filter((x) => x.node === node)
          expect(mine.length).toBeGreaterThan(0)
          const latest = mine.reduce((p, q) => (q.at > p.at ? q : p))
          if (isFailure(latest)) { failed++; continue }
          // Healthy since its first report after its last failure: the bake is over for it.
          const lastFailure = Math.max(-1, ...mine.filter(isFailure).map((x) => x.at))
          const since = Math.min(...mine.filter((x) => x.at > lastFailure).map((x) => x.at))
          expect(now).toBeGreaterThanOrEqual(since + o.bakeMs)
        }
        expect(failed).toBeLessThanOrEqual(maxF)
      }))
  })
})

describe('allowedFailures', () => {
  it.each<[Parameters<typeof allowedFailures>[0], number, number]>([
    [{ kind: 'count', count: 0 }, 10, 0],
    [{ kind: 'count', count: 2 }, 1, 2],
    [{ kind: 'percent', milli: 10_000 }, 9, 0],
    [{ kind: 'percent', milli: 10_000 }, 10, 1],
    [{ kind: 'percent', milli: 100_000 }, 7, 7]
  ])('%j of %i nodes → %i', (max, members, allowed) => {
    expect(allowedFailures(max, members)).toBe(allowed)
  })
})
