import { setImmediate as nextTurn } from 'node:timers/promises'

/**
 * Gives the event loop a turn every `every` calls. libp2p hands a peer's buffered gossip to the
 * validators one message after another in microtasks: a burst of thousands (made-up beacons,
 * announcements) ran as one task for seconds, and the API, timers and other peers waited.
 */
export class Turns {
  private count = 0

  constructor (private readonly every: number, private readonly yieldTurn: () => Promise<unknown> = nextTurn) {}

  /** Resolves at once, or on the next turn of the event loop for every `every`-th call. */
  async pass (): Promise<void> {
    if (++this.count < this.every) return
    this.count = 0
    await this.yieldTurn()
  }
}
