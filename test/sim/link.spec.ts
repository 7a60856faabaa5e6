import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { deliveryTime, isPerfectLink, lossDelay, shapeStream, type LinkModel } from '../../src/sim/link.js'
import { meanLatency, prng, sampleLatency, seedOf, shuffle, type LatencyDist } from '../../src/sim/random.js'

/** A random source that returns these values in turn. */
function sequence (...values: number[]): () => number {
  let i = 0
  return () => values[i++ % values.length] as number
}

describe('lossDelay', () => {
  const model = { loss: 0.2, rto: 200, mss: 1000 }
  it.each([
    { what: 'no loss, no delay', bytes: 500, rolls: [0.9], want: 0 },
    { what: 'one lost segment waits one RTO', bytes: 500, rolls: [0.1, 0.9], want: 200 },
    { what: 'lost twice backs off: 200 + 400', bytes: 500, rolls: [0.1, 0.1, 0.9], want: 600 },
    { what: 'a 3-segment chunk waits for its unluckiest segment', bytes: 2500, rolls: [0.9, 0.1, 0.1, 0.9, 0.1, 0.9], want: 600 },
    { what: 'a perfect link never rolls', bytes: 10_000, rolls: [0], want: 0, loss: 0 }
  ])('$what', ({ bytes, rolls, want, loss }) => {
    expect(lossDelay(bytes, { ...model, loss: loss ?? model.loss }, sequence(...rolls))).toBe(want)
  })

  it('stops backing off after a bounded number of repeats', () => {
    expect(lossDelay(100, { loss: 0.99, rto: 1 }, () => 0)).toBe(1 + 2 + 4 + 8 + 16 + 32)
  })

  it('loses about the share of segments asked for', () => {
    const random = prng(1)
    let lost = 0
    for (let i = 0; i < 20_000; i++) if (lossDelay(100, { loss: 0.2, rto: 1 }, random) > 0) lost++
    expect(lost / 20_000).toBeGreaterThan(0.18)
    expect(lost / 20_000).toBeLessThan(0.22)
  })
})

describe('deliveryTime', () => {
  it('keeps order: never before the chunk written before', () => {
    expect(deliveryTime(0, 100, 20)).toBe(120)
    expect(deliveryTime(500, 100, 20)).toBe(500)
    fc.assert(fc.property(fc.nat(10_000), fc.nat(10_000), fc.nat(10_000), (last, now, delay) => {
      const at = deliveryTime(last, now, delay)
      return at >= last && at >= now + delay && (at === last || at === now + delay)
    }))
  })
})

describe('shapeStream', () => {
  const chunks = (n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => new Uint8Array([i]))
  async function * source (items: Uint8Array[]): AsyncGenerator<Uint8Array> { for (const c of items) yield c }

  it('passes a perfect link through untouched', () => {
    const src = source(chunks(1))
    expect(shapeStream(src, { latency: { dist: 'constant', ms: 0 }, loss: 0, rto: 200 }, Math.random)).toBe(src)
    expect(isPerfectLink({ latency: { dist: 'constant', ms: 0 }, loss: 0, rto: 200 })).toBe(true)
    expect(isPerfectLink({ latency: { dist: 'uniform', min: 0, max: 0 }, loss: 0, rto: 200 })).toBe(false)
  })

  it('delivers every chunk, in order, through latency and loss', async () => {
    const model: LinkModel = { latency: { dist: 'uniform', min: 0, max: 5 }, loss: 0.3, rto: 2 }
    const seen: number[] = []
    for await (const c of shapeStream(source(chunks(40)), model, prng(3))) seen.push(c[0] as number)
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i))
  })

  it('stops reading its source when the consumer stops', async () => {
    let pulled = 0
    async function * endless (): AsyncGenerator<Uint8Array> { for (;;) { pulled++; yield new Uint8Array([pulled % 256]) } }
    for await (const _ of shapeStream(endless(), { latency: { dist: 'constant', ms: 1 }, loss: 0, rto: 200 }, Math.random)) break
    const after = pulled
    await new Promise((resolve) => setImmediate(resolve))
    expect(pulled - after).toBeLessThanOrEqual(1)
  })

  it('ends with the error its source ended with', async () => {
    async function * failing (): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1])
      throw new Error('reset by peer')
    }
    const got: number[] = []
    await expect((async () => {
      for await (const c of shapeStream(failing(), { latency: { dist: 'constant', ms: 1 }, loss: 0, rto: 200 }, Math.random)) got.push(c[0] as number)
    })()).rejects.toThrow('reset by peer')
    expect(got).toEqual([1])
  })
})

describe('random', () => {
  it('is reproducible from a seed, and seeds differ by their parts', () => {
    const a = prng(seedOf(7, 'agent', 3))
    const b = prng(seedOf(7, 'agent', 3))
    expect([a(), a(), a()]).toEqual([b(), b(), b()])
    expect(seedOf(7, 'agent', 3)).not.toBe(seedOf(7, 'agent', 4))
    const r = prng(1)
    for (let i = 0; i < 1000; i++) {
      const x = r()
      expect(x).toBeGreaterThanOrEqual(0)
      expect(x).toBeLessThan(1)
    }
  })

  it.each<[LatencyDist, number, number]>([
    [{ dist: 'constant', ms: 20 }, 20, 20],
    [{ dist: 'uniform', min: 10, max: 30 }, 10, 30],
    [{ dist: 'normal', mean: 50, stddev: 10 }, 0, Infinity],
    [{ dist: 'lognormal', median: 20, sigma: 0.5 }, 0, Infinity]
  ])('samples %j within [%d, %d] and near its mean', (d, lo, hi) => {
    const r = prng(5)
    const xs = Array.from({ length: 5000 }, () => sampleLatency(d, r))
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(lo)
    expect(Math.max(...xs)).toBeLessThanOrEqual(hi)
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length
    expect(Math.abs(mean - meanLatency(d)) / meanLatency(d)).toBeLessThan(0.05)
  })

  it('shuffle keeps every item', () => {
    fc.assert(fc.property(fc.array(fc.integer()), fc.nat(), (xs, seed) => {
      return JSON.stringify(shuffle(xs, prng(seed)).sort((a, b) => a - b)) === JSON.stringify(xs.slice().sort((a, b) => a - b))
    }))
  })
})
