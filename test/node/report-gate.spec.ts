import { describe, expect, it } from 'vitest'
import { generateIdentity, nodeSigningKey, peerIdOf } from '../../src/net/identity.js'
import { signReport, type NodeReport } from '../../src/receipt/index.js'
import { RateLimiter } from '../../src/node/rate-limit.js'
import { ALL_REPORTS, NODE_REPORTS, PEER_REPORTS, PEER_REPORT_STRIKES, REPORT_BATCH, ReportGate } from '../../src/node/report-gate.js'

async function fakeNode (): Promise<{ id: string, beacon: (n?: number) => Uint8Array }> {
  const key = await generateIdentity()
  const id = peerIdOf(key).toString()
  const signing = nodeSigningKey(key)
  return {
    id,
    beacon: (n = 0) => {
      const report: NodeReport = { format: 1, kind: 'presence', node: id, key: signing.id, name: 'fake', tags: {}, at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(), policies: [] }
      return signReport(report, signing)
    }
  }
}

describe('RateLimiter', () => {
  it.each<[string, number[], boolean[]]>([
    ['a burst up to the capacity, then nothing', [0, 0, 0, 0], [true, true, true, false]],
    ['refilled at the rate', [0, 0, 0, 0, 500, 1000], [true, true, true, false, false, true]],
    ['never above the capacity however long idle', [0, 60_000, 60_000, 60_000, 60_000], [true, true, true, true, false]]
  ])('%s', (_, times, expected) => {
    let now = 0
    const limiter = new RateLimiter({ capacity: 3, perSecond: 1, maxKeys: 10 }, () => now)
    expect(times.map((t) => { now = t; return limiter.take('p') })).toEqual(expected)
  })

  it('keeps keys apart, and at most maxKeys of them', () => {
    const limiter = new RateLimiter({ capacity: 1, perSecond: 0, maxKeys: 2 }, () => 0)
    expect([limiter.take('a'), limiter.take('b'), limiter.take('a'), limiter.take('b')]).toEqual([true, true, false, false])
    limiter.take('c')
    expect(limiter.size).toBe(2)
  })
})

describe('ReportGate', () => {
  it('verifies in batches, yielding the event loop between them', async () => {
    const nodes = await Promise.all(Array.from({ length: 3 * REPORT_BATCH }, async () => await fakeNode()))
    let taken = 0
    const atYield: number[] = []
    const gate = new ReportGate({
      now: () => 0,
      take: () => { taken++ },
      yieldTurn: async () => { atYield.push(taken); await new Promise((resolve) => setImmediate(resolve)) }
    })
    const outcomes = await Promise.all(nodes.map(async (n) => await gate.check(n.beacon(), 'peer-1')))
    expect(outcomes.every((o) => o === 'accepted')).toBe(true)
    expect(taken).toBe(nodes.length)
    // Verified a batch per turn: what the API and the other protocols get in between.
    expect(atYield).toEqual([0, REPORT_BATCH, 2 * REPORT_BATCH])
  })

  it('drops a node\'s reports past its rate before verifying them', async () => {
    const node = await fakeNode()
    let now = 0
    const dropped: string[] = []
    const gate = new ReportGate({ now: () => now, take: () => {}, dropped: (why) => { dropped.push(why) } })
    const outcomes = []
    for (let i = 0; i < NODE_REPORTS.capacity + 5; i++) outcomes.push(await gate.check(node.beacon(i), `peer-${i}`))
    expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(NODE_REPORTS.capacity)
    expect(outcomes.slice(NODE_REPORTS.capacity)).toEqual(Array(5).fill('ignored'))
    expect(dropped).toEqual(Array(5).fill('node-rate'))
    now += 1000 / NODE_REPORTS.perSecond
    expect(await gate.check(node.beacon(99), 'peer-x')).toBe('accepted')
  })

  it('ignores a peer past its rate, then rejects it once it keeps on (gossipsub penalises that)', async () => {
    const gate = new ReportGate({ now: () => 0, take: () => {} })
    // Garbage costs nothing to make; the sender's rate is checked before anything is decoded.
    const junk = new TextEncoder().encode('{"kind":"presence"}')
    const outcomes = new Map<string, number>()
    for (let i = 0; i < PEER_REPORTS.capacity + PEER_REPORT_STRIKES.capacity + 10; i++) {
      const o = await gate.check(junk, 'flooder')
      outcomes.set(o, (outcomes.get(o) ?? 0) + 1)
    }
    // Within its burst each junk report is refused on its own merits; past it, ignored; past the strikes, rejected.
    expect(outcomes.get('ignored')).toBe(PEER_REPORT_STRIKES.capacity)
    expect(outcomes.get('rejected')).toBe(PEER_REPORTS.capacity + 10)
    expect(await gate.check(junk, 'someone-else')).toBe('rejected')
  })

  it('verifies at most ALL_REPORTS from all peers together, dropping the rest unverified', async () => {
    const dropped: string[] = []
    const gate = new ReportGate({ now: () => 0, take: () => {}, dropped: (why) => { dropped.push(why) } })
    const junk = (i: number): Uint8Array => new TextEncoder().encode(`{"node":"n${i}"}`)
    // Four peers, each within its own burst, made-up node ids: together past the bound over all.
    const outcomes = await Promise.all(Array.from({ length: 4 * 400 }, async (_, i) => await gate.check(junk(i), `peer-${i % 4}`)))
    expect(outcomes.filter((o) => o === 'ignored')).toHaveLength(4 * 400 - ALL_REPORTS.capacity)
    expect(dropped.every((d) => d === 'all-rate')).toBe(true)
  })

  it('never penalises a relay that forwards what its own gate let through, and penalises a flood ten times faster', async () => {
    let now = 0
    const penalised = new Map<string, number>()
    const gate = new ReportGate({ now: () => now, take: () => {}, dropped: (why) => { if (why === 'peer-penalised') penalised.set('x', (penalised.get('x') ?? 0) + 1) } })
    const junk = new TextEncoder().encode('{"kind":"presence"}')
    // An honest relay: its own gate's burst at once, then its rate over all peers, for two minutes.
    for (let i = 0; i < ALL_REPORTS.capacity; i++) await gate.check(junk, 'relay')
    for (let t = 0; t < 120_000; t += 100) {
      now = t
      for (let i = 0; i < ALL_REPORTS.perSecond / 10; i++) await gate.check(junk, 'relay')
    }
    expect(penalised.get('x')).toBeUndefined()
    // A flooder ten times as fast is penalised within a second.
    for (let t = 120_000; t < 121_000 && penalised.get('x') === undefined; t += 100) {
      now = t
      for (let i = 0; i < ALL_REPORTS.perSecond; i++) await gate.check(junk, 'flooder')
    }
    expect(penalised.get('x')).toBeGreaterThan(0)
    expect(PEER_REPORTS.perSecond).toBeLessThan(ALL_REPORTS.perSecond)
  })

  it('refuses a report signed by another node\'s key, and garbage', async () => {
    const a = await fakeNode()
    const b = await fakeNode()
    const gate = new ReportGate({ now: () => 0, take: () => {} })
    const forged = JSON.parse(new TextDecoder().decode(a.beacon())) as Record<string, unknown>
    forged.node = b.id
    expect(await gate.check(new TextEncoder().encode(JSON.stringify(forged)), 'p')).toBe('rejected')
    expect(await gate.check(new Uint8Array([1, 2, 3]), 'p')).toBe('rejected')
  })
})
