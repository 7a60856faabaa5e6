/**
 * Seeded randomness for simulations: a small PRNG (mulberry32), seed derivation, and the
 * latency distributions scenarios name. Pure: the same seed gives the same numbers.
 */

/** A 32-bit seed from any string (FNV-1a), so `seed: 7` and a node index can derive sub-seeds. */
export function seedOf (...parts: Array<string | number>): number {
  let h = 0x811c9dc5
  for (const ch of parts.join('/')) {
    h ^= ch.charCodeAt(0)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

/** mulberry32: fast, 32-bit state, good enough statistical quality for jitter and sampling. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** One-way link latency, in milliseconds. */
export type LatencyDist =
  | { dist: 'constant', ms: number }
  | { dist: 'uniform', min: number, max: number }
  | { dist: 'normal', mean: number, stddev: number }
  | { dist: 'lognormal', median: number, sigma: number }

/** Draws one latency (ms, never negative) from a distribution. */
export function sampleLatency (d: LatencyDist, random: () => number): number {
  switch (d.dist) {
    case 'constant': return d.ms
    case 'uniform': return d.min + (d.max - d.min) * random()
    case 'normal': return Math.max(0, d.mean + d.stddev * gaussian(random))
    case 'lognormal': return d.median * Math.exp(d.sigma * gaussian(random))
  }
}

/** The distribution's mean, for reports and the physical-limit model. */
export function meanLatency (d: LatencyDist): number {
  switch (d.dist) {
    case 'constant': return d.ms
    case 'uniform': return (d.min + d.max) / 2
    case 'normal': return d.mean
    case 'lognormal': return d.median * Math.exp(d.sigma * d.sigma / 2)
  }
}

/** Box–Muller; 1 - u keeps the logarithm finite. */
function gaussian (random: () => number): number {
  const u = 1 - random()
  const v = random()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}

/** The agent's shuffle (Fisher–Yates with an injected source): the seeded way to pick "random k nodes". */
export { shuffle } from '../node/clock.js'
