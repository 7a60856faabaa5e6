import type { ResourceType } from '../policy/index.js'
import type { CheckResult, Health } from './checks.js'

/** What a resource needs (plan) or needed (apply). `run` is an exec that runs. */
export type Action = 'create' | 'modify' | 'delete' | 'run' | 'none'

/**
 * - `ok`: the action was done (apply), would be done (plan), or there was nothing to do.
 * - `failed`: see `error`.
 * - `skipped`: not attempted because a dependency failed or the apply was aborted; see `reason`.
 * - `unknown`: plan only; whether an exec runs depends on a guard command plan did not run.
 */
export type Status = 'ok' | 'failed' | 'skipped' | 'unknown'

/** One attribute that differs: `content`, `mode`, `owner`, `group`, `target`, `type` or `ensure`. */
export interface Change {
  field: string
  from?: string
  to?: string
}

export interface ExecOutput {
  exitCode: number | null
  signal: string | null
  /** Tails of the output streams, each at most MAX_EXEC_OUTPUT_BYTES. */
  stdout: string
  stderr: string
}

export interface ResourceResult {
  id: string
  type: ResourceType
  /** The managed path as the policy writes it (without `--root`); absent for exec. */
  path?: string
  /** The package, service, user or group a system resource manages. */
  name?: string
  action: Action
  status: Status
  changes?: Change[]
  /** Unified diff of file or config text, for modifications; bounded. */
  diff?: string
  /** Why an exec did or did not run, or why a resource was skipped. */
  reason?: string
  /** Differences that were not enforced, such as ownership when not running as root. */
  warnings?: string[]
  error?: { name: string, message: string }
  exec?: ExecOutput
  durationMs: number
}

export interface Counts {
  total: number
  /** Status ok and an action other than none: done, or to be done in a plan. */
  changed: number
  unchanged: number
  failed: number
  skipped: number
  unknown: number
}

/** Puppet's detailed exit codes, as words: 0, 2, 4 and 6. */
export type Outcome = 'no-changes' | 'changes' | 'failures' | 'changes-and-failures'

/**
 * What an apply or plan did, per resource in the order they were applied. Plain JSON data
 * naming resources by id and policy path (not the host path under `--root`), so it can
 * become the node's signed receipt once diffs and command output are dropped.
 */
export interface ApplyReport {
  policy: string
  dryRun: boolean
  /** ISO time the run started, from the injected clock. */
  startedAt: string
  durationMs: number
  outcome: Outcome
  counts: Counts
  /** True when an AbortSignal stopped the run; remaining resources are skipped. */
  aborted?: boolean
  resources: ResourceResult[]
  /** The policy's health checks, run after the resources (in a plan: against the current state); absent when it declares none. */
  checks?: CheckResult[]
  /** Whether every check passed; absent when the policy declares none or the run was aborted. */
  health?: Health
}

export function countResults (results: readonly ResourceResult[]): Counts {
  const counts: Counts = { total: results.length, changed: 0, unchanged: 0, failed: 0, skipped: 0, unknown: 0 }
  for (const r of results) {
    if (r.status === 'failed') counts.failed++
    else if (r.status === 'skipped') counts.skipped++
    else if (r.status === 'unknown') counts.unknown++
    else if (r.action === 'none') counts.unchanged++
    else counts.changed++
  }
  return counts
}

/**
 * A plan's unknown execs count as changes: plan cannot promise nothing would happen.
 * An aborted run counts as failed: the node has not converged.
 */
export function outcomeOf (counts: Counts, aborted = false): Outcome {
  const changed = counts.changed + counts.unknown > 0
  const failed = counts.failed > 0 || aborted
  if (changed && failed) return 'changes-and-failures'
  if (failed) return 'failures'
  return changed ? 'changes' : 'no-changes'
}

const EXIT_CODES: Record<Outcome, number> = {
  'no-changes': 0,
  changes: 2,
  failures: 4,
  'changes-and-failures': 6
}

/** A health check failed while every resource succeeded: 8, past Puppet's codes so none of them changes meaning. */
export const UNHEALTHY_EXIT_CODE = 8

/**
 * `plan` and `apply` exit with Puppet's detailed codes: 0, 2 (changes), 4 (failures), 6 (both),
 * and 8 when the resources succeeded but a health check failed. Resource failures keep 4 or 6.
 */
export function exitCodeFor (report: Pick<ApplyReport, 'outcome' | 'health'>): number {
  const code = EXIT_CODES[report.outcome]
  return report.health === 'unhealthy' && code < 4 ? UNHEALTHY_EXIT_CODE : code
}
