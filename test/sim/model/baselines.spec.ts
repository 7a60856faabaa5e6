import { describe, expect, it } from 'vitest'
import { centralPull, centralPush, type BaselineNet } from '../../../src/sim/model/baselines.js'

const NET: BaselineNet = { latency: { dist: 'constant', ms: 50 }, loss: 0, rto: 200, uplinkBytesPerS: 12.5e6 }

describe('central push', () => {
  it('takes about ⌈N/F⌉ per-host times when the uplink is not the bottleneck', () => {
    const push = { forks: 5, sessionRtts: 5, perHostMs: 0, applyMs: 10 }
    const bytes = 4096
    // One host: 5 round trips, the transfer, one-way latency, the apply; the report back frees the worker.
    const perHost = 5 * 100 + bytes * 1000 / NET.uplinkBytesPerS + 50 + 10 + 50
    for (const n of [1, 5, 6, 100, 1000]) {
      const r = centralPush(n, bytes, NET, push)
      const expected = Math.ceil(n / 5) * perHost - 50
      expect(r.times.t100).toBeGreaterThan(expected * 0.98)
      expect(r.times.t100).toBeLessThan(expected * 1.02)
      expect(r.busiest.bytesSent).toBe(n * bytes)
      expect(r.busiest.connections).toBe(n)
    }
  })

  it('is bound by the master uplink for large policies', () => {
    const r = centralPush(100, 1024 * 1024, NET, { forks: 50, sessionRtts: 5, perHostMs: 0, applyMs: 10 })
    expect(r.times.t100).toBeGreaterThan(100 * 1024 * 1024 * 1000 / NET.uplinkBytesPerS)
  })
})

describe('central pull', () => {
  it('reaches every host within interval + splay when the master keeps up', () => {
    const p = { intervalMs: 300_000, splayMs: 60_000, serveMs: 5, masterCores: 8, connectRtts: 2, pollBytes: 4096, applyMs: 10 }
    const r = centralPull(2000, 4096, NET, p)
    expect(r.utilisation).toBeLessThan(1)
    expect(r.times.t100).toBeLessThanOrEqual(p.intervalMs + p.splayMs + 1000)
    // Hosts wait about half the interval on average: T50 near T/2 (+ splay/2).
    expect(r.times.t50).toBeGreaterThan(0.4 * (p.intervalMs + p.splayMs))
    expect(r.times.t50).toBeLessThan(0.6 * (p.intervalMs + p.splayMs))
    expect(r.busiest.connections).toBe(2000)
  })

  it('falls behind when the master is overloaded', () => {
    const p = { intervalMs: 300_000, splayMs: 0, serveMs: 480, masterCores: 8, connectRtts: 2, pollBytes: 4096, applyMs: 10 }
    const ok = centralPull(2000, 4096, NET, p)
    const over = centralPull(20_000, 4096, NET, p)
    expect(over.utilisation).toBeGreaterThan(1)
    expect(over.times.t100).toBeGreaterThan(p.intervalMs)
    expect(ok.times.t100).toBeLessThan(p.intervalMs + 2000)
  })
})
