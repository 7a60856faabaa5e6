import type { ConfigPolicy } from '../policy/index.js'
import type { FleetNode } from '../receipt/index.js'
import { mayTarget, NODE_STALE_AFTER_MS } from './watch.js'
import { evaluateGate, stageOf, stageSizes, type GateOutcome, type GateReport, type GateResult, type RolloutRecord } from '../rollout/index.js'

/** The words receipts and beacons use for a version's outcome, as a gate reads them. */
const GATE_OUTCOMES: Readonly<Record<string, GateOutcome | undefined>> = {
  applied: 'applied',
  changes: 'applied',
  unchanged: 'unchanged',
  'no-changes': 'unchanged',
  failed: 'failed',
  failures: 'failed',
  'changes-and-failures': 'failed',
  unhealthy: 'unhealthy',
  // Not a recipient of the version's secrets: it did not apply it, and will not until a reseal.
  // A failure for the gate, named as such, rather than a wait that only the stage timeout ends.
  sealed: 'failed'
}

/** What a stage shows for a node that reported `sealed` (its receipt names no resource). */
const NOT_A_RECIPIENT = [{ resource: 'secrets', error: 'not a recipient: the version\'s secrets are not sealed to this node (or to its current key); grapevine reseal seals them to today\'s fleet' }]

/** One node of a stage as `publish --rollout --wait` and `rollout status` show it. */
export interface StageNode {
  id: string
  name: string
  outcome: GateOutcome | 'waiting'
  failures?: Array<{ resource: string, error: string }>
}

/** A rollout's current stage over the fleet view: who is in it and what they said. */
export interface StageView {
  policy: string
  version: number
  /** 0-based index of the current stage, and how many there are. */
  stage: number
  stages: number
  text: string
  state: RolloutRecord['state']
  /** Admitted targeted nodes the fleet view knows, and how many of them the current stage includes (and counts). */
  targeted: number
  members: number
  /** Nodes the stage includes that went quiet (stale) before reporting: not waited for. */
  stale: number
  /** Members that applied the target (healthy or not), healthy ones, failed or unhealthy ones, and those yet to report. */
  applied: number
  healthy: number
  failed: StageNode[]
  waiting: StageNode[]
  /** Targeted nodes outside the stage: they hold the target and keep enforcing the previous version. */
  heldBack: number
  /** The gate's verdict now (for a running rollout). */
  gate: GateResult
  /** Cumulative node counts of every stage over the fleet view. */
  sizes: number[]
}

/**
 * Accumulates what the fleet view says of one version, node by node, across polls: a gate
 * needs each node's reports over time (bake counts from when a node became healthy and
 * stayed so), while a fleet view holds only the latest.
 */
export class GateReports {
  private readonly seen = new Map<string, GateReport>()
  /** Each node's first stage, for the stages in `stagesKey`: a rank is a SHA-256, and 10,000 nodes would cost ~40 ms a poll. */
  private readonly first = new Map<string, number | undefined>()
  private stagesKey = ''
  /** Each node's latest failures for the target version: a beacon saying `unhealthy` carries none, its receipt does. */
  private readonly why = new Map<string, { at: number, failures: Array<{ resource: string, error: string }> }>()

  constructor (private readonly policy: string, private readonly target: { version: number, hash: string }) {}

  /** Takes the admitted nodes' states for the target version. */
  add (fleet: readonly FleetNode[]): void {
    for (const n of fleet) {
      if (!n.admitted) continue
      const s = n.policies[this.policy]
      if (s === undefined || s.version !== this.target.version || s.hash !== this.target.hash) continue
      const outcome = GATE_OUTCOMES[s.outcome]
      const at = Date.parse(s.at)
      if (outcome === undefined || !Number.isFinite(at)) continue
      this.seen.set(`${n.id}\n${at}\n${outcome}`, { node: n.id, outcome, admitted: true, at })
      const failures = s.failures !== undefined && s.failures.length > 0 ? s.failures : s.outcome === 'sealed' ? NOT_A_RECIPIENT : undefined
      if (failures !== undefined && (this.why.get(n.id)?.at ?? -Infinity) <= at) this.why.set(n.id, { at, failures })
    }
  }

  /** stageOf over `record`'s stages, computed once per node across polls (and again only if the stages change). */
  firstStages (record: RolloutRecord): (id: string) => number | undefined {
    const key = JSON.stringify(record.stages)
    if (key !== this.stagesKey) {
      this.first.clear()
      this.stagesKey = key
    }
    return (id) => {
      if (!this.first.has(id)) this.first.set(id, stageOf(record.stages, id, record.policy, record.target.version))
      return this.first.get(id)
    }
  }

  /** What failed on a node, as its receipt said (undefined until one with failures arrived). */
  failuresOf (node: string): Array<{ resource: string, error: string }> | undefined {
    return this.why.get(node)?.failures
  }

  list (): GateReport[] {
    return [...this.seen.values()]
  }
}

/** The admitted nodes the policy targets, by the tags and facts they announce (as publish --wait counts them). */
export function targetedNodes (fleet: readonly FleetNode[], policy: ConfigPolicy): FleetNode[] {
  return fleet.filter((n) => n.admitted && mayTarget(policy, n))
}

/** Not heard from (beacon or receipt) for longer than `staleAfterMs`: stopped, as publish --wait judges it. */
export function isStale (n: Pick<FleetNode, 'lastSeen'>, now: number, staleAfterMs = NODE_STALE_AFTER_MS): boolean {
  return now - Date.parse(n.lastSeen) > staleAfterMs
}

/**
 * Pure: the current stage of `record` over the fleet view and the reports gathered so far.
 * Only admitted targeted nodes count, and of those only the ones the stage includes by their
 * peer id (inStage): a minted identity, or a node claiming tags, neither fills nor fails a stage.
 */
export function stageView (record: RolloutRecord, policy: ConfigPolicy, fleet: readonly FleetNode[], reports: GateReports, now: number, staleAfterMs = NODE_STALE_AFTER_MS): StageView {
  const targeted = targetedNodes(fleet, policy)
  const { version } = record.target
  const all = reports.list()
  const reported = new Set(all.map((r) => r.node))
  const firstStage = reports.firstStages(record)
  const inThisStage = targeted.filter((n) => (firstStage(n.id) ?? Infinity) <= record.stage)
  // A stopped node (not heard from in staleAfterMs, as publish --wait judges it) is not waited
  // for, unless it is all the stage has: a stage passes on evidence, never on no one's word.
  const live = inThisStage.filter((n) => reported.has(n.id) || !isStale(n, now, staleAfterMs))
  const members = live.length > 0 ? live : inThisStage
  const gate = evaluateGate({ members: members.map((n) => n.id), startedAt: Date.parse(record.stageStartedAt) }, all, now, {
    maxFailures: record.maxFailures, bakeMs: record.bakeMs, stageTimeoutMs: record.stageTimeoutMs
  })
  const latest = new Map<string, GateReport>()
  for (const r of all) if ((latest.get(r.node)?.at ?? -Infinity) <= r.at) latest.set(r.node, r)
  const failed: StageNode[] = []
  const waiting: StageNode[] = []
  let applied = 0
  let healthy = 0
  for (const n of members) {
    const r = latest.get(n.id)
    if (r === undefined) { waiting.push({ id: n.id, name: n.name, outcome: 'waiting' }); continue }
    if (r.outcome !== 'failed') applied++
    if (r.outcome === 'applied' || r.outcome === 'unchanged') healthy++
    else {
      const failures = reports.failuresOf(n.id)
      failed.push({ id: n.id, name: n.name, outcome: r.outcome, ...(failures !== undefined ? { failures } : {}) })
    }
  }
  return {
    policy: record.policy,
    version,
    stage: record.stage,
    stages: record.stages.length,
    text: record.stages[record.stage]?.text ?? '',
    state: record.state,
    targeted: targeted.length,
    members: members.length,
    stale: inThisStage.length - members.length,
    applied,
    healthy,
    failed,
    waiting,
    heldBack: targeted.length - inThisStage.length,
    gate,
    sizes: stageSizes(record.stages, record.policy, version, targeted.map((n) => n.id), firstStage).map((s) => s.count)
  }
}
