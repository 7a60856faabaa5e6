import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { EventQueue, emptyEvent } from '../../../src/sim/model/heap.js'

function drain (q: EventQueue): Array<{ time: number, a: number }> {
  const out: Array<{ time: number, a: number }> = []
  const e = emptyEvent()
  while (q.pop(e)) out.push({ time: e.time, a: e.a })
  return out
}

describe('EventQueue', () => {
  it('pops in time order, equal times in insertion order', () => {
    const q = new EventQueue(2)
    const input: Array<[number, number]> = [[5, 0], [1, 1], [5, 2], [0, 3], [1, 4], [3, 5]]
    for (const [t, a] of input) q.push(t, 1, a)
    expect(drain(q)).toEqual([{ time: 0, a: 3 }, { time: 1, a: 1 }, { time: 1, a: 4 }, { time: 3, a: 5 }, { time: 5, a: 0 }, { time: 5, a: 2 }])
    expect(q.size).toBe(0)
    expect(q.peekTime()).toBe(Infinity)
  })

  it('carries kind and three arguments through growth', () => {
    const q = new EventQueue(16)
    for (let i = 0; i < 1000; i++) q.push(1000 - i, i % 7, i, -i, i * 2)
    const e = emptyEvent()
    expect(q.pop(e)).toBe(true)
    expect(e).toEqual({ time: 1, kind: 999 % 7, a: 999, b: -999, c: 1998 })
    expect(q.size).toBe(999)
    expect(q.scheduled).toBe(1000)
  })

  it('refuses a time that is not a finite non-negative number', () => {
    const q = new EventQueue()
    expect(() => { q.push(NaN, 1) }).toThrow(RangeError)
    expect(() => { q.push(-1, 1) }).toThrow(RangeError)
    expect(() => { q.push(Infinity, 1) }).toThrow(RangeError)
  })

  it('is a stable sort of whatever is pushed, interleaved with pops', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.boolean()), { maxLength: 300 }), (ops) => {
      const q = new EventQueue(4)
      const model: Array<{ time: number, a: number }> = []
      const e = emptyEvent()
      ops.forEach(([t, pop], i) => {
        q.push(t, 0, i)
        model.push({ time: t, a: i })
        if (pop) {
          model.sort((x, y) => x.time - y.time || x.a - y.a)
          const want = model.shift()
          q.pop(e)
          expect({ time: e.time, a: e.a }).toEqual(want)
        }
      })
      model.sort((x, y) => x.time - y.time || x.a - y.a)
      expect(drain(q)).toEqual(model)
    }))
  })
})
