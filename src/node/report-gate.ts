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
 * Reports this node verifies from all peers together: nine times what a fleet of 10,000 beacons
 * (33 a second), so an honest relay never forwards more than this, however many rogues feed it.
 * A fleet restarting at once loses some join beacons; the next beacons (5 min) fill them in.
 */
export const ALL_REPORTS = { capacity: 1000, perSecond: 300, maxKeys: 1 }

/**
 * Reports dropped over a peer's rate before it is penalised (a gossipsub Reject). An honest relay
 * forwards at most ALL_REPORTS (its own gate), so what it sends past its PEER_REPORTS (500 at
 * once, 200 a second) never uses these up; a peer flooding faster than any relay could does.
 */
export const PEER_REPORT_STRIKES = { capacity: 2000, perSecond: ALL_REPORTS.perSecond, maxKeys: 4096 }

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
  dropped?: (reason: 'peer-rate' | 'peer-penalised' | 'node-rate' | 'all-rate' | 'backlog') => void
  /** Yields the event loop between batches; tests may pass their own. */
  yieldTurn?: () => Promise<void>
}

interface Pending {
  bytes: Uint8Array
  resolve: (outcome: IngestOutcome) => void
}

/**
 * The gossip validator for reports, cheapest first: the sender's rate (no decoding), then the
 * decoded report's node id and its rate, then the rate over all peers, then a bounded queue
 * whose signature checks run a batch per event-loop turn. What is dropped for rate is Ignored,
 * so it goes no further; a peer that keeps on faster than any honest relay could is Rejected,
 * which gossipsub's scoring turns into a graylist.
 */
export class ReportGate {
  private readonly perPeer: RateLimiter
  private readonly strikes: RateLimiter
  private readonly perNode: RateLimiter
  private readonly all: RateLimiter
  private readonly nodeKeys = new Map<string, string | undefined>()
  private readonly queue: Pending[] = []
  private draining = false

  constructor (private readonly c: ReportGateComponents) {
    this.perPeer = new RateLimiter(PEER_REPORTS, c.now)
    this.strikes = new RateLimiter(PEER_REPORT_STRIKES, c.now)
    this.perNode = new RateLimiter(NODE_REPORTS, c.now)
    this.all = new RateLimiter(ALL_REPORTS, c.now)
  }

  async check (bytes: Uint8Array, from: string): Promise<IngestOutcome> {
    if (!this.perPeer.take(from)) {
      if (this.strikes.take(from)) {
        this.c.dropped?.('peer-rate')
        return 'ignored'
      }
      this.c.dropped?.('peer-penalised')
      return 'rejected'
    }
    const node = nodeOf(bytes)
    if (node === undefined) return 'rejected'
    if (!this.perNode.take(node)) {
      this.c.dropped?.('node-rate')
      return 'ignored'
    }
    if (!this.all.take('all')) {
      this.c.dropped?.('all-rate')
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
