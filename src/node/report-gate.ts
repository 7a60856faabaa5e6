import { setImmediate as nextTurn } from 'node:timers/promises'
import { keyIdOfPeer } from '../net/identity.js'
import { MAX_RECEIPT_BYTES, validateReport, type NodeReport } from '../receipt/index.js'
import type { IngestOutcome } from '../sync/index.js'
import { RateLimiter } from './rate-limit.js'

/**
 * Gossiped reports (beacons, mostly) one peer may hand this node: a burst, then a steady rate.
 * A fleet of 10,000 beacons 33 times a second in all (receipt/constants.ts), and each reaches
 * this node first from one of its ~8 peers, so 100 a second per peer is far above honest use.
 */
export const PEER_REPORTS = { capacity: 500, perSecond: 100, maxKeys: 4096 }

/**
 * Reports dropped over the rate that a peer may send before it is penalised (a gossipsub
 * Reject): a burst honest relays could deliver (a fleet restarting), not a steady flood.
 */
export const PEER_REPORT_STRIKES = { capacity: 2000, perSecond: 100, maxKeys: 4096 }

/**
 * Reports gossiped per node id: a beacon every 5 min, three on joining, a few more when a test
 * or an operator asks. Past this a node's words are dropped, not its relays punished.
 */
export const NODE_REPORTS = { capacity: 10, perSecond: 0.2, maxKeys: 100_000 }

/** Reports waiting to be verified; past this they are dropped (Ignore) before any work. */
export const MAX_PENDING_REPORTS = 2048

/** Signature checks per event-loop turn: the API and the other protocols run between batches. */
export const REPORT_BATCH = 16

/** Node ids whose key is kept decoded (a peer id decode per beacon costs as much as the JSON). */
const MAX_CACHED_NODE_KEYS = 20_000

export interface ReportGateComponents {
  now: () => number
  /** A verified report, signed by the node it names. */
  take: (report: NodeReport) => void
  /** Reports dropped before verification, by why. */
  dropped?: (reason: 'peer-rate' | 'node-rate' | 'backlog') => void
  /** Yields the event loop between batches; tests may pass their own. */
  yieldTurn?: () => Promise<void>
}

interface Pending {
  bytes: Uint8Array
  resolve: (outcome: IngestOutcome) => void
}

/**
 * The gossip validator for reports, cheapest first: the sender's rate (no decoding), then the
 * decoded report's node id and its rate, then a bounded queue whose signature checks run a batch
 * per event-loop turn. What is dropped for rate is Ignored, so it goes no further; a peer that
 * keeps on well past its rate is Rejected, which gossipsub's scoring turns into a graylist.
 */
export class ReportGate {
  private readonly perPeer: RateLimiter
  private readonly strikes: RateLimiter
  private readonly perNode: RateLimiter
  private readonly nodeKeys = new Map<string, string | undefined>()
  private readonly queue: Pending[] = []
  private draining = false

  constructor (private readonly c: ReportGateComponents) {
    this.perPeer = new RateLimiter(PEER_REPORTS, c.now)
    this.strikes = new RateLimiter(PEER_REPORT_STRIKES, c.now)
    this.perNode = new RateLimiter(NODE_REPORTS, c.now)
  }

  async check (bytes: Uint8Array, from: string): Promise<IngestOutcome> {
    if (!this.perPeer.take(from)) {
      this.c.dropped?.('peer-rate')
      return this.strikes.take(from) ? 'ignored' : 'rejected'
    }
    const node = nodeOf(bytes)
    if (node === undefined) return 'rejected'
    if (!this.perNode.take(node)) {
      this.c.dropped?.('node-rate')
      return 'ignored'
    }
    if (this.queue.length >= MAX_PENDING_REPORTS) {
      this.c.dropped?.('backlog')
      return 'ignored'
    }
    return await new Promise<IngestOutcome>((resolve) => {
      this.queue.push({ bytes, resolve })
      void this.drain()
    })
  }

  get pending (): number {
    return this.queue.length
  }

  private async drain (): Promise<void> {
    if (this.draining) return
    this.draining = true
    try {
      // Reports arrive one validator call at a time: wait a turn first, so they gather into batches.
      while (this.queue.length > 0) {
        await (this.c.yieldTurn ?? nextTurn)()
        for (const p of this.queue.splice(0, REPORT_BATCH)) p.resolve(this.verify(p.bytes))
      }
    } finally {
      this.draining = false
    }
  }

  private verify (bytes: Uint8Array): IngestOutcome {
    let report: NodeReport
    try {
      report = validateReport(bytes)
    } catch {
      return 'rejected'
    }
    if (this.keyOf(report.node) !== report.key) return 'rejected'
    this.c.take(report)
    return 'accepted'
  }

  private keyOf (node: string): string | undefined {
    if (this.nodeKeys.has(node)) return this.nodeKeys.get(node)
    const key = keyIdOfPeer(node)
    if (this.nodeKeys.size >= MAX_CACHED_NODE_KEYS) this.nodeKeys.delete(this.nodeKeys.keys().next().value as string)
    this.nodeKeys.set(node, key)
    return key
  }
}

const dec = new TextDecoder('utf-8', { fatal: true })

/** The node id a report names, read without checking anything else (a parse costs a tenth of the signature check). */
function nodeOf (bytes: Uint8Array): string | undefined {
  if (bytes.byteLength > MAX_RECEIPT_BYTES) return undefined
  try {
    const node = (JSON.parse(dec.decode(bytes)) as { node?: unknown } | null)?.node
    return typeof node === 'string' && node.length > 0 && node.length <= 128 ? node : undefined
  } catch {
    return undefined
  }
}
