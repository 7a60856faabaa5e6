import {
  FleetView, signReport, boundFailures, MAX_RECEIPT_ERROR_CHARS, type AdmissionJudge, type NodeReport, type Receipt, type ReceiptOutcome
} from '../receipt/index.js'
import type { AdmissionCertificate } from '../admission/index.js'
import type { SigningKey, VerifiedEnvelope } from '../envelope/index.js'
import type { ApplyReport } from '../apply/index.js'
import { checkFailures } from '../apply/checks.js'
import type { NodeFacts } from '../policy/index.js'
import { jittered, TASK_JITTER, type Clock } from './clock.js'
import type { Logger } from './logger.js'
import type { AgentMetrics } from './metrics.js'
import { receiptRoute } from './rules.js'
import { ReceiptSender, serveReceipts, verifyNodeReport } from './receipts.js'
import { peerIdFromString, type GrapevineLibp2p } from '../net/libp2p.js'
import { MAX_PRESENCE_POLICIES, MAX_RECEIPT_BYTES, type Presence } from '../receipt/index.js'
import type { IngestOutcome } from '../sync/index.js'
import { ReportGate } from './report-gate.js'
import { SECRETS_RESOURCE } from './constants.js'
import { summarizeFacts } from '../facts/summary.js'

/** Receipt routes remembered; each publish needs one while its receipts travel. */
export const MAX_RECEIPT_ROUTES = 1024

/** Beacons right after joining: before, during and after gossipsub's first heartbeats (1 s apart). */
export const JOIN_BEACON_DELAYS_MS = [300, 2500, 8000]

export interface ReportsComponents {
  facts: NodeFacts
  signingKey: SigningKey
  /** This node's certificate, carried by each of its receipts and beacons. */
  admission?: AdmissionCertificate
  /** This node's encryption key (age1…), carried signed by each report: asked each time, as `grapevine rekey` changes it. */
  recipient?: () => string | undefined
  /** Whether a node counts, under the current trust policy: the fleet view asks each time it is listed. */
  judge?: AdmissionJudge
  clock: Pick<Clock, 'now' | 'random' | 'after'>
  metrics: Pick<AgentMetrics, 'receipts'>
  log: Logger
  /** Gossips a signed beacon on the receipts topic; resolves to the peers it went to. */
  gossip: (bytes: Uint8Array) => Promise<number>
  /** The receipts protocol runs over these. */
  net: Pick<GrapevineLibp2p, 'handle' | 'dialProtocol' | 'getConnections'>
  /** What this node holds, and what a beacon says of each: the receipts' words. */
  held: () => Iterable<VerifiedEnvelope>
  outcomeOf: (env: VerifiedEnvelope) => string
  /** Policies dropped as no longer trusted: beacons report them as `untrusted`. */
  untrusted: () => Array<{ name: string, version: number, hash: string }>
  /** Every report this node takes, sends or passes on. */
  onReport: (report: NodeReport) => void
  signal: AbortSignal
}

/**
 * Receipts, presence beacons and the routes receipts take back to their publisher, and the
 * fleet view they all feed. A receipt goes to the peer this node first took its envelope from
 * (src/node/receipts.ts); beacons gossip, so every fleet view learns every node.
 */
export class Reports {
  /** What this node knows of the fleet, from the receipts and beacons it relays. */
  readonly fleet: FleetView
  /** Where receipts for an envelope go: the peer this node first took it from. */
  private readonly upstream = new Map<string, string>()
  /** The last receipt sent per policy, so quiet drift checks do not flood the mesh. */
  private readonly lastReceipt = new Map<string, string>()
  private joined = false
  private readonly sender: ReceiptSender
  private readonly gate: ReportGate

  constructor (private readonly c: ReportsComponents) {
    this.fleet = new FleetView(undefined, c.judge, c.clock.now)
    this.gate = new ReportGate({
      now: c.clock.now,
      take: (report) => { this.note(report) },
      dropped: (reason) => { c.metrics.receipts.inc({ result: `dropped-${reason}` }) }
    })
    this.sender = new ReceiptSender(c.net, {
      sent: (_peer, count) => { c.metrics.receipts.inc({ result: 'forwarded' }, count) },
      failed: (peer, count, err) => {
        // The receipts stay in this node's fleet view, and presence beacons carry the outcomes.
        c.metrics.receipts.inc({ result: 'kept' }, count)
        c.log.debug({ peer, count, err: err.message }, 'receipts not forwarded')
      }
    }, c.signal, (fn, ms) => c.clock.after(ms, fn))
  }

  /** Serves the receipts protocol: receipts routed here by the peers that took envelopes from this node. */
  async start (): Promise<void> {
    await serveReceipts(this.c.net, (bytes, from) => this.takeRouted(bytes, from))
  }

  /**
   * Gossip validator for the receipts topic: only a report signed by the node it names counts,
   * and each peer and each node id only at a bounded rate, verified a batch per event-loop turn
   * (report-gate.ts): a flood of made-up beacons must not stall the agent.
   */
  async takeGossiped (bytes: Uint8Array, from: string): Promise<IngestOutcome> {
    return await this.gate.check(bytes, from)
  }

  /** A receipt routed to this node by a peer that took the envelope from it: keep it and pass it on towards the publisher. */
  takeRouted (bytes: Uint8Array, from: string): boolean {
    const report = verifyNodeReport(bytes)
    if (report?.kind !== 'receipt') {
      this.c.metrics.receipts.inc({ result: 'rejected' })
      return false
    }
    this.c.metrics.receipts.inc({ result: 'received' })
    this.note(report)
    this.route(report, bytes, from)
    return true
  }

  rememberUpstream (env: VerifiedEnvelope, from: string): void {
    this.upstream.set(routeKey(env.name, env.version, env.hash), from)
    // Only recent publishes have receipts in flight; the oldest routes go first.
    if (this.upstream.size > MAX_RECEIPT_ROUTES) this.upstream.delete(this.upstream.keys().next().value as string)
  }

  /**
   * Signs and routes a receipt for what this node did with an envelope. `sealed` (nothing
   * applied: the secrets are not sealed to this node) carries why as a `(secrets)` entry, so the
   * publisher can say it.
   */
  sendReceipt (env: VerifiedEnvelope, outcome: ReceiptOutcome, report?: ApplyReport, sealedWhy?: string): void {
    // A failing health check is a failure too, named `check:<id>` with its output's end.
    const failures = [
      ...(report?.resources ?? []).filter((r) => r.status === 'failed').map((f) => ({ resource: f.id, error: f.error?.message ?? f.reason ?? 'failed' })),
      ...checkFailures(report?.checks, MAX_RECEIPT_ERROR_CHARS),
      ...(sealedWhy !== undefined ? [{ resource: SECRETS_RESOURCE, error: sealedWhy }] : [])
    ]
    const key = `${env.id}:${outcome}`
    // A quiet re-apply (same version and outcome, nothing changed, nothing failed) is not news.
    if (this.lastReceipt.get(env.name) === key && (report === undefined || (report.counts.changed === 0 && failures.length === 0))) return
    this.lastReceipt.set(env.name, key)
    const { facts, signingKey } = this.c
    const receipt: Receipt = {
      format: 1,
      kind: 'receipt',
      node: facts.id,
      key: signingKey.id,
      name: facts.name,
      tags: facts.tags,
      at: this.iso(),
      policy: env.name,
      version: env.version,
      hash: env.hash,
      outcome,
      changed: report?.counts.changed ?? 0,
      failures: boundFailures(failures),
      failedCount: failures.length,
      durationMs: report?.durationMs ?? 0,
      ...this.certificate(),
      ...this.recipient()
    }
    const bytes = signReport(receipt, signingKey)
    this.note(receipt)
    this.route(receipt, bytes)
  }

  /** A presence beacon: who this node is and what it holds, so fleet views know the nodes that exist. Resolves to the peers it went to. */
  async beacon (): Promise<number> {
    if (this.c.signal.aborted) return 0
    const { facts, signingKey } = this.c
    const policies = [
      ...[...this.c.held()].map((e): [string, number, string, string] => [e.name, e.version, e.hash, this.c.outcomeOf(e)]),
      ...this.c.untrusted().map((u): [string, number, string, string] => [u.name, u.version, u.hash, 'untrusted'])
    ].slice(0, MAX_PRESENCE_POLICIES)
    // The facts as gathered at the latest apply, summarised within their bound (docs/facts.md).
    const summary = facts.facts !== undefined ? summarizeFacts(facts.facts) : undefined
    let report: Presence = { format: 1, kind: 'presence', node: facts.id, key: signingKey.id, name: facts.name, tags: facts.tags, at: this.iso(), policies, ...this.certificate(), ...this.recipient(), ...(summary !== undefined ? { facts: summary } : {}) }
    let bytes = signReport(report, signingKey)
    // Long policy names with a large certificate can pass the byte bound every receiver checks:
    // a beacon naming fewer policies still says the node exists (and its key); one over it says nothing.
    while (bytes.byteLength > MAX_RECEIPT_BYTES && report.policies.length > 0) {
      report = { ...report, policies: report.policies.slice(0, -1) }
      bytes = signReport(report, signingKey)
    }
    // Tags and a certificate at their bounds leave no room even without policies: the facts go too.
    if (bytes.byteLength > MAX_RECEIPT_BYTES && report.facts !== undefined) {
      const { facts: _dropped, ...bare } = report
      report = bare
      bytes = signReport(report, signingKey)
    }
    this.note(report)
    try {
      return await this.c.gossip(bytes)
    } catch (err) {
      this.c.log.debug({ err: (err as Error).message }, 'beacon not sent')
      return 0
    }
  }

  /**
   * Announces this node once someone can hear it. A message published before gossipsub's mesh
   * forms (first heartbeat) may not be relayed, so a joining node announces three times.
   */
  announceJoin (): void {
    if (this.joined) return
    this.joined = true
    for (const delay of JOIN_BEACON_DELAYS_MS) this.c.clock.after(jittered(delay, this.c.clock.random, TASK_JITTER), () => { void this.beacon() })
  }

  private note (report: NodeReport): void {
    this.fleet.add(report)
    this.c.onReport(report)
  }

  /**
   * Hands a receipt to the peer this node took its envelope from. The node that published it
   * (no upstream), or one whose upstream has left (a `publish` without --wait), keeps it: its
   * fleet view has it, and every node's presence beacons carry its outcomes to the rest.
   */
  private route (receipt: Receipt, bytes: Uint8Array, from?: string): void {
    const connected = (peer: string): boolean => this.c.net.getConnections(peerIdFromString(peer)).length > 0
    const up = receiptRoute(this.upstream.get(routeKey(receipt.policy, receipt.version, receipt.hash)), from, connected)
    if (up === undefined) {
      this.c.metrics.receipts.inc({ result: 'kept' })
      return
    }
    this.sender.send(up, bytes)
  }

  private certificate (): { admission?: AdmissionCertificate } {
    return this.c.admission !== undefined ? { admission: this.c.admission } : {}
  }

  private recipient (): { recipient?: string } {
    const recipient = this.c.recipient?.()
    return recipient !== undefined ? { recipient } : {}
  }

  private iso (): string {
    return new Date(this.c.clock.now()).toISOString()
  }
}

function routeKey (name: string, version: number, hash: string): string {
  return `${name}\n${version}\n${hash}`
}
