import { describe, expect, it } from 'vitest'
import { FairQueue } from '../../src/node/fair-queue.js'
import { deferred, settle, type Deferred } from './fakes.js'

describe('FairQueue', () => {
  it('runs at most perKey of one key and total in all, the next slot going to the next key in turn', async () => {
    const q = new FairQueue({ perKey: 2, total: 3, queuedPerKey: 10 })
    const started: string[] = []
    const gates: Deferred<void>[] = []
    const task = (label: string) => async () => {
      started.push(label)
      const d = deferred()
      gates.push(d)
      await d.promise
    }
    for (let i = 0; i < 5; i++) void q.run('flood', task(`flood${i}`))
    void q.run('honest', task('honest0'))
    void q.run('honest', task('honest1'))
    await settle()
    expect(started).toEqual(['flood0', 'flood1', 'honest0'])
    expect(q.load()).toEqual({ waiting: 4, running: 3 })
    gates[0]!.resolve()
    await settle()
    expect(started.slice(3)).toEqual(['flood2'])
    // honest's next task goes ahead of flood's three waiting: one key's backlog is its own.
    gates[2]!.resolve()
    await settle()
    expect(started.slice(4)).toEqual(['honest1'])
    expect(q.load('flood')).toEqual({ waiting: 2, running: 2 })
  })

  it('refuses a task when its key already has queuedPerKey waiting, and passes results and errors through', async () => {
    const q = new FairQueue({ perKey: 1, total: 1, queuedPerKey: 1 })
    const hold = deferred<number>()
    const first = q.run('k', async () => await hold.promise)
    const second = q.run('k', async () => { throw new Error('boom') })
    expect(q.run('k', async () => 3)).toBeUndefined()
    expect(q.load('k')).toEqual({ waiting: 1, running: 1 })
    hold.resolve(1)
    expect(await first).toBe(1)
    await expect(second).rejects.toThrow('boom')
    expect(q.load()).toEqual({ waiting: 0, running: 0 })
  })
})
