import { openAdmission, type AdmissionCertificate, type AdmissionError, type AdmissionStatus } from '../admission/index.js'
import { factsWithinBounds, type NodeReport, type Receipt, type ReceiptOutcome } from './receipt.js'
import { MAX_FLEET_FACT_BYTES, MAX_FLEET_NODES, MAX_FLEET_POLICIES_PER_NODE, MAX_FLEET_POLICY_STATES } from './constants.js'

export interface FleetPolicyState {
  version: number
  hash: string
  outcome: ReceiptOutcome | string
  at: string
  failures?: Receipt['failures']
}

/** What a node's admission certificate asserts: the enroller's word, not the node's. */
export interface FleetAdmission {
  name: string
  tags: Record<string, string>
  enroller: string
  issuedAt: string
  expires?: string
}

export interface FleetNode {
  id: string
  /** Self-asserted: the name and tags the node reports about itself. */
  name: string
  tags: Record<string, string>
  lastSeen: string
  policies: Record<string, FleetPolicyState>
  /** Whether the node counts as a fleet member under the viewer's current trust policy (docs/admission.md). */
  admitted: boolean
  /** The name and tags its admission certificate asserts, when the certificate holds. */
  admission?: FleetAdmission
  /** Why its certificate does not hold (missing, unknown enroller, revoked, expired, ...). */
  unadmitted?: string
  /** The node's encryption key (age X25519 recipient) from its newest signed report: what publishers seal secrets to (docs/secrets.md). */
  recipient?: string
  /** Self-asserted: the summary of its facts its newest beacon carried (docs/facts.md). */
  facts?: Record<string, unknown>
}

/** Judges a node's certificate (opened, signature checked) under the current trust, now. */
export type AdmissionJudge = (peer: string, cert: AdmissionCertificate | undefined) => AdmissionStatus

interface Entry {
  id: string
  name: string
  tags: Record<string, string>
  lastSeen: string
  policies: Record<string, FleetPolicyState>
  /** The certificate from the node's newest report, signature checked once when it arrived. */
  cert?: AdmissionCertificate
  /** Why the newest report's certificate could not be opened. */
  certError?: string
  /** Without a judge (a publisher's view): the standing an agent's answer gave the node. */
  vouched?: Pick<FleetNode, 'admitted' | 'admission' | 'unadmitted'>
  /** The encryption key its newest report announced (a rekeyed node's new one once it reports). */
  recipient?: string
  /** The facts its newest beacon carried, and their size in JSON (counted against maxFactBytes). */
  facts?: Record<string, unknown>
  factBytes?: number
}

/**
 * What one node knows of the fleet, built from receipts and presence beacons it relays anyway:
 * no extra traffic, O(nodes × policies) memory, bounded by MAX_FLEET_NODES and
 * MAX_FLEET_POLICIES_PER_NODE. Whether a node is admitted is judged when the view is listed,
 * so a new trust policy (a revoked node, a new enroller) or an expiry shows at once.
 */
/** How far ahead of this node's clock a report's time is believed. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000

export class FleetView {
  private readonly nodes = new Map<string, Entry>()
  /** Policy states held over all nodes, bounded by `maxStates`. */
  private states = 0
  /** Bytes of facts held over all nodes, bounded by `maxFactBytes`. */
  private factBytes = 0

  /** `judge` decides admission (an agent's view); without it, a node counts only as an agent's merged answer vouches. */
  constructor (private readonly max = MAX_FLEET_NODES, private readonly judge?: AdmissionJudge, private readonly now: () => number = Date.now, private readonly maxStates = MAX_FLEET_POLICY_STATES, private readonly maxFactBytes = MAX_FLEET_FACT_BYTES) {}

  add (signed: NodeReport): void {
    // A node's clock may run ahead, or it may lie: a time in the future would keep it from ever
    // looking stale and shut out its own later reports. Take at most now plus a little skew.
    const latest = new Date(this.now() + MAX_CLOCK_SKEW_MS).toISOString()
    const report = signed.at > latest ? { ...signed, at: latest } : signed
    const node = this.entry(report.node, report.name, report.tags, report.at)
    // A node older than every one it would join is the one forgotten.
    if (this.nodes.get(report.node) !== node) return
    if (report.at >= node.lastSeen) {
      node.lastSeen = report.at
      node.name = report.name
      node.tags = report.tags
      this.takeCertificate(node, report.admission)
      setRecipient(node, report.recipient)
      // Only a beacon carries facts: its newest word on them, none if it carries none (an agent older than facts).
      if (report.kind === 'presence') this.setFacts(node, report.facts)
    }
    if (report.kind === 'receipt') {
      this.setPolicy(node, report.policy, {
        version: report.version,
        hash: report.hash,
        outcome: report.outcome,
        at: report.at,
        ...(report.failures.length > 0 ? { failures: report.failures } : {})
      }, true)
    } else {
      // A newer beacon is the node's newer word on the same version too (a failure since fixed, a policy now untrusted).
      for (const [policy, version, hash, outcome] of report.policies) this.setPolicy(node, policy, { version, hash, outcome, at: report.at }, true)
    }
    this.trim(node)
  }

  /** Takes in another view's node (a peer's answer to a fleet query), newest state winning per policy, and its standing. */
  merge (other: FleetNode): void {
    const node = this.entry(other.id, other.name, other.tags, other.lastSeen)
    if (this.nodes.get(other.id) !== node) return
    if (other.lastSeen > node.lastSeen) {
      node.lastSeen = other.lastSeen
      node.name = other.name
      node.tags = other.tags
      setRecipient(node, other.recipient)
      // A view that heard only receipts since has no facts to say: it does not erase these.
      if (other.facts !== undefined) this.setFacts(node, other.facts)
    } else {
      // An older word on the node is still a key, or facts, where this view has none.
      if (node.recipient === undefined && other.recipient !== undefined) setRecipient(node, other.recipient)
      if (node.facts === undefined && other.facts !== undefined) this.setFacts(node, other.facts)
    }
    node.vouched = {
      admitted: other.admitted === true,
      ...(other.admission !== undefined ? { admission: other.admission } : {}),
      ...(other.unadmitted !== undefined ? { unadmitted: other.unadmitted } : {})
    }
    for (const [policy, state] of Object.entries(other.policies)) this.setPolicy(node, policy, state, false)
    this.trim(node)
  }

  /** Evicts nodes while the view holds more policy states than its bound; `keep`, just heard from, goes last. */
  private trim (keep: Entry): void {
    while ((this.states > this.maxStates || this.factBytes > this.maxFactBytes) && this.nodes.size > 1) this.evict(keep)
  }

  /**
   * Keeps a node's facts, or forgets them. A peer's answer to a fleet query is not checked by
   * the query's schema beyond being there: facts that are not a map within a beacon's bounds are
   * dropped, so no peer can make this view hold more per node than a signed beacon could.
   */
  private setFacts (node: Entry, facts: unknown): void {
    const ok = facts !== null && typeof facts === 'object' && !Array.isArray(facts) && factsWithinBounds(facts as Record<string, unknown>)
    this.factBytes -= node.factBytes ?? 0
    if (!ok) {
      delete node.facts
      delete node.factBytes
      return
    }
    node.facts = facts as Record<string, unknown>
    node.factBytes = Buffer.byteLength(JSON.stringify(facts))
    this.factBytes += node.factBytes
  }

  private entry (id: string, name: string, tags: Record<string, string>, at: string): Entry {
    let node = this.nodes.get(id)
    if (node === undefined) {
      node = { id, name, tags, lastSeen: at, policies: {} }
      this.nodes.set(id, node)
      if (this.nodes.size > this.max) this.evict()
    }
    return node
  }

  /** Opens a certificate only when it is new to this view: one signature check per certificate, not per report. */
  private takeCertificate (node: Entry, cert: NodeReport['admission']): void {
    if (cert === undefined) {
      node.cert = undefined
      node.certError = undefined
      return
    }
    if (node.cert?.signature === cert.signature) return
    try {
      node.cert = openAdmission(cert)
      node.certError = undefined
    } catch (err) {
      node.cert = undefined
      node.certError = (err as AdmissionError).reason ?? 'invalid'
    }
  }

  /** Newer version wins; on the same version, the newer word (`orSame`: or as new). Over the bound, the policy heard of longest ago goes. */
  private setPolicy (node: Entry, policy: string, state: FleetPolicyState, orSame: boolean): void {
    const prev = node.policies[policy]
    if (prev !== undefined && !(state.version > prev.version || (state.version === prev.version && (orSame ? state.at >= prev.at : state.at > prev.at)))) return
    // A beacon carries no failures (nor does a view that only heard beacons): the same word on
    // the same version keeps what the receipt said failed.
    const same = prev?.failures !== undefined && state.failures === undefined && prev.version === state.version && prev.hash === state.hash && prev.outcome === state.outcome
    node.policies[policy] = same ? { ...state, failures: prev.failures } : state
    if (prev !== undefined) return
    this.states++
    const names = Object.keys(node.policies)
    if (names.length <= MAX_FLEET_POLICIES_PER_NODE) return
    let oldest = names[0] as string
    for (const n of names) if ((node.policies[n] as FleetPolicyState).at < (node.policies[oldest] as FleetPolicyState).at) oldest = n
    delete node.policies[oldest]
    this.states--
  }

  /** The least recently seen node goes, one without a certificate first: made-up nodes cannot push real ones out. */
  private evict (keep?: Entry): void {
    let oldest: Entry | undefined
    let oldestUncertified: Entry | undefined
    for (const n of this.nodes.values()) {
      if (n === keep) continue
      if (oldest === undefined || n.lastSeen < oldest.lastSeen) oldest = n
      // A certificate that merely opens is anyone's (a self-made enroller key): only one that holds spares a node.
      const holds = n.cert !== undefined && this.judge?.(n.id, n.cert).identity !== undefined
      if (!holds && (oldestUncertified === undefined || n.lastSeen < oldestUncertified.lastSeen)) oldestUncertified = n
    }
    const victim = oldestUncertified ?? oldest
    if (victim === undefined) return
    this.nodes.delete(victim.id)
    this.states -= Object.keys(victim.policies).length
    this.factBytes -= victim.factBytes ?? 0
  }

  private standing (n: Entry): Pick<FleetNode, 'admitted' | 'admission' | 'unadmitted'> {
    if (this.judge === undefined) return n.vouched ?? { admitted: false, unadmitted: 'unvouched' }
    const s = this.judge(n.id, n.cert)
    const reason = n.certError ?? s.reason
    const { peer: _peer, ...admission } = s.identity ?? { peer: '' }
    return {
      admitted: s.admitted,
      ...(s.identity !== undefined ? { admission: admission as FleetAdmission } : {}),
      ...(reason !== undefined ? { unadmitted: reason } : {})
    }
  }

  /** Every node with its standing; `admittedOnly` leaves out the nodes that do not count. */
  list (opts: { admittedOnly?: boolean } = {}): FleetNode[] {
    const out: FleetNode[] = []
    for (const { cert: _c, certError: _e, vouched: _v, factBytes: _f, ...n } of this.nodes.values()) {
      const standing = this.standing(this.nodes.get(n.id) as Entry)
      if (opts.admittedOnly === true && !standing.admitted) continue
      out.push({ ...n, ...standing })
    }
    return out.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
  }

  get size (): number {
    return this.nodes.size
  }
}

/** Keeps a node's announced key, or forgets it when its newest word announces none (no `recipient: undefined` in a listing). */
function setRecipient (node: Entry, recipient: string | undefined): void {
  if (recipient !== undefined) node.recipient = recipient
  else delete node.recipient
}
