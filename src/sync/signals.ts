/** The signal of one network operation, and `done()` to release what it holds. */
export interface ScopedSignal {
  signal: AbortSignal
  done: () => void
}

/**
 * A signal for one operation: aborted when any parent aborts, or after `timeoutMs`. Unlike
 * `AbortSignal.any`, it leaves nothing behind on a long-lived parent once `done()` is called:
 * on Node 20, `AbortSignal.any([shutdown, …])` left WeakRefs on the agent's shutdown signal that
 * were never freed, a few per sync round, so a long-running agent's memory grew without bound.
 */
export function scopedSignal (timeoutMs: number, ...parents: Array<AbortSignal | undefined>): ScopedSignal {
  const controller = new AbortController()
  const live = parents.filter((p): p is AbortSignal => p !== undefined)
  const onAbort = (evt: Event): void => { controller.abort((evt.target as AbortSignal).reason) }
  for (const p of live) {
    if (p.aborted) controller.abort(p.reason)
    else p.addEventListener('abort', onAbort, { once: true })
  }
  const timer = setTimeout(() => { controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError')) }, timeoutMs)
  timer.unref?.()
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer)
      for (const p of live) p.removeEventListener('abort', onAbort)
    }
  }
}
