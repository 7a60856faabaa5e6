import { z } from '../vendor/zod.js'
import { policyName, TRUST_POLICY_NAME } from '../policy/name.js'
import { MAX_RANK, MAX_REASON_CHARS, MAX_STAGE_NODES, MAX_STAGES, PERCENT_SCALE, ROLLOUT_NAME_PREFIX } from './constants.js'
import { RolloutTransitionError } from './errors.js'
import { inStage, type ResolvedStage } from './rank.js'
import type { MaxFailures } from './stages.js'

// The record is the body of an envelope named `rollout/<policy>` (docs/rollout.md): it reuses the
// signature, the version chain, gossip and anti-entropy. This is its schema, and the one the
// validator uses: it is a member of anyPolicy (src/policy/schema.ts).

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected 64 lower-case hex digits' })
const peerId = z.string().min(1).max(128)
const version = z.number().int().positive().max(Number.MAX_SAFE_INTEGER)
const reason = z.string().min(1).max(MAX_REASON_CHARS)
/** A week: a bake or stage timeout longer than that is a typo, and keeps `at + ms` far from overflow. */
const MAX_DURATION_MS = 7 * 24 * 3600 * 1000
const duration = z.number().int().min(0).max(MAX_DURATION_MS)

export const resolvedStage = z.strictObject({
  text: z.string().min(1).max(200).describe('The stage as written: "1", "5%", "role=canary".'),
  upTo: hex64.optional().describe('The highest rank (sha256 of peer id, policy name, version) in the stage.'),
  nodes: z.array(peerId).min(1).max(MAX_STAGE_NODES).optional().describe('Peer ids in the stage (a tag selector, resolved when the rollout started).')
}).refine((s) => s.upTo !== undefined || s.nodes !== undefined, { error: 'a stage needs upTo or nodes' })

export const maxFailures = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('count'), count: z.number().int().min(0).max(1_000_000_000) }),
  z.strictObject({ kind: z.literal('percent'), milli: z.number().int().min(0).max(100 * PERCENT_SCALE) })
])

export const ROLLOUT_STATES = ['running', 'paused', 'halted', 'aborted', 'done'] as const
export type RolloutState = typeof ROLLOUT_STATES[number]

const versionRef = z.strictObject({ version, id: hex64 })

export const rolloutRecord = z.strictObject({
  kind: z.literal('rollout'),
  name: z.string().max(ROLLOUT_NAME_PREFIX.length + 200),
  policy: policyName.describe('The policy being rolled out.'),
  target: versionRef.describe('The version rolled out, and its envelope id.'),
  previous: versionRef.optional().describe('The version nodes outside the stage keep enforcing, and rollback returns to; absent for a first version.'),
  stages: z.array(resolvedStage).min(1).max(MAX_STAGES),
  stage: z.number().int().min(0).describe('Index of the current stage: nodes in it or an earlier one apply the target.'),
  state: z.enum(ROLLOUT_STATES),
  reason: reason.optional().describe('Why it was paused, halted or aborted.'),
  rolledBack: z.boolean().default(false).describe('Halted or aborted nodes returned to the previous version.'),
  maxFailures,
  bakeMs: duration,
  stageTimeoutMs: duration.refine((ms) => ms > 0, { error: 'expected a positive stage timeout' }),
  autoRollback: z.boolean().default(false),
  stageStartedAt: z.iso.datetime().describe('When the current stage started or was last resumed: its timeout counts from here.')
}).superRefine((r, ctx) => {
  if (r.name !== ROLLOUT_NAME_PREFIX + r.policy) ctx.addIssue({ code: 'custom', path: ['name'], message: `expected "${ROLLOUT_NAME_PREFIX}${r.policy}", the rollout of the policy it names` })
  if (r.policy.startsWith(ROLLOUT_NAME_PREFIX)) ctx.addIssue({ code: 'custom', path: ['policy'], message: 'a rollout record cannot roll out another rollout record' })
  // Every node takes a new trust policy at once (it decides who may sign the rest): it is not staged.
  if (r.policy === TRUST_POLICY_NAME) ctx.addIssue({ code: 'custom', path: ['policy'], message: `${TRUST_POLICY_NAME} is not rolled out in stages` })
  if (r.stage >= r.stages.length) ctx.addIssue({ code: 'custom', path: ['stage'], message: `expected a stage index below ${r.stages.length}` })
  if (r.stages[r.stages.length - 1]?.upTo !== MAX_RANK) ctx.addIssue({ code: 'custom', path: ['stages', r.stages.length - 1, 'upTo'], message: 'the last stage must include every node (100%)' })
  let floor = ''
  r.stages.forEach((s, i) => {
    if (s.upTo === undefined) return
    if (s.upTo < floor) ctx.addIssue({ code: 'custom', path: ['stages', i, 'upTo'], message: 'a stage cannot include fewer ranks than the one before' })
    else floor = s.upTo
  })
  if (r.target.version <= (r.previous?.version ?? 0)) ctx.addIssue({ code: 'custom', path: ['target', 'version'], message: 'expected a version above the previous one' })
  const needsReason = r.state === 'halted' || r.state === 'aborted'
  if (needsReason && r.reason === undefined) ctx.addIssue({ code: 'custom', path: ['reason'], message: `a ${r.state} rollout says why` })
  if (r.rolledBack && !needsReason) ctx.addIssue({ code: 'custom', path: ['rolledBack'], message: 'only a halted or aborted rollout is rolled back' })
  if (r.rolledBack && r.previous === undefined) ctx.addIssue({ code: 'custom', path: ['rolledBack'], message: 'there is no previous version to roll back to' })
  if (r.state === 'done' && r.stage !== r.stages.length - 1) ctx.addIssue({ code: 'custom', path: ['stage'], message: 'a done rollout stands at its last stage' })
})

export type RolloutRecord = z.output<typeof rolloutRecord>

export interface StartRollout {
  policy: string
  target: { version: number, id: string }
  previous?: { version: number, id: string }
  stages: ResolvedStage[]
  maxFailures: MaxFailures
  bakeMs: number
  stageTimeoutMs: number
  autoRollback: boolean
  /** Injected clock (ms). */
  at: number
}

/** The first record of a rollout: running, at stage 0. Validated, so a bad start fails here, not on every node. */
export function startRecord (init: StartRollout): RolloutRecord {
  return rolloutRecord.parse({
    kind: 'rollout',
    name: ROLLOUT_NAME_PREFIX + init.policy,
    policy: init.policy,
    target: init.target,
    ...(init.previous !== undefined ? { previous: init.previous } : {}),
    stages: init.stages,
    stage: 0,
    state: 'running',
    rolledBack: false,
    maxFailures: init.maxFailures,
    bakeMs: init.bakeMs,
    stageTimeoutMs: init.stageTimeoutMs,
    autoRollback: init.autoRollback,
    stageStartedAt: new Date(init.at).toISOString()
  })
}

export type RolloutAction =
  /** The current stage's gate passed: start the next stage, or finish after the last. */
  | { type: 'advance', at: number }
  | { type: 'pause', at: number, reason?: string }
  /** Paused, or running with no one evaluating it (its publisher died): this admin's process takes over. */
  | { type: 'resume', at: number }
  /** The gate failed; rolls back when the record says autoRollback and there is a previous version. */
  | { type: 'halt', at: number, reason: string }
  | { type: 'abort', at: number, reason: string, rollback: boolean }

const FROM: Record<RolloutAction['type'], readonly RolloutState[]> = {
  advance: ['running'],
  pause: ['running'],
  resume: ['running', 'paused'],
  halt: ['running'],
  abort: ['running', 'paused', 'halted']
}

/**
 * The record that follows `prev` after `action`; it is signed as the next version of
 * `rollout/<policy>`. Refuses what the state does not allow with RolloutTransitionError:
 * done and aborted are final, a halted rollout can only be aborted (a fix is a new version).
 */
export function nextRecord (prev: RolloutRecord, action: RolloutAction): RolloutRecord {
  // Validated like the first record, so a reason too long fails here, not on every node.
  return rolloutRecord.parse(transition(prev, action))
}

function transition (prev: RolloutRecord, action: RolloutAction): RolloutRecord {
  if (!FROM[action.type].includes(prev.state)) throw new RolloutTransitionError(prev.state, action.type)
  const at = new Date(action.at).toISOString()
  const { reason: _, ...base } = prev
  switch (action.type) {
    case 'advance':
      if (prev.stage === prev.stages.length - 1) return { ...base, state: 'done' }
      return { ...base, stage: prev.stage + 1, stageStartedAt: at }
    case 'pause':
      return { ...base, state: 'paused', ...(action.reason !== undefined ? { reason: action.reason } : {}) }
    case 'resume':
      return { ...base, state: 'running', stageStartedAt: at }
    case 'halt':
      return { ...base, state: 'halted', reason: action.reason, rolledBack: prev.autoRollback && prev.previous !== undefined }
    case 'abort':
      if (action.rollback && prev.previous === undefined) throw new RolloutTransitionError(prev.state, 'abort', 'there is no previous version to roll back to')
      return { ...base, state: 'aborted', reason: action.reason, rolledBack: action.rollback || prev.rolledBack }
  }
}

/**
 * The version a node enforces while this record is the newest it holds: the target once a
 * stage includes it (until a rollback), otherwise the previous version; undefined means the
 * node manages nothing for the policy (a first version it is not yet included in).
 */
export function enforcedVersion (record: RolloutRecord, peerId: string): { version: number, id: string } | undefined {
  if (record.state === 'done') return record.target
  if (record.rolledBack) return record.previous
  const included = inStage(record.stages, record.stage, peerId, record.policy, record.target.version)
  return included ? record.target : record.previous
}
