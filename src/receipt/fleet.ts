import type { NodeReport, Receipt, ReceiptOutcome } from './receipt.js'
import { MAX_FLEET_NODES } from './constants.js'

export interface FleetPolicyState {
  version: number
  hash: string
  outcome: ReceiptOutcome | string
  at: string
  failures?: Receipt['failures']
}

export interface FleetNode {
  id: string
  name: string
  tags: Record<string, string>
  lastSeen: string
  policies: Record<string, FleetPolicyState>
}

/**
 * What one node knows of the fleet, built from receipts and presence beacons it relays anyway:
 * no extra traffic, O(nodes × policies) memory, bounded by MAX_FLEET_NODES.
 */
export class FleetView {
  private readonly nodes = new Map<string, FleetNode>()

  constructor (private readonly max = MAX_FLEET_NODES) {}

  add (report: NodeReport): void {
    let node = this.nodes.get(report.node)
    if (node === undefined) {
      node = { id: report.node, name: report.name, tags: report.tags, lastSeen: report.at, policies: {} }
      this.nodes.set(report.node, node)
      if (this.nodes.size > this.max) this.evict()
    }
    if (report.at >= node.lastSeen) {
      node.lastSeen = report.at
      node.name = report.name
      node.tags = report.tags
    }
    if (report.kind === 'receipt') {
      const prev = node.policies[report.policy]
      if (prev === undefined || report.version > prev.version || (report.version === prev.version && report.at >= prev.at)) {
        node.policies[report.policy] = {
          version: report.version,
          hash: report.hash,
          outcome: report.outcome,
          at: report.at,
          ...(report.failures.length > 0 ? { failures: report.failures } : {})
        }
      }
    } else {
      for (const [policy, version, hash, outcome] of report.policies) {
        const prev = node.policies[policy]
        // A newer beacon is the node's newer word on the same version too (a failure since fixed, a policy now untrusted).
        if (prev === undefined || version > prev.version || (version === prev.version && report.at >= prev.at)) node.policies[policy] = { version, hash, outcome, at: report.at }
      }
    }
  }

  /** Takes in another view's node (a peer's answer to a fleet query), newest state winning per policy. */
  merge (other: FleetNode): void {
    let node = this.nodes.get(other.id)
    if (node === undefined) {
      node = { ...other, policies: {} }
      this.nodes.set(other.id, node)
      if (this.nodes.size > this.max) this.evict()
    } else if (other.lastSeen > node.lastSeen) {
      node.lastSeen = other.lastSeen
      node.name = other.name
      node.tags = other.tags
    }
    for (const [policy, state] of Object.entries(other.policies)) {
      const prev = node.policies[policy]
      if (prev === undefined || state.version > prev.version || (state.version === prev.version && state.at > prev.at)) node.policies[policy] = state
    }
  }

  private evict (): void {
    let oldest: FleetNode | undefined
    for (const n of this.nodes.values()) if (oldest === undefined || n.lastSeen < oldest.lastSeen) oldest = n
    if (oldest !== undefined) this.nodes.delete(oldest.id)
  }

  list (): FleetNode[] {
    return [...this.nodes.values()].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id))
  }

  get size (): number {
    return this.nodes.size
  }
}
