// Pure arithmetic over measured times: the figures a simulation reports. No I/O, no clocks.

/**
 * Time until `fraction` of `targeted` nodes had applied, given the latencies of those that
 * did: the k-th smallest latency with k = ceil(fraction × targeted). Undefined when fewer
 * than k nodes ever applied (the fraction was never reached).
 */
export function timeToFraction (latencies: readonly number[], targeted: number, fraction: number): number | undefined {
  if (targeted <= 0) return undefined
  // The epsilon keeps 0.9 × 10 at 9 nodes, not 10 (floating point gives 9.000000000000002).
  const k = Math.max(1, Math.ceil(fraction * targeted - 1e-9))
  if (latencies.length < k) return undefined
  return sorted(latencies)[k - 1]
}

export interface Quantiles {
  t50?: number
  t90?: number
  t99?: number
  t100?: number
}

export function quantiles (latencies: readonly number[], targeted: number): Quantiles {
  const out: Quantiles = {}
  const t50 = timeToFraction(latencies, targeted, 0.5)
  const t90 = timeToFraction(latencies, targeted, 0.9)
  const t99 = timeToFraction(latencies, targeted, 0.99)
  const t100 = timeToFraction(latencies, targeted, 1)
  if (t50 !== undefined) out.t50 = t50
  if (t90 !== undefined) out.t90 = t90
  if (t99 !== undefined) out.t99 = t99
  if (t100 !== undefined) out.t100 = t100
  return out
}

/**
 * Coverage over time as a step curve: [time, fraction of targeted nodes applied], starting at
 * [0, 0], one point per distinct time. At most `maxPoints` points (evenly thinned, the last kept).
 */
export function coverageCurve (latencies: readonly number[], targeted: number, maxPoints = Infinity): Array<[number, number]> {
  if (targeted <= 0) return []
  const points: Array<[number, number]> = [[0, 0]]
  const s = sorted(latencies)
  for (let i = 0; i < s.length; i++) {
    const t = s[i] as number
    const f = (i + 1) / targeted
    const last = points[points.length - 1] as [number, number]
    if (last[0] === t) last[1] = f
    else points.push([t, f])
  }
  return thin(points, maxPoints)
}

/** Empirical CDF of the latencies themselves: [time, fraction of the given latencies ≤ time]. */
export function cdf (latencies: readonly number[], maxPoints = Infinity): Array<[number, number]> {
  return latencies.length === 0 ? [] : coverageCurve(latencies, latencies.length, maxPoints)
}

/** Nearest-rank percentile of a sample (p in 0..100). */
export function percentile (values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined
  const s = sorted(values)
  const k = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length - 1e-9)))
  return s[k - 1]
}

/** The median of a sample: the middle value, or the mean of the two middle ones. */
export function median (values: readonly number[]): number {
  const s = sorted(values)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2
}

export interface Summary {
  count: number
  mean: number
  p50: number
  p90: number
  max: number
}

export function summarize (values: readonly number[]): Summary | undefined {
  if (values.length === 0) return undefined
  const total = values.reduce((a, b) => a + b, 0)
  return {
    count: values.length,
    mean: total / values.length,
    p50: percentile(values, 50) as number,
    p90: percentile(values, 90) as number,
    max: Math.max(...values)
  }
}

/** Hops a gossip needs to cross N nodes at mesh degree D (DESIGN.md, physical-limit model). */
export function expectedHops (nodes: number, degree = 6): number {
  return nodes <= 1 ? 0 : Math.max(1, Math.ceil(Math.log(nodes) / Math.log(degree)))
}

function sorted (values: readonly number[]): number[] {
  return values.slice().sort((a, b) => a - b)
}

function thin (points: Array<[number, number]>, maxPoints: number): Array<[number, number]> {
  if (points.length <= maxPoints || maxPoints < 2) return points
  const out: Array<[number, number]> = []
  const step = (points.length - 1) / (maxPoints - 1)
  for (let i = 0; i < maxPoints; i++) out.push(points[Math.round(i * step)] as [number, number])
  return out
}
