import { ALL_MILLI, type MaxFailures } from './stages.js'

/**
 * What a gate reads from one node's receipt for the version being rolled out: the receipt
 * outcomes one for one (`unhealthy`: applied, but a health check failed). Defined here so the
 * core does not depend on the receipt module; a caller drops the other outcomes
 * (`not-targeted`, `retired`), which are not outcomes of this version.
 */
export type GateOutcome = 'applied' | 'unchanged' | 'failed' | 'unhealthy'

export interface GateReport {
  node: string
  outcome: GateOutcome
  /** Whether the node holds an admission certificate the trust policy honours. Only admitted nodes count. */
  admitted: boolean
  /** When the node reported (ms). The latest report per node is the one that counts. */
  at: number
}

export interface GateStage {
  /** The admitted targeted nodes in this stage or an earlier one (inStage over the fleet view). */
  members: readonly string[]
  /** When the stage started or was last resumed (ms): the stage timeout counts from here. */
  startedAt: number
}

export interface GateOptions {
  maxFailures: MaxFailures
  /** How long every member must stay healthy after the last one reported (ms). */
  bakeMs: number
  /** How long to wait for every member to report before halting (ms). */
  stageTimeoutMs: number
}

export interface GateFailure {
  node: string
  outcome: 'failed' | 'unhealthy'
  at: number
}

export type GateResult =
  | { verdict: 'pass', healthy: number }
  | { verdict: 'wait', missing: string[], bakeUntil?: number, healthy: number, failures: GateFailure[] }
  | { verdict: 'halt', reason: 'too-many-failures', failures: GateFailure[], allowed: number }
  | { verdict: 'halt', reason: 'stage-timeout', missing: string[], failures: GateFailure[] }

function isFailure (r: GateReport): boolean {
  return r.outcome === 'failed' || r.outcome === 'unhealthy'
}

/** How many failures a stage of `members` nodes may have: N, or P% rounded down. */
export function allowedFailures (max: MaxFailures, members: number): number {
  return max.kind === 'count' ? max.count : Math.floor((members * max.milli) / ALL_MILLI)
}

/**
 * Decides a stage's gate from the reports so far:
 * - halt when failures (unhealthy included) among the members exceed max-failures, at once,
 *   whether or not every member has reported;
 * - halt when a member has not reported by `startedAt + stageTimeoutMs`;
 * - wait while members are missing, or until every member has been healthy for `bakeMs`
 *   (counted from the last one to become healthy, and not before the stage started);
 * - pass otherwise.
 * Reports from nodes that are not admitted or not members are ignored: a minted identity can
 * neither fill a stage nor fail it.
 */
export function evaluateGate (stage: GateStage, reports: readonly GateReport[], now: number, options: GateOptions): GateResult {
  const members = new Set(stage.members)
  const byNode = new Map<string, GateReport[]>()
  for (const r of reports) {
    if (!r.admitted || !members.has(r.node)) continue
    const list = byNode.get(r.node)
    if (list === undefined) byNode.set(r.node, [r])
    else list.push(r)
  }
  const failures: GateFailure[] = []
  // Bake counts from when the last member became healthy and stayed so: a later "unchanged"
  // receipt from drift repair does not restart it, a failure in between does.
  let healthySince = stage.startedAt
  for (const [node, list] of byNode) {
    list.sort((a, b) => a.at - b.at)
    const latest = list[list.length - 1] as GateReport
    if (latest.outcome === 'failed' || latest.outcome === 'unhealthy') {
      failures.push({ node, outcome: latest.outcome, at: latest.at })
      continue
    }
    let since = latest.at
    for (let i = list.length - 1; i >= 0 && !isFailure(list[i] as GateReport); i--) since = (list[i] as GateReport).at
    if (since > healthySince) healthySince = since
  }
  failures.sort((a, b) => a.at - b.at || (a.node < b.node ? -1 : 1))
  const allowed = allowedFailures(options.maxFailures, members.size)
  if (failures.length > allowed) return { verdict: 'halt', reason: 'too-many-failures', failures, allowed }
  const healthy = byNode.size - failures.length
  const missing = [...members].filter((m) => !byNode.has(m)).sort()
  if (missing.length > 0) {
    if (now >= stage.startedAt + options.stageTimeoutMs) return { verdict: 'halt', reason: 'stage-timeout', missing, failures }
    return { verdict: 'wait', missing, healthy, failures }
  }
  const bakeUntil = healthySince + options.bakeMs
  if (now < bakeUntil) return { verdict: 'wait', missing, bakeUntil, healthy, failures }
  return { verdict: 'pass', healthy }
}
