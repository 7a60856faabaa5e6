/**
 * The model engine's event queue: a binary min-heap over typed arrays, ordered by time and
 * then by insertion order, so equal-time events run in the order they were scheduled and a
 * seeded run is exactly reproducible. Each event carries a kind and three integer arguments
 * (node, peer, message); nothing is allocated per event.
 */
export class EventQueue {
  private time: Float64Array
  private seq: Float64Array
  private kind: Uint8Array
  private a: Int32Array
  private b: Int32Array
  private c: Int32Array
  private n = 0
  private next = 0

  constructor (capacity = 1024) {
    const cap = Math.max(16, capacity)
    this.time = new Float64Array(cap)
    this.seq = new Float64Array(cap)
    this.kind = new Uint8Array(cap)
    this.a = new Int32Array(cap)
    this.b = new Int32Array(cap)
    this.c = new Int32Array(cap)
  }

  get size (): number {
    return this.n
  }

  /** Events scheduled so far, popped or not. */
  get scheduled (): number {
    return this.next
  }

  push (time: number, kind: number, a = 0, b = 0, c = 0): void {
    if (!(time >= 0) || !Number.isFinite(time)) throw new RangeError(`event time must be a finite non-negative number: current value is ${time}`)
    if (this.n === this.time.length) this.grow()
    let i = this.n++
    const s = this.next++
    // Sift up: move parents down until the slot for the new event is found.
    while (i > 0) {
      const p = (i - 1) >> 1
      const pt = this.time[p]!
      if (pt < time || (pt === time && this.seq[p]! < s)) break
      this.move(p, i)
      i = p
    }
    this.time[i] = time
    this.seq[i] = s
    this.kind[i] = kind
    this.a[i] = a
    this.b[i] = b
    this.c[i] = c
  }

  /** Time of the earliest event; Infinity when empty. */
  peekTime (): number {
    return this.n > 0 ? this.time[0]! : Infinity
  }

  /**
   * Removes the earliest event and copies it into `out` (time, kind, a, b, c). Returns false
   * when the queue is empty.
   */
  pop (out: QueuedEvent): boolean {
    if (this.n === 0) return false
    out.time = this.time[0]!
    out.kind = this.kind[0]!
    out.a = this.a[0]!
    out.b = this.b[0]!
    out.c = this.c[0]!
    const last = --this.n
    if (last === 0) return true
    const t = this.time[last]!
    const s = this.seq[last]!
    const k = this.kind[last]!
    const a = this.a[last]!
    const b = this.b[last]!
    const c = this.c[last]!
    // Sift down from the root with the last event.
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= last) break
      const r = l + 1
      let m = l
      if (r < last && (this.time[r]! < this.time[l]! || (this.time[r] === this.time[l] && this.seq[r]! < this.seq[l]!))) m = r
      const mt = this.time[m]!
      if (t < mt || (t === mt && s < this.seq[m]!)) break
      this.move(m, i)
      i = m
    }
    this.time[i] = t
    this.seq[i] = s
    this.kind[i] = k
    this.a[i] = a
    this.b[i] = b
    this.c[i] = c
    return true
  }

  private move (from: number, to: number): void {
    this.time[to] = this.time[from]!
    this.seq[to] = this.seq[from]!
    this.kind[to] = this.kind[from]!
    this.a[to] = this.a[from]!
    this.b[to] = this.b[from]!
    this.c[to] = this.c[from]!
  }

  private grow (): void {
    const cap = this.time.length * 2
    const grow = <T extends Float64Array | Uint8Array | Int32Array>(old: T, make: (n: number) => T): T => {
      const next = make(cap)
      next.set(old)
      return next
    }
    this.time = grow(this.time, (n) => new Float64Array(n))
    this.seq = grow(this.seq, (n) => new Float64Array(n))
    this.kind = grow(this.kind, (n) => new Uint8Array(n))
    this.a = grow(this.a, (n) => new Int32Array(n))
    this.b = grow(this.b, (n) => new Int32Array(n))
    this.c = grow(this.c, (n) => new Int32Array(n))
  }
}

export interface QueuedEvent {
  time: number
  kind: number
  a: number
  b: number
  c: number
}

export function emptyEvent (): QueuedEvent {
  return { time: 0, kind: 0, a: 0, b: 0, c: 0 }
}
