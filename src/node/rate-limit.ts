/**
 * Token buckets by key (a peer, a node id): `capacity` tokens, refilled at `perSecond`. Pure over
 * an injected clock. Keys are bounded: past `maxKeys` the key touched longest ago is forgotten,
 * which hands it a full bucket again, so the bound must be well above the keys that matter.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (private readonly opts: { capacity: number, perSecond: number, maxKeys: number }, private readonly now: () => number) {}

  /** Takes one token for `key`; false when its bucket is empty (over the rate). */
  take (key: string): boolean {
    const now = this.now()
    const prev = this.buckets.get(key)
    const tokens = prev === undefined
      ? this.opts.capacity
      : Math.min(this.opts.capacity, prev.tokens + (now - prev.at) / 1000 * this.opts.perSecond)
    // Re-inserted so the map's order is least recently touched first.
    this.buckets.delete(key)
    const ok = tokens >= 1
    this.buckets.set(key, { tokens: ok ? tokens - 1 : tokens, at: now })
    if (this.buckets.size > this.opts.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string)
    return ok
  }

  get size (): number {
    return this.buckets.size
  }
}
