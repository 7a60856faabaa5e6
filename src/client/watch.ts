import { matchesTarget, type Policy } from '../policy/index.js'
import { factAt } from '../policy/target.js'
import { DEFAULT_BEACON_INTERVAL_MS, type FleetNode } from '../receipt/index.js'

/**
 * A node not heard from (beacon or receipt) for this long is stale: `publish --wait` shows it
 * apart and does not wait for it, and `fleet` lists it as not heard from. A live node beacons at least every 1.25 intervals (5 min,
 * jittered ±25%); two intervals leave room for one beacon lost on the way.
 */
export const NODE_STALE_AFTER_MS = 2 * DEFAULT_BEACON_INTERVAL_MS

/** When the nodes were last heard from is judged against `now`; without it no node is stale. */
export interface Liveness {
  now: number
  staleAfterMs?: number
}

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
  /** Targeted nodes the policy's secrets are not sealed to (not recipients, or rekeyed since): they did not apply it (docs/secrets.md). */
  sealed: NodeOutcome[]
  /** Known targeted nodes that have not reported this version yet, and were heard from lately: waited for. */
  pending: NodeOutcome[]
  /** Known targeted nodes that have not reported this version and went quiet (NODE_STALE_AFTER_MS): not waited for. */
  stale: NodeOutcome[]
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
const OUTCOMES: Readonly<Record<string, 'applied' | 'unchanged' | 'failed' | 'sealed' | undefined>> = {
  sealed: 'sealed',
  applied: 'applied',
  changes: 'applied',
  unchanged: 'unchanged',
  'no-changes': 'unchanged',
  failed: 'failed',
  // Every resource applied but a health check failed: a failure for the publisher, as for a gate.
  unhealthy: 'failed',
  failures: 'failed',
  'changes-and-failures': 'failed',
  untrusted: 'failed'
}

/**
 * Pure: sorts the known admitted nodes by what they reported for `name`@`version`. A node is
 * targeted when the policy's target matches the tags it announces. A node the fleet view does
 * not mark admitted counts nowhere: made-up identities cannot complete, fail or stall a publish.
 * With `live`, a node yet to report that has not been heard from lately (a stopped node) is
 * stale rather than pending: a node stopped minutes ago would otherwise hold every wait until
 * its timeout.
 */
export function progressOf (fleet: readonly FleetNode[], policy: Policy, version: number, hash: string, live?: Liveness): Progress {
  const members = fleet.filter((n) => n.admitted)
  const p: Progress = { applied: [], unchanged: [], failed: [], notTargeted: [], sealed: [], pending: [], stale: [], conflicting: [], superseded: [], known: members.length, unadmitted: fleet.length - members.length }
  const quiet = (n: FleetNode): boolean => live !== undefined && live.now - Date.parse(n.lastSeen) > (live.staleAfterMs ?? NODE_STALE_AFTER_MS)
  for (const n of members) {
    const state = n.policies[policy.name]
    const base = { id: n.id, name: n.name, tags: n.tags }
    const targeted = policy.kind !== 'policy' || mayTarget(policy, n)
    if (state !== undefined && state.version > version) { p.superseded.push({ ...base, outcome: 'superseded' }); continue }
    if (state !== undefined && state.version === version && state.hash !== hash) { p.conflicting.push({ ...base, outcome: 'conflict' }); continue }
    const reported = state !== undefined && state.version === version && state.hash === hash && state.outcome !== 'pending' ? state.outcome : undefined
    if (!targeted || reported === 'not-targeted') { p.notTargeted.push({ ...base, outcome: 'not-targeted' }); continue }
    if (reported === undefined) { p[quiet(n) ? 'stale' : 'pending'].push({ ...base, outcome: quiet(n) ? 'stale' : 'pending' }); continue }
    const o: NodeOutcome = { ...base, outcome: reported, ...(state?.failures !== undefined ? { failures: state.failures } : {}) }
    const counted = OUTCOMES[reported] ?? (reported === policy.kind ? 'applied' : undefined)
    // Only the words that say it was applied count as applied. A node that dropped the
    // version as untrusted failed it; one whose beacon says `fork` (or anything else) has not
    // said how the apply went: it is still waited for.
    if (counted === undefined) p[quiet(n) ? 'stale' : 'pending'].push({ ...base, outcome: reported })
    else p[counted].push(o)
  }
  return p
}

/**
 * Pure: whether a policy may target a node, judged from what the fleet view has of it: its tags,
 * and the facts its beacon carried. A fact the beacon does not carry (its summary is bounded, or
 * the agent is older than facts) is the node's to judge: it may be targeted, so it is waited for
 * until its receipt says applied or not-targeted.
 */
export function mayTarget (policy: Extract<Policy, { kind: 'policy' }>, n: Pick<FleetNode, 'id' | 'name' | 'tags' | 'facts'>): boolean {
  const want = policy.target?.facts
  if (want === undefined) return matchesTarget(policy, n)
  if (!matchesTarget({ target: { ...policy.target, facts: undefined } }, n)) return false
  return Object.entries(want).every(([path, value]) => {
    const have = factAt(n.facts, path)
    return have === undefined || (have !== null && typeof have !== 'object' && String(have) === String(value))
  })
}

export function reportedCount (p: Progress): number {
  return p.applied.length + p.unchanged.length + p.failed.length + p.sealed.length
}

/**
 * Done when every known live targeted node reported (or moved on to a newer version), or `expect`
 * targeted nodes have; at once on a conflict. A node on a newer version does not end the wait
 * for the others: it says nothing of them. Stale nodes are not waited for, unless every node
 * yet to report is stale and none has reported: then nothing is known, and the wait goes on
 * (a stopped fleet may come back) until its timeout.
 */
export function isComplete (p: Progress, expect?: number): boolean {
  if (p.conflicting.length > 0) return true
  if (expect !== undefined) return reportedCount(p) >= expect
  if (p.stale.length > 0 && reportedCount(p) === 0) return false
  return p.pending.length === 0 && p.known > 0
}
