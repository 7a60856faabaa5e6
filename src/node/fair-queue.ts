/**
 * Runs tasks a few at a time, fairly among keys (the peers that announced them): at most
 * `perKey` of one key's tasks run at once and `total` in all, a freed slot goes to the next key
 * in turn, and at most `queuedPerKey` of one key's tasks wait. One key's backlog, however long,
 * delays another key's task by at most one round of the others.
 */
export class FairQueue {
  private readonly waiting = new Map<string, Array<() => void>>()
  private readonly running = new Map<string, number>()
  private active = 0

  constructor (private readonly opts: { perKey: number, total: number, queuedPerKey: number }) {}

  /** Runs `task` when its turn comes; undefined at once when `key` already has its fill waiting. */
  run<T> (key: string, task: () => Promise<T>): Promise<T> | undefined {
    const queue = this.waiting.get(key) ?? []
    if (queue.length >= this.opts.queuedPerKey) return undefined
    return new Promise<T>((resolve, reject) => {
      queue.push(() => {
        task().then(resolve, reject).finally(() => {
          this.active--
          const n = (this.running.get(key) ?? 1) - 1
          if (n === 0) this.running.delete(key)
          else this.running.set(key, n)
          this.pump()
        })
      })
      this.waiting.set(key, queue)
      this.pump()
    })
  }

  /** Tasks waiting and running, for one key or in all. */
  load (key?: string): { waiting: number, running: number } {
    if (key !== undefined) return { waiting: this.waiting.get(key)?.length ?? 0, running: this.running.get(key) ?? 0 }
    let waiting = 0
    for (const q of this.waiting.values()) waiting += q.length
    return { waiting, running: this.active }
  }

  private pump (): void {
    let started = true
    while (this.active < this.opts.total && started) {
      started = false
      // Map order is the turn order: a key that starts a task goes to the back.
      for (const [key, queue] of this.waiting) {
        if ((this.running.get(key) ?? 0) >= this.opts.perKey) continue
        const next = queue.shift() as () => void
        this.waiting.delete(key)
        if (queue.length > 0) this.waiting.set(key, queue)
        this.running.set(key, (this.running.get(key) ?? 0) + 1)
        this.active++
        started = true
        next()
        break
      }
    }
  }
}
