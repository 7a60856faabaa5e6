/** Waiting for events with a deadline, never for a fixed time. */

/** Rejects with "timed out waiting for <what>" unless `promise` settles within `ms`. */
export async function within<T> (promise: Promise<T>, what: string, ms = 5_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`timed out after ${ms} ms waiting for ${what}`)) }, ms)
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** Values a callback reports, kept in order; `next` waits (with a deadline) for one that matches. */
export class Recorder<T> {
  readonly values: T[] = []
  private readonly waiters = new Set<{ match: (v: T) => boolean, resolve: (v: T) => void }>()

  readonly push = (value: T): void => {
    this.values.push(value)
    for (const w of [...this.waiters]) {
      if (!w.match(value)) continue
      this.waiters.delete(w)
      w.resolve(value)
    }
  }

  async next (what: string, match: (v: T) => boolean = () => true, ms?: number): Promise<T> {
    const seen = this.values.find(match)
    if (seen !== undefined) return seen
    let waiter: { match: (v: T) => boolean, resolve: (v: T) => void } | undefined
    const arrived = new Promise<T>((resolve) => { waiter = { match, resolve } })
    this.waiters.add(waiter!)
    try {
      return await within(arrived, what, ms)
    } finally {
      this.waiters.delete(waiter!)
    }
  }
}
