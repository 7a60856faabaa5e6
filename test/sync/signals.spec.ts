import { describe, expect, it } from 'vitest'
import { getEventListeners } from 'node:events'
import { scopedSignal } from '../../src/sync/index.js'

describe('scopedSignal', () => {
  it('leaves nothing on a long-lived parent once done, however many operations it served', () => {
    const shutdown = new AbortController()
    for (let i = 0; i < 10_000; i++) {
      const scope = scopedSignal(60_000, shutdown.signal, undefined)
      expect(scope.signal.aborted).toBe(false)
      scope.done()
    }
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0)
  })

  it('aborts with the parent\'s reason when a parent aborts', () => {
    const shutdown = new AbortController()
    const caller = new AbortController()
    const scope = scopedSignal(60_000, shutdown.signal, caller.signal)
    caller.abort(new Error('caller gave up'))
    expect(scope.signal.aborted).toBe(true)
    expect((scope.signal.reason as Error).message).toBe('caller gave up')
    scope.done()
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0)
  })

  it('is aborted at once by a parent that already was', () => {
    const parent = AbortSignal.abort(new Error('stopped'))
    const scope = scopedSignal(60_000, parent)
    expect(scope.signal.aborted).toBe(true)
    scope.done()
  })

  it('times out with a TimeoutError', async () => {
    const scope = scopedSignal(5)
    await new Promise<void>((resolve) => { scope.signal.addEventListener('abort', () => { resolve() }) })
    expect((scope.signal.reason as DOMException).name).toBe('TimeoutError')
    scope.done()
  })
})
