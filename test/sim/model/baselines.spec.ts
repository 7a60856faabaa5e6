import { describe, expect, it } from 'vitest'
import { batchPush, centralPull, centralPush, type BaselineNet } from '../../../src/sim/model/baselines.js'

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

describe('batched push (Salt batch, Ansible serial), failhard', () => {
  const batch = { batchPercent: 5, sessionRtts: 5, applyMs: 10, failhard: true }
  // One batch: 5 round trips, the transfers through the master's uplink, latency, the apply, the report back.
  const perBatch = (hosts: number, bytes: number): number => 5 * 100 + hosts * bytes * 1000 / NET.uplinkBytesPerS + 50 + 10 + 50

  it('takes 20 batches of 5% one after the other for a good change, every host reached', () => {
    const r = batchPush(1000, 4096, NET, batch, () => false)
    expect(r).toMatchObject({ blastRadius: 1000, halted: false, batches: 20 })
    expect(r.times.t100).toBeGreaterThan(19 * perBatch(50, 4096))
    expect(r.times.t100).toBeLessThan(20 * perBatch(50, 4096))
  })

  it('stops after the first batch with a failure: a bad change reaches that batch, 5% of the fleet', () => {
    const everywhere = batchPush(1000, 4096, NET, batch, () => true)
    expect(everywhere).toMatchObject({ blastRadius: 50, halted: true, batches: 1 })
    expect(everywhere.times.t100).toBeUndefined()
    // Failing on host 120 only: the third batch (100–149) is the last.
    expect(batchPush(1000, 4096, NET, batch, (i) => i === 120)).toMatchObject({ blastRadius: 150, halted: true, batches: 3 })
    // Without failhard it goes on to the end.
    expect(batchPush(1000, 4096, NET, { ...batch, failhard: false }, () => true)).toMatchObject({ blastRadius: 1000, halted: false })
  })
})
