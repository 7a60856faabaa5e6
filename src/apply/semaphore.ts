/** A counting semaphore: at most `limit` holders at once, first come first served. */
export class Semaphore {
  private active = 0
  private readonly queue: Array<() => void> = []

  constructor (private readonly limit: number) {}

  async acquire (): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.queue.push(resolve))
    else this.active++
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.queue.shift()
      if (next !== undefined) next()
      else this.active--
    }
  }
}
