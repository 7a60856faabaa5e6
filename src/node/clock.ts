/**
 * The agent's time and randomness, injected so that simulations and tests are reproducible
 * (STYLE: no Date.now() or Math.random() inside logic). Every timer the agent's parts start
 * goes through one Clock, which knows how many are live and cancels them all on stop.
 */

/** Starts a one-shot timer; returns its cancel function. Tests pass a fake with a manual advance. */
export type SetTimer = (fn: () => void, ms: number) => () => void

export interface Clock {
  now: () => number
  random: () => number
  /** Runs `fn` once after `ms`, unless cancelled or the clock stops; returns the cancel function. */
  after: (ms: number, fn: () => void) => () => void
  /**
   * Runs `task` every `interval` ms with ±`spread`/2 jitter (see jittered), one timer per task
   * at any moment: the next tick is armed only when this one's promise settles. A task that
   * throws is reported to `onError` and runs again on schedule. Returns the cancel function.
   * An interval of 0 or less never runs.
   */
  repeat: (interval: number, task: () => Promise<void> | void, spread?: number) => () => void
  /** Timers armed and not yet fired or cancelled: what the leak test watches. */
  readonly pending: number
  /** Cancels every timer and refuses new ones. */
  stop: () => void
}

export interface ClockInit {
  now?: () => number
  random?: () => number
  setTimer?: SetTimer
  onError?: (err: Error) => void
}

/** Timers that never keep the process alive: an agent stops by its own stop(). */
export const systemSetTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms)
  t.unref()
  return () => { clearTimeout(t) }
}

/** `interval` × U(1 − spread/2, 1 + spread/2): a fleet started together does not tick in lockstep. */
export function jittered (interval: number, random: () => number, spread: number): number {
  return interval * (1 - spread / 2 + random() * spread)
}

/** Fisher–Yates with an injected source. (`sort(() => random() - 0.5)` is biased.) */
export function shuffle<T> (items: readonly T[], random: () => number): T[] {
  const out = items.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const tmp = out[i] as T
    out[i] = out[j] as T
    out[j] = tmp
  }
  return out
}

/** Default spread of the agent's periodic tasks: ±25 %. */
export const TASK_JITTER = 0.5

export function createClock (init: ClockInit = {}): Clock {
  const now = init.now ?? Date.now
  const random = init.random ?? Math.random
  const setTimer = init.setTimer ?? systemSetTimer
  const onError = init.onError ?? (() => {})
  const live = new Set<() => void>()
  let stopped = false

  const after = (ms: number, fn: () => void): (() => void) => {
    if (stopped) return () => {}
    const timer: { cancel?: () => void } = {}
    const cancel = (): void => {
      if (live.delete(cancel)) timer.cancel?.()
    }
    live.add(cancel)
    timer.cancel = setTimer(() => {
      if (live.delete(cancel)) fn()
    }, ms)
    return cancel
  }

  const repeat = (interval: number, task: () => Promise<void> | void, spread = TASK_JITTER): (() => void) => {
    if (!(interval > 0)) return () => {}
    let cancelled = false
    let cancelNext: () => void = () => {}
    const arm = (): void => {
      if (cancelled || stopped) return
      cancelNext = after(jittered(interval, random, spread), () => {
        Promise.resolve().then(task).catch((err) => { onError(err as Error) }).finally(arm)
      })
    }
    arm()
    return () => {
      cancelled = true
      cancelNext()
    }
  }

  return {
    now,
    random,
    after,
    repeat,
    get pending () { return live.size },
    stop: () => {
      stopped = true
      for (const cancel of [...live]) cancel()
    }
  }
}
