import { validateEnvelope, type SigningKey, type VerifiedEnvelope } from '../envelope/index.js'
import type { ConfigPolicy, Policy } from '../policy/index.js'
import type { FleetNode } from '../receipt/index.js'
import {
  nextRecord, resolveStages, stageSizes, startRecord, ROLLOUT_NAME_PREFIX, MAX_REASON_CHARS,
  type MaxFailures, type RolloutAction, type RolloutRecord, type StageSpec
} from '../rollout/index.js'
import { deliverPrepared, preparePublish, publishPolicy, type MeshClient, type PublishResult } from './publisher.js'
import { GateReports, isStale, stageView, targetedNodes, type StageView } from './rollout-view.js'
import { PublishError, RolloutConflictError, RolloutNotFoundError } from './errors.js'

/** How often the evaluator looks: the record's digest entry and the fleet view (the whole view: about 0.5 KiB a node). */
export const ROLLOUT_POLL_MS = 250

/** How long the evaluator keeps looking while the mesh does not answer, or answers with peers that disagree on the head. */
const LOOK_RETRY_MS = 30_000

/** How long a halt waits for the failed nodes' receipts (what failed) after their beacons said so: a few receipt hops on a loaded host. */
const HALT_DETAIL_MS = 10_000

/** A rollout record as the mesh holds it, with the envelope that carries it. */
export interface HeldRecord {
  record: RolloutRecord
  envelope: VerifiedEnvelope
}

/** The newest rollout record the mesh holds for a policy, or undefined. */
export async function readRecord (client: MeshClient, policy: string): Promise<HeldRecord | undefined> {
  const name = ROLLOUT_NAME_PREFIX + policy
  const head = await client.current(name)
  if (head === undefined) return undefined
  const bytes = await client.envelope(name, head.version)
  if (bytes === undefined) throw new PublishError(`the mesh says ${name} v${head.version} is its newest, but no agent reached serves it`)
  const envelope = validateEnvelope(bytes, { authorize: () => {} })
  if (envelope.policy.kind !== 'rollout' || envelope.name !== name) throw new PublishError(`${name} v${head.version} is not a rollout record`)
  return { record: envelope.policy as RolloutRecord, envelope }
}

/** The policy a record rolls out, as its envelope says (for targets and the content hash). */
export async function readTarget (client: MeshClient, record: RolloutRecord): Promise<VerifiedEnvelope & { policy: ConfigPolicy }> {
  const bytes = await client.envelope(record.policy, record.target.version)
  if (bytes === undefined) throw new PublishError(`no agent reached serves ${record.policy} v${record.target.version}, the version this rollout rolls out`)
  const env = validateEnvelope(bytes, { authorize: () => {} })
  if (env.id !== record.target.id || env.policy.kind !== 'policy') throw new PublishError(`${record.policy} v${record.target.version} as the mesh holds it is not the envelope the rollout names (${record.target.id.slice(0, 12)}…)`)
  return env as VerifiedEnvelope & { policy: ConfigPolicy }
}

export interface StartOptions {
  policy: ConfigPolicy
  key: SigningKey
  stages: StageSpec[]
  maxFailures: MaxFailures
  bakeMs: number
  stageTimeoutMs: number
  autoRollback: boolean
  version?: number
  force?: string
  now?: () => number
  /** Nodes not heard from for this long are left out when counts and percentages are resolved (default NODE_STALE_AFTER_MS). */
  staleAfterMs?: number
}

export interface Started {
  /** The staged policy envelope, delivered after its record. */
  published: PublishResult
  record: HeldRecord
  /** Admitted targeted nodes the stages were resolved over. */
  targeted: number
  /** How many of those each stage includes, cumulatively. */
  sizes: number[]
}

/**
 * Starts a staged rollout (docs/rollout.md): signs the policy `staged`, resolves the stages over
 * the admitted targeted nodes this client's fleet view knows, signs the first record, and
 * delivers the record before the policy, so no node takes the new version without its stages.
 * A staged envelope that still arrives first waits for its record on every node.
 */
export async function startRollout (client: MeshClient, opts: StartOptions): Promise<Started> {
  const now = opts.now ?? Date.now
  const prepared = await preparePublish(client, { policy: opts.policy, key: opts.key, version: opts.version, force: opts.force, skipUnchanged: true, staged: true, now })
  const name = opts.policy.name
  const existing = await readRecord(client, name)
  // The version nodes outside the stages keep: what the fleet enforces now. After a rollout
  // that did not finish (halted, aborted), that is the version it rolled out from, not its target.
  let previous = prepared.previous === undefined ? undefined : { version: prepared.previous.version, id: prepared.previous.id }
  if (existing !== undefined && prepared.previous !== undefined && existing.record.target.id === prepared.previous.id) {
    const r = existing.record
    if (r.state === 'running' || r.state === 'paused') {
      throw new RolloutConflictError(`${name} v${r.target.version} is still being rolled out (stage ${r.stage + 1}/${r.stages.length}, ${r.state}); let it finish, or \`grapevine rollout abort ${name}\` first`)
    }
    if (r.state !== 'done') previous = r.previous
  }
  const fleet = await client.fleet()
  // Canaries are live nodes: a count or percentage resolved over stopped ones would pick a node that never reports.
  const targeted = targetedNodes(fleet, opts.policy).filter((n) => !isStale(n, now(), opts.staleAfterMs))
  const { envelope } = prepared
  const stages = resolveStages(opts.stages, name, envelope.version, targeted.map((n) => ({ id: n.id, tags: n.tags })))
  const record = startRecord({
    policy: name,
    target: { version: envelope.version, id: envelope.id },
    ...(previous !== undefined ? { previous } : {}),
    stages,
    maxFailures: opts.maxFailures,
    bakeMs: opts.bakeMs,
    stageTimeoutMs: opts.stageTimeoutMs,
    autoRollback: opts.autoRollback,
    at: now()
  })
  const signedRecord = await publishPolicy(client, { policy: record as Policy, key: opts.key, now })
  const published = await deliverPrepared(client, prepared)
  const sizes = stageSizes(stages, name, envelope.version, targeted.map((n) => n.id)).map((s) => s.count)
  return { published, record: { record, envelope: signedRecord.envelope }, targeted: targeted.length, sizes }
}

/** How a drive ended. `taken-over`: another admin signed the newest record; this process stopped evaluating. */
export type DriveEnd = 'done' | 'halted' | 'paused' | 'aborted' | 'taken-over' | 'interrupted'

export interface DriveResult {
  end: DriveEnd
  record: HeldRecord
  /** The last look at the stage the rollout ended in (or stands at). */
  view?: StageView
  /** Every stage change this process signed, in order. */
  history: Array<{ stage: number, state: RolloutRecord['state'], at: number, reason?: string }>
}

export interface DriveOptions {
  key: SigningKey
  now?: () => number
  pollMs?: number
  /** Ends the drive: the rollout is paused (signed), so it is seen to stand, not to run with no one watching. */
  signal?: AbortSignal
  onView?: (view: StageView) => void
  /** A stage member not heard from for this long, that has not reported, is not waited for (default NODE_STALE_AFTER_MS). */
  staleAfterMs?: number
  /** Each record this process signed, with the stage as it looked when it signed. */
  onStage?: (held: HeldRecord, view: StageView | undefined) => void
}

function clip (s: string): string {
  return s.length <= MAX_REASON_CHARS ? s : s.slice(0, MAX_REASON_CHARS - 1) + '…'
}

/** Why a gate halted, in one line the record keeps. */
export function haltReason (view: StageView): string {
  const g = view.gate
  if (g.verdict !== 'halt') return ''
  const who = g.failures.slice(0, 5).map((f) => `${view.failed.find((n) => n.id === f.node)?.name ?? f.node.slice(-8)} ${f.outcome}`).join(', ')
  const where = `stage ${view.stage + 1}/${view.stages} (${view.text})`
  return clip(g.reason === 'too-many-failures'
    ? `${where}: ${g.failures.length} of ${view.members} nodes failed or unhealthy, ${g.allowed} allowed: ${who}`
    : `${where}: ${g.missing.length} of ${view.members} nodes did not report within the stage timeout${g.failures.length > 0 ? `; failed: ${who}` : ''}`)
}

/**
 * The evaluator (docs/rollout.md, "No master"): watches the current stage's gate over the
 * fleet view, and signs the next record when it passes (advance) or fails (halt, rolled back
 * when the record says so). Before each signature it re-reads the mesh's newest record: one it
 * did not sign means another admin took over (or paused or aborted it), and it stops. Returns
 * when the rollout is done, halted, paused, aborted, taken over, or `signal` ends it.
 */
export async function driveRollout (client: MeshClient, held: HeldRecord, opts: DriveOptions): Promise<DriveResult> {
  const now = opts.now ?? Date.now
  const target = await readTarget(client, held.record)
  const reports = new GateReports(held.record.policy, { version: target.version, hash: target.hash })
  const history: DriveResult['history'] = []
  let mine = held
  let view: StageView | undefined
  /** When this process first saw the gate halt with a failure it cannot name yet. */
  let unexplainedSince: number | undefined
  const sign = async (action: RolloutAction): Promise<HeldRecord | undefined> => {
    const next = nextRecord(mine.record, action)
    const result = await publishPolicy(client, { policy: next as Policy, key: opts.key, now })
    // Two evaluators signed the same version: the higher hash won on every node, and it is not ours.
    if (result.conflict !== undefined && result.conflict.winner !== result.envelope.hash) return undefined
    history.push({ stage: next.stage, state: next.state, at: action.at, ...(next.reason !== undefined ? { reason: next.reason } : {}) })
    return { record: next, envelope: result.envelope }
  }
  let failingSince: number | undefined
  for (;;) {
    let head: HeldRecord | undefined
    let fleet: FleetNode[]
    try {
      // The head's digest entry is enough while it is ours; the record is read only when it is not.
      const headId = (await client.current(mine.envelope.name))?.id
      head = headId === mine.envelope.id ? mine : await readRecord(client, held.record.policy)
      fleet = await client.fleet()
      failingSince = undefined
    } catch (err) {
      // Peers that briefly disagree on the head (a record another admin just signed, still
      // spreading), or an agent restarting: look again, for a while, before giving up.
      failingSince ??= now()
      if (now() - failingSince > LOOK_RETRY_MS || opts.signal?.aborted === true) throw err
      await sleep(opts.pollMs ?? ROLLOUT_POLL_MS, opts.signal)
      continue
    }
    // Another admin signed the newest record: paused or aborted it, or resumed it with their own process.
    if (head === undefined || head.envelope.id !== mine.envelope.id) {
      const state = head?.record.state
      return { end: state === 'paused' || state === 'aborted' ? state : 'taken-over', record: head ?? mine, ...(view !== undefined ? { view } : {}), history }
    }
    if (mine.record.state !== 'running') return { end: mine.record.state as DriveEnd, record: mine, ...(view !== undefined ? { view } : {}), history }
    reports.add(fleet)
    view = stageView(mine.record, target.policy, fleet, reports, now(), opts.staleAfterMs)
    const gate = view.gate
    // A beacon may say "unhealthy" before the receipt saying what failed arrives: the halt waits
    // for it (at most HALT_DETAIL_MS), so the record and the admin get the node, resource and
    // error. No stage starts meanwhile: only the halt's record is later.
    const unexplained = gate.verdict === 'halt' && view.failed.some((f) => f.failures === undefined)
    if (unexplained) unexplainedSince ??= now()
    if (unexplained && now() - (unexplainedSince as number) < HALT_DETAIL_MS && opts.signal?.aborted !== true) {
      await sleep(opts.pollMs ?? ROLLOUT_POLL_MS, opts.signal)
      continue
    }
    opts.onView?.(view)
    let next: HeldRecord | undefined
    if (gate.verdict === 'pass') next = await sign({ type: 'advance', at: now() })
    else if (gate.verdict === 'halt') next = await sign({ type: 'halt', at: now(), reason: haltReason(view) })
    else if (opts.signal?.aborted === true) {
      next = await sign({ type: 'pause', at: now(), reason: 'the admin\'s process driving it was interrupted' })
      if (next === undefined) return { end: 'taken-over', record: mine, view, history }
      opts.onStage?.(next, view)
      return { end: 'interrupted', record: next, view, history }
    } else {
      await sleep(opts.pollMs ?? ROLLOUT_POLL_MS, opts.signal)
      continue
    }
    if (next === undefined) return { end: 'taken-over', record: (await readRecord(client, held.record.policy)) ?? mine, view, history }
    mine = next
    opts.onStage?.(mine, view)
    if (mine.record.state === 'done' || mine.record.state === 'halted') return { end: mine.record.state, record: mine, view, history }
  }
}

/**
 * Signs pause, resume or abort on the newest record of `policy`'s rollout (any admin in scope,
 * from any peer). Refused transitions throw RolloutTransitionError (src/rollout/errors.ts).
 */
export async function actOnRollout (client: MeshClient, policy: string, key: SigningKey, action: RolloutAction): Promise<HeldRecord> {
  const held = await readRecord(client, policy)
  if (held === undefined) throw new RolloutNotFoundError(policy)
  const next = nextRecord(held.record, action)
  const result = await publishPolicy(client, { policy: next as Policy, key })
  if (result.conflict !== undefined && result.conflict.winner !== result.envelope.hash) {
    throw new RolloutConflictError(`another admin signed ${result.envelope.name} v${result.envelope.version} at the same time, and theirs won; run \`grapevine rollout status ${policy}\` and try again`)
  }
  return { record: next, envelope: result.envelope }
}

async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return
  await new Promise<void>((resolve) => {
    const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
