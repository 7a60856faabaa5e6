// A staged rollout in the model engine (docs/rollout.md, "Simulation (model engine)"). The
// record is a second, small envelope per stage change, published by its signer's node and
// spread on the same gossip and sync paths as policies. Each node decides what it enforces
// from the newest record it holds and its own peer id (enforcedVersion, the production code);
// the evaluator, a process at the publishing node (or at whoever resumed), reads the reports
// its node's fleet view holds and calls evaluateGate and nextRecord on simulated time.

import {
  enforcement, evaluateGate, nextRecord, resolveStages, stageOf, stageSizes, startRecord, ROLLOUT_NAME_PREFIX, MAX_REASON_CHARS,
  type GateReport, type GateResult, type RolloutAction, type RolloutRecord, type StageSpec, type MaxFailures
} from '../../rollout/index.js'
import type { RecordRollout, RecordRolloutStep } from '../result.js'
import { HAVE, type Engine } from './engine.js'
import { HEADER_BYTES, PREV_FIELD_BYTES, RECORD_BODY_BYTES, RECORD_STAGE_BYTES } from './constants.js'

export interface RolloutPlan {
  /** The publish event's id. */
  publish: string
  policy: string
  /** Stages as written, and parsed. */
  spec: string
  specs: StageSpec[]
  maxFailures: MaxFailures
  maxFailuresText: string
  bakeMs: number
  stageTimeoutMs: number
  autoRollback: boolean
}

export interface RolloutWorld {
  engine: Engine
  /** Engine name slot of the policy, and of its record `rollout/<policy>`. */
  policySlot: number
  recordSlot: number
  /** A node's peer id: what its rank hashes. */
  peerId: (node: number) => string
  tags: (node: number) => Readonly<Record<string, string>>
  /** Per node: whether the policy targets it (grows as nodes join). */
  targeted: Uint8Array
  /** Per node: whether this version's health check fails there. */
  unhealthy: Uint8Array
  /** How often every agent sends a presence beacon (its fleet view's other source). */
  beaconMs: number
  random: () => number
  /** Signs a record envelope: its id (modelEnvelopeId). */
  envelopeId: (version: number, signer: string, at: number, prev: string | undefined) => string
  errors: string[]
}

/** A rollout the evaluator can no longer drive: its process stopped, or someone else signed the head. */
const NO_EVALUATOR = -1

export class ModelRollout {
  readonly steps: RecordRolloutStep[] = []
  /** Record envelopes by message index. */
  private readonly records = new Map<number, RolloutRecord>()
  private readonly stageSizes: Array<{ text: string, members: number }>
  /** Per node: the first stage that includes it (-1: not computed yet; -2: none). */
  private readonly firstStage: Int16Array
  /** Per node: the message this rollout made it enforce (-1: none yet). */
  private readonly enforcing: Int32Array
  /** Per node: when it applied the target (NaN: never). Its report's time. */
  readonly appliedAt: Float64Array
  private readonly beaconPhase: Float64Array
  private readonly stages: RolloutRecord['stages']
  /** The node whose process evaluates the gate, and the record it signed last. */
  private evaluator: number
  private signer: string
  private lastSigned = -1
  /** Reports the evaluator's fleet view holds for the target: the latest per node. */
  private known = new Map<number, GateReport>()
  /** Nodes that applied the target and the evaluator has not heard from yet: their beacons may carry it. */
  private unheard = new Set<number>()
  private reporters: number[] = []
  private dirty = true
  private wakeAt = Infinity

  constructor (
    private readonly w: RolloutWorld,
    readonly plan: RolloutPlan,
    /** The staged policy envelope, and the one nodes outside the stage keep (-1: a first version). */
    readonly target: number,
    readonly previous: number,
    from: number,
    admin: string,
    at: number
  ) {
    const e = w.engine
    const m = e.msgs[target]!
    const cap = e.capacity
    this.firstStage = new Int16Array(cap).fill(-1)
    this.enforcing = new Int32Array(cap).fill(-1)
    this.appliedAt = new Float64Array(cap).fill(NaN)
    this.beaconPhase = new Float64Array(cap).fill(NaN)
    // The publisher resolves counts over the targeted nodes its fleet view knows: the running ones.
    const view: Array<{ id: string, tags: Readonly<Record<string, string>> }> = []
    for (let i = 0; i < e.nodes; i++) if (w.targeted[i] === 1 && e.up[i] === 1) view.push({ id: w.peerId(i), tags: w.tags(i) })
    this.stages = resolveStages(plan.specs, plan.policy, m.version, view)
    this.stageSizes = stageSizes(this.stages, plan.policy, m.version, view.map((n) => n.id)).map((s, i) => ({ text: this.stages[i]!.text, members: s.count }))
    const prev = previous >= 0 ? e.msgs[previous]! : undefined
    this.evaluator = from
    this.signer = admin
    this.sign(from, admin, 'start', startRecord({
      policy: plan.policy,
      target: { version: m.version, id: m.id },
      ...(prev !== undefined ? { previous: { version: prev.version, id: prev.id } } : {}),
      stages: this.stages,
      maxFailures: plan.maxFailures,
      bakeMs: plan.bakeMs,
      stageTimeoutMs: plan.stageTimeoutMs,
      autoRollback: plan.autoRollback,
      at
    }), at)
  }

  /** The newest record signed, whoever signed it. */
  get head (): RolloutRecord {
    return this.records.get(this.lastSignedAny)!
  }

  private lastSignedAny = -1

  isRecord (msg: number): boolean {
    return this.records.has(msg)
  }

  /** The evaluator can still move it: running, and its process alive. */
  active (): boolean {
    return this.evaluator !== NO_EVALUATOR && this.head.state === 'running'
  }

  /** What the run recorded of this rollout: the engine-neutral RecordRollout. */
  toRecord (): RecordRollout {
    const m = this.w.engine.msgs[this.target]!
    return {
      publish: this.plan.publish,
      name: this.plan.policy,
      version: m.version,
      hash: m.hash,
      spec: this.plan.spec,
      stages: this.stageSizes,
      bakeMs: this.plan.bakeMs,
      maxFailures: this.plan.maxFailuresText,
      stageTimeoutMs: this.plan.stageTimeoutMs,
      autoRollback: this.plan.autoRollback,
      steps: this.steps
    }
  }

  // ---- nodes -----------------------------------------------------------------

  private stageOfNode (v: number): number {
    let s = this.firstStage[v]!
    if (s === -1) {
      const m = this.w.engine.msgs[this.target]!
      s = stageOf(this.stages, this.w.peerId(v), this.plan.policy, m.version) ?? -2
      this.firstStage[v] = s
    }
    return s
  }

  /**
   * `v` took a record or the staged envelope: it enforces what the agent's rule says
   * (`enforcement`, src/rollout/enforce.ts) from the staged version it holds, the newest record
   * it holds and its peer id: the target once a stage includes it, the previous version
   * otherwise or after a rollback; a staged version whose record has not come keeps what the
   * node had. A node holding a newer plain publish is not this rollout's (the head wins).
   */
  update (v: number, at: number): void {
    const e = this.w.engine
    if (e.current[this.w.policySlot]![v] !== this.target) return
    if (this.w.targeted[v] !== 1) return
    const m = e.msgs[this.target]!
    const prev = this.previous >= 0 ? e.msgs[this.previous]! : undefined
    const was = this.enforcing[v]!
    const lastMsg = was >= 0 ? e.msgs[was]! : prev !== undefined && (prev.state[v]! & HAVE) !== 0 ? prev : undefined
    const verdict = enforcement({ version: m.version, id: m.id, hash: m.hash, staged: true }, this.records.get(e.current[this.w.recordSlot]![v]!), this.w.peerId(v),
      lastMsg !== undefined ? { version: lastMsg.version, hash: lastMsg.hash } : undefined)
    const isPrev = verdict.kind === 'older' && prev !== undefined && verdict.version === prev.version && (verdict.id ?? prev.id) === prev.id && (verdict.hash ?? prev.hash) === prev.hash
    const msg = verdict.kind === 'head' ? this.target : isPrev ? this.previous : -1
    if (msg < 0 || msg === was) return
    this.enforcing[v] = msg
    // Outside the stage, a node keeps enforcing the previous version it already applied: nothing to run.
    if (msg === this.previous && was === -1) return
    // The previous version comes from the node's archive; a node that joined later never held it.
    if ((e.msgs[msg]!.state[v]! & HAVE) === 0) return
    e.enforce(v, msg, at)
  }

  /** `v` applied `msg` (any): note the target's apply as its report. */
  applied (v: number, msg: number, at: number): void {
    if (msg !== this.target) return
    if (Number.isNaN(this.appliedAt[v]!)) this.reporters.push(v)
    this.appliedAt[v] = at
    this.unheard.add(v)
    if (Number.isNaN(this.beaconPhase[v]!)) this.beaconPhase[v] = this.w.random() * this.w.beaconMs
  }

  outcome (v: number): GateReport['outcome'] {
    return this.w.unhealthy[v] === 1 ? 'unhealthy' : 'applied'
  }

  /**
   * A report of `reporter`'s apply is at `node` at `at` (its own, or a receipt passing through,
   * once the node verified it): the evaluator's fleet view learns it then. Receipts queue for
   * the node's CPU, so `at` may lie ahead of the engine's clock: held until a tick reaches it.
   */
  reported (node: number, msg: number, reporter: number, at: number): void {
    if (msg !== this.target || node !== this.evaluator) return
    this.incoming.push(at, reporter)
  }

  /** Reports verified at the evaluator's node by `now`: [at, reporter] pairs, flat. */
  private incoming: number[] = []

  private receive (now: number): void {
    const keep: number[] = []
    for (let i = 0; i < this.incoming.length; i += 2) {
      if (this.incoming[i]! <= now) this.hear(this.incoming[i + 1]!)
      else keep.push(this.incoming[i]!, this.incoming[i + 1]!)
    }
    this.incoming = keep
  }

  private hear (reporter: number): void {
    const at = this.appliedAt[reporter]!
    if (Number.isNaN(at)) return
    const prev = this.known.get(reporter)
    if (prev !== undefined && prev.at >= at) return
    this.known.set(reporter, { node: this.w.peerId(reporter), outcome: this.outcome(reporter), admitted: true, at })
    this.unheard.delete(reporter)
    this.dirty = true
  }

  /** Presence beacons: every beaconMs, each node that applied the target tells every node it can reach. */
  private beacons (from: number, to: number): void {
    const e = this.w.engine
    const ev = this.evaluator
    if (ev === NO_EVALUATOR || e.up[ev] === 0) return
    const B = this.w.beaconMs
    for (const v of this.unheard) {
      const phase = this.beaconPhase[v]!
      // Any beacon of v in (from, to], after it applied, while v is up and on the evaluator's side of any cut.
      const first = Math.max(from, this.appliedAt[v]!)
      const k = Math.floor((first - phase) / B) + 1
      if (phase + k * B > to) continue
      if (e.up[v] === 1 && (e.pgroup[v] === 0 || e.pgroup[ev] === 0 || e.pgroup[v] === e.pgroup[ev])) this.hear(v)
    }
  }

  // ---- the evaluator -----------------------------------------------------------

  /** The node running the evaluator stopped (kill): its process went with it; the record stays where it stood. */
  stopped (node: number): void {
    if (node === this.evaluator) this.evaluator = NO_EVALUATOR
  }

  /** Something the gate reads changed (a node stopped or started): evaluate at the next tick. */
  touch (): void {
    this.dirty = true
  }

  /** One pass of the evaluator at `now` (the reports that arrived up to it, then the gate). */
  tick (from: number, now: number): void {
    if (this.evaluator === NO_EVALUATOR) return
    const e = this.w.engine
    if (e.up[this.evaluator] === 0) {
      this.evaluator = NO_EVALUATOR
      return
    }
    // Before deciding, re-read the head its node holds: a record it did not sign (a pause,
    // another admin's resume) means someone else drives it now (docs/rollout.md, "No master").
    if (e.current[this.w.recordSlot]![this.evaluator] !== this.lastSigned) {
      this.evaluator = NO_EVALUATOR
      return
    }
    this.receive(now)
    this.beacons(from, now)
    const rec = this.records.get(this.lastSigned)!
    if (rec.state !== 'running') return
    if (!this.dirty && now < this.wakeAt) return
    this.dirty = false
    const members: string[] = []
    for (let i = 0; i < e.nodes; i++) {
      if (this.w.targeted[i] !== 1 || e.up[i] === 0) continue
      const s = this.stageOfNode(i)
      if (s >= 0 && s <= rec.stage) members.push(this.w.peerId(i))
    }
    const startedAt = Date.parse(rec.stageStartedAt)
    const verdict = evaluateGate({ members, startedAt }, [...this.known.values()], now, {
      maxFailures: rec.maxFailures,
      bakeMs: rec.bakeMs,
      stageTimeoutMs: rec.stageTimeoutMs
    })
    if (verdict.verdict === 'wait') {
      this.wakeAt = Math.min(verdict.bakeUntil ?? Infinity, startedAt + rec.stageTimeoutMs)
      return
    }
    this.wakeAt = Infinity
    this.dirty = true
    const action: RolloutAction = verdict.verdict === 'pass' ? { type: 'advance', at: now } : { type: 'halt', at: now, reason: haltReason(rec, verdict) }
    this.sign(this.evaluator, this.signer, action.type, nextRecord(rec, action), now)
  }

  /**
   * An admin at `node` acts on the rollout by the record its node holds (resume, pause, abort).
   * A resume makes that node's process the evaluator, with the fleet view its node has from now on.
   */
  act (node: number, admin: string, action: RolloutAction, at: number): void {
    const e = this.w.engine
    const rec = this.records.get(e.current[this.w.recordSlot]![node]!)
    if (rec === undefined) throw new Error(`node-${node} holds no record of ${ROLLOUT_NAME_PREFIX}${this.plan.policy}`)
    const next = nextRecord(rec, action)
    this.sign(node, admin, action.type, next, at)
    if (action.type === 'resume') {
      this.evaluator = node
      this.signer = admin
      this.known = new Map()
      this.incoming = []
      this.unheard = new Set(this.reporters)
      this.dirty = true
      this.wakeAt = Infinity
    }
  }

  /** Publishes `rec` as the next version of the record name from `node`, extending what that node holds. */
  private sign (node: number, admin: string, action: RecordRolloutStep['action'], rec: RolloutRecord, at: number): void {
    const e = this.w.engine
    const held = e.current[this.w.recordSlot]![node]!
    const prev = held >= 0 ? e.msgs[held] : undefined
    const version = (prev?.version ?? 0) + 1
    const bytes = RECORD_BODY_BYTES + rec.stages.length * RECORD_STAGE_BYTES + HEADER_BYTES + (prev !== undefined ? PREV_FIELD_BYTES : 0)
    const msg = e.addMessage({
      name: this.w.recordSlot,
      version,
      hash: `rollout:${version}:${rec.state}:${rec.stage}:${at}`,
      id: this.w.envelopeId(version, admin, at, prev?.id),
      ...(prev !== undefined ? { prev: prev.id } : {}),
      root: admin === 'root',
      record: true,
      bytes,
      origin: node,
      at,
      targeted: undefined
    })
    this.records.set(msg, rec)
    this.lastSignedAny = msg
    if (node === this.evaluator || action === 'start' || action === 'resume') this.lastSigned = msg
    this.steps.push({ version, at, by: node, signer: admin, action, state: rec.state, stage: rec.stage, ...(rec.reason !== undefined ? { reason: rec.reason } : {}), rolledBack: rec.rolledBack })
    e.publish(node, msg)
  }
}

function haltReason (rec: RolloutRecord, v: Extract<GateResult, { verdict: 'halt' }>): string {
  const stage = `stage ${rec.stage + 1}/${rec.stages.length} (${rec.stages[rec.stage]!.text})`
  const failed = v.failures.map((f) => `${f.node} ${f.outcome}`)
  const text = v.reason === 'too-many-failures'
    ? `${stage}: ${v.failures.length} failure(s), ${v.allowed} allowed: ${failed.join(', ')}`
    : `${stage}: no report from ${v.missing.length} node(s) within the stage timeout: ${v.missing.join(', ')}`
  return text.length <= MAX_REASON_CHARS ? text : `${text.slice(0, MAX_REASON_CHARS - 1)}…`
}
