import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { cdf, coverageCurve, expectedHops, percentile, quantiles, summarize, timeToFraction } from '../../src/sim/metrics.js'

describe('timeToFraction', () => {
  const table: Array<{ what: string, latencies: number[], targeted: number, fraction: number, want: number | undefined }> = [
    { what: 'half of 4 is the 2nd', latencies: [40, 10, 30, 20], targeted: 4, fraction: 0.5, want: 20 },
    { what: 'all of 4 is the slowest', latencies: [40, 10, 30, 20], targeted: 4, fraction: 1, want: 40 },
    { what: '90% of 10 is the 9th, not the 10th (no float drift)', latencies: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], targeted: 10, fraction: 0.9, want: 9 },
    { what: '99% of 20 needs all 20', latencies: Array.from({ length: 20 }, (_, i) => i + 1), targeted: 20, fraction: 0.99, want: 20 },
    { what: '99% of 200 is the 198th', latencies: Array.from({ length: 200 }, (_, i) => i + 1), targeted: 200, fraction: 0.99, want: 198 },
    { what: 'not reached: 3 of 4 applied, all asked', latencies: [1, 2, 3], targeted: 4, fraction: 1, want: undefined },
    { what: 'reached by the applied ones: 3 of 4 is 75%', latencies: [1, 2, 3], targeted: 4, fraction: 0.75, want: 3 },
    { what: 'no target, no time', latencies: [], targeted: 0, fraction: 0.5, want: undefined },
    { what: 'a tiny fraction still needs one node', latencies: [7], targeted: 100, fraction: 0.001, want: 7 }
  ]
  it.each(table)('$what', ({ latencies, targeted, fraction, want }) => {
    expect(timeToFraction(latencies, targeted, fraction)).toBe(want)
  })

  it('quantiles omit what was not reached', () => {
    expect(quantiles([5, 1, 3], 4)).toEqual({ t50: 3 })
    expect(quantiles([5, 1, 3, 9], 4)).toEqual({ t50: 3, t90: 9, t99: 9, t100: 9 })
  })

  it('is monotonic in the fraction', () => {
    fc.assert(fc.property(fc.array(fc.nat(10_000), { minLength: 1, maxLength: 50 }), fc.double({ min: 0.01, max: 1, noNaN: true }), fc.double({ min: 0.01, max: 1, noNaN: true }), (lat, a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a]
      const tlo = timeToFraction(lat, lat.length, lo) as number
      const thi = timeToFraction(lat, lat.length, hi) as number
      return tlo <= thi
    }))
  })
})

describe('coverageCurve and cdf', () => {
  it('is a step curve from [0, 0], one point per distinct time', () => {
    expect(coverageCurve([30, 10, 10, 20], 5)).toEqual([[0, 0], [10, 0.4], [20, 0.6], [30, 0.8]])
  })

  it('merges a latency of 0 into the start point', () => {
    expect(coverageCurve([0, 5], 2)).toEqual([[0, 0.5], [5, 1]])
  })

  it('thins long curves and keeps the last point', () => {
    const lat = Array.from({ length: 1000 }, (_, i) => i + 1)
    const c = coverageCurve(lat, 1000, 50)
    expect(c).toHaveLength(50)
    expect(c[c.length - 1]).toEqual([1000, 1])
    expect(c[0]).toEqual([0, 0])
  })

  it('cdf is normalised to the values given', () => {
    expect(cdf([2, 4])).toEqual([[0, 0], [2, 0.5], [4, 1]])
    expect(cdf([])).toEqual([])
  })

  it('never decreases and ends at applied/targeted', () => {
    fc.assert(fc.property(fc.array(fc.nat(5000), { maxLength: 80 }), fc.nat(40), (lat, extra) => {
      const targeted = lat.length + extra
      if (targeted === 0) return coverageCurve(lat, targeted).length === 0
      const c = coverageCurve(lat, targeted)
      for (let i = 1; i < c.length; i++) if ((c[i] as number[])[0]! < (c[i - 1] as number[])[0]! || (c[i] as number[])[1]! < (c[i - 1] as number[])[1]!) return false
      return Math.abs((c[c.length - 1] as number[])[1]! - lat.length / targeted) < 1e-9
    }))
  })
})

describe('percentile, summarize, expectedHops', () => {
  it.each([
    { values: [1, 2, 3, 4], p: 50, want: 2 },
    { values: [1, 2, 3, 4], p: 100, want: 4 },
    { values: [1, 2, 3, 4], p: 0, want: 1 },
    { values: [9], p: 90, want: 9 },
    { values: [], p: 50, want: undefined }
  ])('percentile($values, $p) = $want', ({ values, p, want }) => {
    expect(percentile(values, p)).toBe(want)
  })

  it('summarizes', () => {
    expect(summarize([4, 1, 7])).toEqual({ count: 3, mean: 4, p50: 4, p90: 7, max: 7 })
    expect(summarize([])).toBeUndefined()
  })

  it.each([
    { nodes: 1, want: 0 },
    { nodes: 6, want: 1 },
    { nodes: 7, want: 2 },
    { nodes: 1000, want: 4 },
    { nodes: 10_000, want: 6 }
  ])('hops for $nodes nodes at D = 6: $want', ({ nodes, want }) => {
    expect(expectedHops(nodes)).toBe(want)
  })
})
