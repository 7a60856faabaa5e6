import { describe, expect, it } from 'vitest'
import { Turns } from '../../src/node/turns.js'

describe('Turns', () => {
  it('yields the event loop on every n-th call, and only then', async () => {
    let yielded = 0
    const turns = new Turns(3, async () => { yielded++ })
    const seen: number[] = []
    for (let i = 1; i <= 7; i++) {
      await turns.pass()
      seen.push(yielded)
    }
    expect(seen).toEqual([0, 0, 1, 1, 1, 2, 2])
  })

  it('lets a task queued behind a burst run before the burst ends (before: a burst of validations ran as one task)', async () => {
    const turns = new Turns(4)
    let done = 0
    let seenByTimer: number | undefined
    setImmediate(() => { seenByTimer = done })
    for (let i = 0; i < 20; i++) {
      await turns.pass()
      done++
    }
    expect(seenByTimer).toBeDefined()
    expect(seenByTimer).toBeLessThan(20)
  })
})
