import type { SetTimer } from './clock.js'

/** What runs after each timer fires, before the next: by default one turn of the event loop. */
export type Between = () => Promise<void>

const oneTurn: Between = async () => { await new Promise<void>((resolve) => { setImmediate(resolve) }) }

/**
 * A SetTimer and a now() on one hand-driven time line: timers fire only inside advance(), each
 * at its own time, in order. Tests drive an agent's parts with it; the soak benchmark runs whole
 * agents through weeks of ticks in minutes.
 */
export class VirtualTime {
  private t: number
  private seq = 0
  private readonly timers = new Map<number, { at: number, fn: () => void }>()

  constructor (start: number, private readonly between: Between = oneTurn) {
    this.t = start
  }

  readonly now = (): number => this.t

  readonly setTimer: SetTimer = (fn, ms) => {
    const id = this.seq++
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn })
    return () => { this.timers.delete(id) }
  }

  /** Timers armed and not yet fired or cancelled. */
  get armed (): number {
    return this.timers.size
  }

  /** How far ahead each armed timer is, soonest first. */
  get delays (): number[] {
    return [...this.timers.values()].map((x) => x.at - this.t).sort((a, b) => a - b)
  }

  /**
   * Moves time on by `ms`, firing each timer that falls due on the way at its own time, in
   * order, and running `between` (the work it started settles) before the next fires. Returns
   * how many fired.
   */
  async advance (ms: number): Promise<number> {
    const end = this.t + ms
    let fired = 0
    for (;;) {
      let next: [number, { at: number, fn: () => void }] | undefined
      for (const entry of this.timers) if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry
      if (next === undefined) break
      this.timers.delete(next[0])
      this.t = next[1].at
      next[1].fn()
      fired++
      await this.between()
    }
    this.t = end
    return fired
  }
}
