import { matchesTarget, type Policy } from '../policy/index.js'
import type { FleetNode } from '../receipt/index.js'

export interface NodeOutcome {
  id: string
  name: string
  tags: Record<string, string>
  outcome: string
  failures?: Array<{ resource: string, error: string }>
}

/** What the fleet has said about one published envelope, from a fleet view. */
export interface Progress {
  applied: NodeOutcome[]
  unchanged: NodeOutcome[]
  failed: NodeOutcome[]
  notTargeted: NodeOutcome[]
  /** Known targeted nodes that have not reported this version yet. */
  pending: NodeOutcome[]
  /** Nodes holding another content under the same version: the other envelope won. */
  conflicting: NodeOutcome[]
  /** Nodes already on a newer version. */
  superseded: NodeOutcome[]
  /** Admitted nodes known: the only ones that count. */
  known: number
  /** Nodes heard from that are not admitted: counted nowhere else (docs/admission.md). */
  unadmitted: number
}

/** What each outcome a node reports counts as. (A trust policy or a tombstone is applied when held: its kind is its outcome.) */
const OUTCOMES: Readonly<Record<string, 'applied' | 'unchanged' | 'failed' | undefined>> = {
  applied: 'applied',
  changes: 'applied',
  unchanged: 'unchanged',
  'no-changes': 'unchanged',
  failed: 'failed',
  failures: 'failed',
  'changes-and-failures': 'failed',
  untrusted: 'failed'
}

/**
 * Pure: sorts the known admitted nodes by what they reported for `name`@`version`. A node is
 * targeted when the policy's target matches the tags it announces. A node the fleet view does
 * not mark admitted counts nowhere: made-up identities cannot complete, fail or stall a publish.
 */
export function progressOf (fleet: readonly FleetNode[], policy: Policy, version: number, hash: string): Progress {
  const members = fleet.filter((n) => n.admitted)
  const p: Progress = { applied: [], unchanged: [], failed: [], notTargeted: [], pending: [], conflicting: [], superseded: [], known: members.length, unadmitted: fleet.length - members.length }
  for (const n of members) {
    const state = n.policies[policy.name]
    const base = { id: n.id, name: n.name, tags: n.tags }
    const targeted = policy.kind !== 'policy' || matchesTarget(policy, { id: n.id, name: n.name, tags: n.tags })
    if (state !== undefined && state.version > version) { p.superseded.push({ ...base, outcome: 'superseded' }); continue }
    if (state !== undefined && state.version === version && state.hash !== hash) { p.conflicting.push({ ...base, outcome: 'conflict' }); continue }
    const reported = state !== undefined && state.version === version && state.hash === hash && state.outcome !== 'pending' ? state.outcome : undefined
    if (!targeted || reported === 'not-targeted') { p.notTargeted.push({ ...base, outcome: 'not-targeted' }); continue }
    if (reported === undefined) { p.pending.push({ ...base, outcome: 'pending' }); continue }
    const o: NodeOutcome = { ...base, outcome: reported, ...(state?.failures !== undefined ? { failures: state.failures } : {}) }
    const counted = OUTCOMES[reported] ?? (reported === policy.kind ? 'applied' : undefined)
    // Only the words that say it was applied count as applied. A node that dropped the
    // version as untrusted failed it; one whose beacon says `fork` (or anything else) has not
    // said how the apply went: it is still waited for.
    if (counted === undefined) p.pending.push({ ...base, outcome: reported })
    else p[counted].push(o)
  }
  return p
}

export function reportedCount (p: Progress): number {
  return p.applied.length + p.unchanged.length + p.failed.length
}

/**
 * Done when every known targeted node reported (or moved on to a newer version), or `expect`
 * targeted nodes have; at once on a conflict. A node on a newer version does not end the wait
 * for the others: it says nothing of them.
 */
export function isComplete (p: Progress, expect?: number): boolean {
  if (p.conflicting.length > 0) return true
  if (expect !== undefined) return reportedCount(p) >= expect
  return p.pending.length === 0 && p.known > 0
}
