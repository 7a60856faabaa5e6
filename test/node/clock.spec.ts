import { describe, expect, it } from 'vitest'
import { createClock, jittered, shuffle, systemSetTimer, TASK_JITTER } from '../../src/node/clock.js'
import { deferred, fakeClock, settle } from './fakes.js'

describe('jittered', () => {
  it.each<[string, number, number, number, number]>([
    ['random 0.5 is the interval itself', 1000, 0.5, 0.5, 1000],
    ['random 0 is the low edge', 1000, 0, 0.5, 750],
    ['random → 1 is the high edge', 1000, 1, 0.5, 1250],
    ['spread 0 is no jitter', 1000, 0.123, 0, 1000],
    ['spread 1: U(0.5, 1.5)', 1000, 0, 1, 500],
    ['spread 1, high edge', 1000, 1, 1, 1500]
  ])('%s: %d ms, random %d, spread %d → %d', (_, interval, r, spread, expected) => {
    expect(jittered(interval, () => r, spread)).toBeCloseTo(expected, 9)
  })
})

describe('shuffle', () => {
  it('gives every permutation of three exactly once over all the draws Fisher–Yates can make', () => {
    // Draw j ∈ [0, i] at i = 2, then at i = 1: 3 × 2 sequences, each a distinct permutation.
    const seen: string[] = []
    for (let j2 = 0; j2 < 3; j2++) {
      for (let j1 = 0; j1 < 2; j1++) {
        const draws = [(j2 + 0.5) / 3, (j1 + 0.5) / 2]
        seen.push(shuffle(['a', 'b', 'c'], () => draws.shift() as number).join(''))
      }
    }
    expect(seen.sort()).toEqual(['abc', 'acb', 'bac', 'bca', 'cab', 'cba'])
  })

  it('leaves its input as it was', () => {
    const input = [1, 2, 3, 4] as const
    const out = shuffle(input, () => 0)
    expect(input).toEqual([1, 2, 3, 4])
    expect(out.sort()).toEqual([1, 2, 3, 4])
  })

  it.each([[[]], [['only']]])('returns %j as it is', (items) => {
    expect(shuffle(items, () => { throw new Error('no draw needed') })).toEqual(items)
  })
})

describe('createClock', () => {
  it('passes the injected now and random through', () => {
    const clock = createClock({ now: () => 42, random: () => 0.25 })
    expect(clock.now()).toBe(42)
    expect(clock.random()).toBe(0.25)
  })

  describe('after', () => {
    it('runs once when its time comes, not before', async () => {
      const { time, clock } = fakeClock()
      let runs = 0
      clock.after(100, () => { runs++ })
      expect(clock.pending).toBe(1)
      await time.advance(99)
      expect(runs).toBe(0)
      await time.advance(1)
      expect(runs).toBe(1)
      expect(clock.pending).toBe(0)
      await time.advance(1000)
      expect(runs).toBe(1)
    })

    it('does not run once cancelled, and cancelling twice or after it ran is harmless', async () => {
      const { time, clock } = fakeClock()
      let runs = 0
      const cancel = clock.after(100, () => { runs++ })
      cancel()
      cancel()
      expect(clock.pending).toBe(0)
      expect(time.armed).toBe(0)
      await time.advance(200)
      expect(runs).toBe(0)

      const ranCancel = clock.after(10, () => { runs++ })
      await time.advance(10)
      ranCancel()
      expect(runs).toBe(1)
      expect(clock.pending).toBe(0)
    })
  })

  describe('stop', () => {
    it('cancels every timer, and refuses new ones', async () => {
      const { time, clock } = fakeClock()
      let runs = 0
      clock.after(10, () => { runs++ })
      clock.after(20, () => { runs++ })
      clock.repeat(30, () => { runs++ })
      expect(clock.pending).toBe(3)
      clock.stop()
      expect(clock.pending).toBe(0)
      expect(time.armed).toBe(0)

      const cancel = clock.after(10, () => { runs++ })
      clock.repeat(10, () => { runs++ })
      expect(clock.pending).toBe(0)
      expect(time.armed).toBe(0)
      await time.advance(1000)
      expect(runs).toBe(0)
      cancel()
    })

    it('does not re-arm a repeating task that was running when the clock stopped', async () => {
      const { time, clock } = fakeClock()
      const gate = deferred()
      let runs = 0
      clock.repeat(100, async () => {
        runs++
        await gate.promise
      }, 0)
      await time.advance(100)
      expect(runs).toBe(1)
      clock.stop()
      gate.resolve()
      await settle()
      expect(clock.pending).toBe(0)
      expect(time.armed).toBe(0)
    })
  })

  describe('repeat', () => {
    it('runs every interval, jittered by the injected random', async () => {
      const draws = [0, 1, 0.5]
      const { time, clock } = fakeClock({ random: () => draws.shift() ?? 0.5 })
      const at: number[] = []
      const start = time.now()
      clock.repeat(1000, () => { at.push(time.now() - start) })
      await time.advance(5000)
      // ±25 % (TASK_JITTER 0.5): 750, then 1250 later, then 1000 each.
      expect(TASK_JITTER).toBe(0.5)
      expect(at).toEqual([750, 2000, 3000, 4000, 5000])
    })

    it('keeps one timer however many thousand ticks it runs', async () => {
      const { time, clock } = fakeClock()
      let runs = 0
      let most = 0
      clock.repeat(10, async () => { runs++ }, 0)
      for (let i = 0; i < 3000; i++) {
        await time.advance(10)
        most = Math.max(most, clock.pending, time.armed)
      }
      expect(runs).toBe(3000)
      expect(most).toBe(1)
      expect(clock.pending).toBe(1)
    })

    it('arms the next tick only once the task has settled', async () => {
      const { time, clock } = fakeClock()
      const gate = deferred()
      let runs = 0
      clock.repeat(100, async () => {
        runs++
        if (runs === 1) await gate.promise
      }, 0)
      await time.advance(100)
      expect(runs).toBe(1)
      expect(clock.pending).toBe(0)
      await time.advance(1000)
      expect(runs).toBe(1)
      gate.resolve()
      await settle()
      expect(clock.pending).toBe(1)
      await time.advance(100)
      expect(runs).toBe(2)
    })

    it('reports a task that throws or rejects to onError, and runs it again on schedule', async () => {
      const errors: string[] = []
      const { time, clock } = fakeClock({ onError: (err) => { errors.push(err.message) } })
      let runs = 0
      clock.repeat(100, () => {
        runs++
        throw new Error(`sync ${runs}`)
      }, 0)
      clock.repeat(100, async () => { throw new Error('async') }, 0)
      await time.advance(300)
      expect(runs).toBe(3)
      expect(errors.filter((e) => e.startsWith('sync'))).toEqual(['sync 1', 'sync 2', 'sync 3'])
      expect(errors.filter((e) => e === 'async')).toHaveLength(3)
      expect(clock.pending).toBe(2)
    })

    it('stops when cancelled, even while its task is running', async () => {
      const { time, clock } = fakeClock()
      const gate = deferred()
      let runs = 0
      const cancel = clock.repeat(100, async () => {
        runs++
        await gate.promise
      }, 0)
      await time.advance(100)
      cancel()
      gate.resolve()
      await settle()
      await time.advance(1000)
      expect(runs).toBe(1)
      expect(clock.pending).toBe(0)

      const idle = clock.repeat(100, () => { runs++ }, 0)
      idle()
      await time.advance(1000)
      expect(runs).toBe(1)
      expect(time.armed).toBe(0)
    })

    it.each([0, -1, -1000, NaN])('with interval %d never runs and arms nothing', async (interval) => {
      const { time, clock } = fakeClock()
      let runs = 0
      const cancel = clock.repeat(interval, () => { runs++ })
      expect(clock.pending).toBe(0)
      expect(time.armed).toBe(0)
      await time.advance(10_000)
      expect(runs).toBe(0)
      cancel()
    })
  })
})

describe('systemSetTimer', () => {
  it('fires', async () => {
    const fired = await new Promise<boolean>((resolve) => { systemSetTimer(() => { resolve(true) }, 1) })
    expect(fired).toBe(true)
  })
})
