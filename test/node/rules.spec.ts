import { describe, expect, it } from 'vitest'
import {
  announces, fetchCandidates, forwards, receiptOutcome, receiptRoute, rotates, rotationDrop, syncDelay, SYNC_JITTER, type Via
} from '../../src/node/rules.js'
import { DEFAULT_ANNOUNCE_THRESHOLD, MAX_FETCH_PEERS, PEER_ROTATION_CHANCE, RELAY_SYNCED_WITHIN_MS } from '../../src/node/constants.js'
import { prng } from '../../src/sim/random.js'

const W = RELAY_SYNCED_WITHIN_MS

/** Every outcome receiptOutcome can return. */
type Outcome = ReturnType<typeof receiptOutcome>

/** A random source that always returns `r`. */
const constant = (r: number) => (): number => r

describe('announces (announce-and-fetch or gossip whole)', () => {
  it.each<[string, number, number, boolean]>([
    ['empty', 0, 100, false],
    ['below the threshold', 99, 100, false],
    ['exactly at the threshold: gossiped whole', 100, 100, false],
    ['one byte over', 101, 100, true],
    ['threshold 0 turns announcing off', 10 ** 9, 0, false],
    ['threshold Infinity turns it off', 10 ** 9, Infinity, false],
    ['a negative threshold is off', 10, -1, false],
    ['a NaN threshold is off', 10, NaN, false],
    ['threshold 1: anything over a byte', 2, 1, true]
  ])('%s: size %d, threshold %d → %s', (_, size, threshold, expected) => {
    expect(announces(size, threshold)).toBe(expected)
  })

  it('defaults to DEFAULT_ANNOUNCE_THRESHOLD', () => {
    expect(announces(DEFAULT_ANNOUNCE_THRESHOLD)).toBe(false)
    expect(announces(DEFAULT_ANNOUNCE_THRESHOLD + 1)).toBe(true)
  })
})

describe('forwards (send on to gossip peers after taking it)', () => {
  // One row list per way in: a new Via does not compile until it has rows here.
  const table = {
    gossip: [[false, 0, true], [false, 10 * W, true], [true, 10 * W, true]],
    local: [[false, 0, true], [false, 10 * W, true]],
    api: [[false, 0, true], [true, 10 * W, true]],
    sync: [
      [false, 0, true], // fresh, new to this node
      [false, W - 1, true], // just inside the window
      [false, W, false], // exactly at the window edge: old
      [false, W + 1, false], // old and new to this node: a catch-up, everyone else has it
      [true, W, true], // replaced an older version: an update, whatever its age
      [true, 10 * W, true],
      [true, 0, true],
      [false, -60_000, true] // signed "in the future" (clock skew): fresh
    ],
    disk: [[false, 0, false], [true, 0, false], [true, 10 * W, false]]
  } satisfies Record<Via, Array<[replacedOlder: boolean, ageMs: number, expected: boolean]>>

  for (const [via, rows] of Object.entries(table) as Array<[Via, Array<[boolean, number, boolean]>]>) {
    it.each(rows)(`${via}: replacedOlder %s, age %d ms → %s`, (replacedOlder, ageMs, expected) => {
      expect(forwards(via, replacedOlder, ageMs)).toBe(expected)
    })
  }
})

describe('receiptOutcome', () => {
  const table = {
    failed: [[0, 1], [5, 2]],
    applied: [[1, 0], [7, 0]],
    unchanged: [[0, 0]]
  } satisfies Record<Outcome, Array<[changed: number, failed: number]>>

  for (const [outcome, rows] of Object.entries(table) as Array<[Outcome, Array<[number, number]>]>) {
    it.each(rows)(`changed %d, failed %d → ${outcome}`, (changed, failed) => {
      expect(receiptOutcome(changed, failed)).toBe(outcome)
    })
  }
})

describe('receiptRoute (where a receipt goes)', () => {
  const connected = (p: string): boolean => p !== 'gone'
  it.each<[string, string | undefined, string | undefined, string | undefined]>([
    ['a receipt from downstream goes to the upstream', 'up', 'down', 'up'],
    ['this node\'s own receipt (no sender) goes to the upstream', 'up', undefined, 'up'],
    ['the publisher (no upstream) keeps it', undefined, 'down', undefined],
    ['the publisher keeps its own', undefined, undefined, undefined],
    ['never back to the peer it came from (upstream === from)', 'up', 'up', undefined],
    ['an upstream no longer connected: kept', 'gone', 'down', undefined],
    ['an upstream no longer connected, own receipt: kept', 'gone', undefined, undefined]
  ])('%s', (_, upstream, from, expected) => {
    expect(receiptRoute(upstream, from, connected)).toBe(expected)
  })

  it('takes node indexes too (the model): node 0 is a peer, not "none"', () => {
    expect(receiptRoute(0, 3, () => true)).toBe(0)
    expect(receiptRoute(0, 0, () => true)).toBeUndefined()
    expect(receiptRoute<number>(undefined, 0, () => true)).toBeUndefined()
  })

  it('asks whether the upstream is connected, and nothing else', () => {
    const asked: string[] = []
    receiptRoute('up', 'down', (p) => { asked.push(p); return true })
    expect(asked).toEqual(['up'])
  })
})

describe('fetchCandidates (whom to ask for an announced body)', () => {
  const others = ['b', 'c', 'd', 'e', 'f', 'g']

  it.each<[string, string[], number, number]>([
    ['at most MAX_FETCH_PEERS by default', others, MAX_FETCH_PEERS, MAX_FETCH_PEERS],
    ['max 1: the announcer alone', others, 1, 1],
    ['max 0 still asks the announcer', others, 0, 1],
    ['a negative max still asks the announcer', others, -3, 1],
    ['fewer peers than max: all of them', ['b', 'c'], 10, 3],
    ['no other peers: the announcer alone', [], 4, 1],
    ['max Infinity: everyone', others, Infinity, others.length + 1]
  ])('%s', (_, peers, max, length) => {
    const got = max === MAX_FETCH_PEERS ? fetchCandidates('a', peers, prng(1)) : fetchCandidates('a', peers, prng(1), max)
    expect(got).toHaveLength(length)
    expect(got[0]).toBe('a')
  })

  it('never repeats the announcer, even when the peer list holds it (twice)', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const got = fetchCandidates('c', ['b', 'c', 'd', 'c', 'e'], prng(seed), 10)
      expect(got[0]).toBe('c')
      expect(got.filter((p) => p === 'c')).toHaveLength(1)
    }
  })

  it('is a permutation of the other peers for a given seed, and the same one every time', () => {
    const orders = new Set<string>()
    for (let seed = 1; seed <= 200; seed++) {
      const got = fetchCandidates('a', others, prng(seed), Infinity)
      expect(got.slice(1).slice().sort()).toEqual(others)
      expect(fetchCandidates('a', others, prng(seed), Infinity)).toEqual(got)
      orders.add(got.join(''))
    }
    // 720 orders: 200 seeds give many of them, not one.
    expect(orders.size).toBeGreaterThan(100)
  })

  it('truncating keeps the shuffled order: a prefix of the full list for the same seed', () => {
    for (let seed = 1; seed <= 20; seed++) {
      expect(fetchCandidates('a', others, prng(seed), 3)).toEqual(fetchCandidates('a', others, prng(seed), Infinity).slice(0, 3))
    }
  })

  it('gives every other peer its turn to be asked second (random order, so a fleet does not fall back on one peer)', () => {
    const second = new Map<string, number>()
    for (let seed = 1; seed <= 600; seed++) {
      const p = fetchCandidates('a', others, prng(seed))[1] as string
      second.set(p, (second.get(p) ?? 0) + 1)
    }
    expect([...second.keys()].sort()).toEqual(others)
    for (const n of second.values()) expect(n).toBeGreaterThan(50)
  })

  it('takes node indexes (the model), node 0 included, and does not change the list it is given', () => {
    const peers = [0, 1, 2, 3]
    const got = fetchCandidates(0, peers, prng(3), 10)
    expect(got[0]).toBe(0)
    expect(got.slice(1).sort()).toEqual([1, 2, 3])
    expect(peers).toEqual([0, 1, 2, 3])
  })
})

describe('syncDelay (the next periodic anti-entropy round)', () => {
  it('spreads the interval over U(0.5, 1.5)', () => {
    expect(SYNC_JITTER).toBe(1)
  })

  it.each<[string, number, number, number]>([
    ['random 0: half the interval', 30_000, 0, 15_000],
    ['random 0.5: the interval', 30_000, 0.5, 30_000],
    ['random just under 1: just under 1.5 intervals', 30_000, 1 - 2 ** -53, 45_000 - 30_000 * 2 ** -53],
    ['interval 0: 0', 0, 0.7, 0],
    ['interval 1', 1, 0.25, 0.75]
  ])('%s', (_, interval, r, expected) => {
    expect(syncDelay(interval, constant(r))).toBeCloseTo(expected, 6)
  })

  it('is the law the model engine used before it shared the rule: interval × (0.5 + random())', () => {
    const a = prng(9)
    const b = prng(9)
    for (let i = 0; i < 1000; i++) expect(syncDelay(30_000, a)).toBe(30_000 * (0.5 + b()))
  })

  it('draws one random number per delay', () => {
    let draws = 0
    syncDelay(1000, () => { draws++; return 0.3 })
    expect(draws).toBe(1)
  })
})

describe('rotates (peer rotation: dial one known but unconnected peer beyond the target)', () => {
  const C = PEER_ROTATION_CHANCE
  it.each<[string, number, number, number, number, boolean]>([
    ['at the target, the draw under the chance', 8, 8, 5, C - 0.001, true],
    ['above the target (inbound connections)', 12, 8, 5, 0, true],
    ['the draw at the chance: no', 8, 8, 5, C, false],
    ['below the target: topping up dials already', 7, 8, 5, 0, false],
    ['no candidate (every known peer connected or blocked)', 8, 8, 0, 0, false],
    ['a target of 0 keeps no connections', 3, 0, 5, 0, false]
  ])('%s: %d connections, target %d, %d candidates, draw %d → %s', (_, connections, target, candidates, draw, expected) => {
    expect(rotates(connections, target, candidates, constant(draw))).toBe(expected)
  })

  it('draws nothing when it cannot rotate, so the caller\'s random sequence is unchanged', () => {
    let draws = 0
    const counting = (): number => { draws++; return 0 }
    rotates(7, 8, 5, counting)
    rotates(8, 8, 0, counting)
    expect(draws).toBe(0)
    rotates(8, 8, 5, counting)
    expect(draws).toBe(1)
  })

  it('rotates on about `chance` of the ticks', () => {
    const random = prng(11)
    let n = 0
    for (let i = 0; i < 10_000; i++) if (rotates(8, 8, 3, random, 0.25)) n++
    expect(n / 10_000).toBeGreaterThan(0.23)
    expect(n / 10_000).toBeLessThan(0.27)
  })
})

describe('rotationDrop (which connection a rotation hangs up)', () => {
  const held = [{ peer: 'a', since: 30 }, { peer: 'b', since: 10 }, { peer: 'c', since: 10 }, { peer: 'new', since: 5 }]
  it.each<[string, number, number, string | undefined]>([
    ['above the target: the one held longest, never the new one, ties to the first listed', 4, 3, 'b'],
    ['at the target: none', 3, 3, undefined],
    ['below the target: none', 2, 3, undefined]
  ])('%s', (_, connections, target, expected) => {
    expect(rotationDrop(held, 'new', connections, target)).toBe(expected)
  })

  it('none when the only connection it may drop is the one just dialled', () => {
    expect(rotationDrop([{ peer: 'new', since: 0 }], 'new', 5, 1)).toBeUndefined()
  })
})
