import { join, posix } from 'node:path'
// The template and graph modules, not the policy index: applying needs no schema (and no zod).
import { renderData, renderString, type NodeFacts } from '../policy/template.js'
import { isPathResource, isSystemResource } from '../policy/kinds.js'
import type { ConfigPolicy, ExecResource, Resource } from '../policy/schema.js'
import { IO_CONCURRENCY, POLICY_CACHE_DIR } from './constants.js'
import { DependencyCycleError, PathConflictError, ResourceFailedError } from './errors.js'
import { countResults, outcomeOf, type ApplyReport, type ResourceResult } from './report.js'
import { schedule } from './schedule.js'
import { RootGuard } from './paths.js'
import { DirSync, removeStaleTemps } from './atomic.js'
import { WriteBatch, type WriteBatchInit } from './durable.js'
import { BackupStore } from './backup.js'
import { UserDb } from './owners.js'
import { acquireApplyLock } from './lock.js'
import { applyExec, type Notified } from './exec.js'
import { Semaphore } from './semaphore.js'
import { pathOutcome, type Outcome, type PathContext } from './path-resource.js'
import { healthOf, runChecks, type CheckResult } from './checks.js'
import { systemOutcome, type ServiceRuntime } from './system.js'
import { redactResult, reportRedactor, type ReportRedactor } from './redact.js'

export interface ApplyOptions {
  /** Prefix for every managed path; `/` on a real node, a sandbox directory in tests. */
  root: string
  /** Where backups and the apply lock live. Untouched by a dry run. */
  stateDir: string
  /** This node, for templates. */
  facts: NodeFacts
  /** Plan only: read everything, change nothing, run no command. */
  dryRun?: boolean
  /** In a dry run, run exec guards (unless/onlyif), which are meant to be read-only. */
  runGuards?: boolean
  /** Stops the run: running commands are killed and the rest is reported as skipped. */
  signal?: AbortSignal
  /** Clock for timestamps and durations (ms since the epoch). */
  now?: () => number
  /** Put unified diffs of content changes in the report (default true). */
  diffs?: boolean
  /** chown to the policy's owner and group; defaults to whether this process is root. */
  enforceOwnership?: boolean
  /** Resources whose file-system work may overlap (default IO_CONCURRENCY); a write waiting for its batch does not count. */
  concurrency?: number
  /** Called as each resource finishes, for live progress. */
  onResult?: (result: ResourceResult) => void
  /**
   * Resources not to touch, id → reason, such as paths another policy keeps. Each is
   * reported as failed with a PathConflictError carrying the reason; its dependents are skipped.
   */
  skip?: ReadonlyMap<string, string>
  /** How file writes become durable together (tests set a smaller batch or their own syncfs). */
  writeBatch?: WriteBatchInit
  /** Run the policy's health checks after the resources (default true; a plan runs them against the current state). */
  checks?: boolean
  /** Called as each health check finishes. */
  onCheck?: (result: CheckResult) => void
  /**
   * Secret values for `{{ secrets.NAME }}`, opened for this apply only. Files rendered from one
   * default to mode 0600 and are never diffed or backed up, and every string in the report
   * (and what onResult and onCheck see) has each value replaced by `(secret)`.
   */
  secrets?: Readonly<Record<string, string>>
  /**
   * How services' running state is managed: `systemd` (default) or `sandbox`, an opt-in for
   * rehearsals under a sandbox root (`--sandbox-services`): the state is recorded in
   * ROOT/run/grapevine/services/ and reported as "(sandbox)"; enablement stays systemctl --root.
   */
  serviceRuntime?: ServiceRuntime
}

/** Everything one run shares; path resources see only their part of it. */
interface Shared extends PathContext {
  policy: ConfigPolicy
  runGuards: boolean
  signal?: AbortSignal
  skip?: ReadonlyMap<string, string>
  redact?: ReportRedactor
  facts: NodeFacts
  /** Per-apply state of the providers (src/apply/system.ts). */
  run: Map<string, unknown>
  serviceRuntime?: ServiceRuntime
}

/**
 * Applies a policy to this machine (or, with `dryRun`, plans it) and reports what happened
 * per resource. Resource failures are in the report; the promise rejects only when the run
 * cannot start at all: RootNotFoundError, ApplyLockedError, DependencyCycleError.
 */
export async function applyPolicy (policy: ConfigPolicy, opts: ApplyOptions): Promise<ApplyReport> {
  const now = opts.now ?? Date.now
  const started = now()
  const plan = schedule(policy.resources)
  if ('cycle' in plan) throw new DependencyCycleError(plan.cycle)
  const dryRun = opts.dryRun === true
  const guard = await RootGuard.open(opts.root)
  const release = dryRun ? undefined : await acquireApplyLock(opts.stateDir)
  const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
  const redact = reportRedactor(opts.secrets)
  const shared: Shared = {
    policy,
    guard,
    template: { node: opts.facts, vars: policy.vars ?? {}, facts: opts.facts.facts ?? {}, ...(opts.secrets !== undefined ? { secrets: opts.secrets } : {}) },
    users: new UserDb(guard.root),
    dirs: new DirSync(),
    batch: dryRun ? undefined : new WriteBatch(opts.writeBatch),
    backups: new BackupStore(opts.stateDir),
    dryRun,
    runGuards: opts.runGuards === true,
    diffs: opts.diffs !== false,
    enforceOwnership: opts.enforceOwnership ?? self.uid === 0,
    signal: opts.signal,
    self,
    index: new Map(policy.resources.map((r, i) => [r.id, i])),
    plannedDirs: new Set(policy.resources.flatMap((r) => (r.type === 'directory' || r.type === 'symlink') && r.ensure === 'present' ? [posix.normalize(r.path)] : [])),
    plannedRemovals: new Set(policy.resources.flatMap((r) => isPathResource(r) && r.ensure === 'absent' ? [posix.normalize(r.path)] : [])),
    plannedAccounts: {
      users: new Set(policy.resources.flatMap((r) => r.type === 'user' && r.ensure === 'present' ? [r.name] : [])),
      groups: new Set(policy.resources.flatMap((r) => r.type === 'group' && r.ensure === 'present' ? [r.name] : []))
    },
    facts: opts.facts,
    run: new Map(),
    ...(opts.serviceRuntime !== undefined ? { serviceRuntime: opts.serviceRuntime } : {}),
    temps: new Map(),
    now,
    skip: opts.skip,
    redact
  }

  const done = new Map<string, ResourceResult>()
  const rootCause = new Map<string, string>()
  const slots = new Semaphore(Math.max(1, opts.concurrency ?? IO_CONCURRENCY))
  const pending: Array<Promise<ResourceResult>> = []
  const promises = new Map<string, Promise<ResourceResult>>()
  // Commands see the effects of everything written before them and nothing after: an exec
  // (and a package, service, user or group, which run commands too) waits for all earlier
  // resources, and later ones wait for it. Packages next to each other in the order start
  // together, so their provider installs them in one transaction.
  let barrier: Promise<unknown> = Promise.resolve()
  let sinceBarrier: Array<Promise<unknown>> = []
  let packages: { before: Promise<unknown>, members: Array<Promise<unknown>> } | undefined

  try {
    // What a killed run left in the state directory: half-made backup copies and cache entries.
    if (!dryRun) await Promise.all([shared.backups.removeStaleTemps(), removeStaleTemps(join(opts.stateDir, POLICY_CACHE_DIR))])
    for (const r of plan.order) {
      const deps = plan.dependsOn.get(r.id) ?? []
      const command = !isPathResource(r)
      // The first of adjacent packages fixes what all of them wait for: everything before it.
      if (r.type === 'package') packages ??= { before: Promise.all([barrier, ...sinceBarrier]), members: [] }
      const waits = [r.type === 'package' ? (packages as { before: Promise<unknown> }).before : barrier, ...deps.map((d) => promises.get(d))]
      if (command && r.type !== 'package') waits.push(...sinceBarrier)
      const run = async (): Promise<ResourceResult> => {
        await Promise.all(waits)
        const result = redactResult(await runOne(r, deps, plan.notifiers.get(r.id) ?? [], done, rootCause, slots, shared, now), redact)
        done.set(r.id, result)
        try {
          opts.onResult?.(result)
        } catch {
          // A progress callback's bug must not cost the report.
        }
        return result
      }
      const p = run()
      promises.set(r.id, p)
      pending.push(p)
      if (r.type === 'package' && packages !== undefined) {
        packages.members.push(p)
        barrier = Promise.all(packages.members)
        sinceBarrier = []
      } else if (command) {
        packages = undefined
        barrier = p
        sinceBarrier = []
      } else {
        packages = undefined
        sinceBarrier.push(p)
      }
    }
    const resources = await Promise.all(pending)
    if (!dryRun) await shared.dirs.flush()
    // Bounds the backups (BACKUPS_PER_PATH per path). A failure here costs nothing this run
    // did: its own backups are written, and the next run compacts again.
    if (!dryRun) await shared.backups.compact().catch(() => {})
    const counts = countResults(resources)
    const aborted = opts.signal?.aborted === true
    const report: ApplyReport = {
      policy: policy.name,
      dryRun,
      startedAt: new Date(started).toISOString(),
      durationMs: now() - started,
      outcome: outcomeOf(counts, aborted),
      counts,
      resources
    }
    if (aborted) report.aborted = true
    // After the resources, so a check sees what this run made; an aborted run checks nothing.
    if (opts.checks !== false && !aborted && (policy.checks?.length ?? 0) > 0) {
      const checks = policy.checks ?? []
      report.checks = await runChecks(checks, {
        root: opts.root,
        policy: policy.name,
        signal: opts.signal,
        now,
        onResult: opts.onCheck,
        redact,
        // An exec check's env is templated as an exec's is, so a check reads facts as variables, never as command text.
        renderEnv: (c) => Object.fromEntries(Object.entries(renderData(c.env ?? {}, shared.template, `checks[${checks.indexOf(c)}].env`) as Record<string, unknown>).map(([k, v]) => [k, String(v)]))
      })
      // Checks cut short by a stop say nothing of the service: no health, rather than a false "unhealthy".
      if (opts.signal?.aborted === true) {
        report.aborted = true
        report.outcome = outcomeOf(counts, true)
      } else report.health = healthOf(report.checks)
      report.durationMs = now() - started
    }
    return report
  } finally {
    await release?.()
  }
}

async function runOne (r: Resource, deps: string[], notifiers: string[], done: Map<string, ResourceResult>, rootCause: Map<string, string>, slots: Semaphore, shared: Shared, now: () => number): Promise<ResourceResult> {
  const base = { id: r.id, type: r.type, ...(isPathResource(r) ? { path: r.path } : isSystemResource(r) ? { name: r.name } : {}) }
  if (shared.signal?.aborted === true) return { ...base, action: 'none', status: 'skipped', reason: 'the apply was aborted', durationMs: 0 }
  for (const d of deps) {
    const dep = done.get(d)
    if (dep?.status === 'failed') {
      rootCause.set(r.id, d)
      return { ...base, action: 'none', status: 'skipped', reason: `dependency "${d}" failed`, durationMs: 0 }
    }
    if (dep?.status === 'skipped') {
      const cause = rootCause.get(d)
      if (cause !== undefined) rootCause.set(r.id, cause)
      return { ...base, action: 'none', status: 'skipped', reason: cause !== undefined ? `dependency "${d}" was skipped because "${cause}" failed` : `dependency "${d}" was skipped`, durationMs: 0 }
    }
  }

  const conflict = shared.skip?.get(r.id)
  if (conflict !== undefined) {
    const err = new PathConflictError(r.id, conflict)
    return { ...base, action: 'none', status: 'failed', error: { name: err.name, message: err.message }, durationMs: 0 }
  }

  const release = isPathResource(r) ? await slots.acquire() : undefined
  const t0 = now()
  let outcome: Outcome
  try {
    outcome = r.type === 'exec'
      ? await execOutcome(r, notifiers, done, shared)
      : isPathResource(r)
        // A write waiting for its batch to be durable holds no file: its slot goes to the next
        // resource, so that the batch can grow past the number of slots.
        ? await pathOutcome(r, shared, release)
        : await systemOutcome(r, {
          root: shared.guard.root,
          dryRun: shared.dryRun,
          ...(shared.signal !== undefined ? { signal: shared.signal } : {}),
          facts: shared.facts,
          notified: notifiedBy(notifiers, done),
          run: shared.run,
          render: (text, where) => renderString(text, shared.template, where),
          where: `resources[${shared.index.get(r.id) ?? 0}]`,
          now,
          ...(shared.serviceRuntime !== undefined ? { serviceRuntime: shared.serviceRuntime } : {})
        })
  } catch (err) {
    outcome = { action: 'none', status: 'failed', error: describeError(r, err) }
  } finally {
    release?.()
  }
  return { ...base, ...outcome, durationMs: now() - t0 }
}

/** A resource's failure as the report names it: a named error as it is, anything else wrapped with the path and the error code. */
export function describeError (r: Pick<Resource, 'id' | 'type'> & { path?: string }, err: unknown): { name: string, message: string } {
  const e = err as NodeJS.ErrnoException
  if (e instanceof Error && e.name !== 'Error' && e.name !== 'TypeError' && e.name !== 'RangeError' && e.code === undefined) return { name: e.name, message: e.message }
  const where = r.path ?? r.id
  const message = e?.message ?? String(err)
  // Node's system errors already begin with their code ("ENOSPC: no space left…"): say it once.
  const code = e?.code !== undefined && !message.startsWith(`${e.code}:`) ? `${e.code}: ` : ''
  const wrapped = new ResourceFailedError(r.id, `${where}: ${code}${message}`, { cause: err })
  return { name: wrapped.name, message: wrapped.message }
}

/** Whether the resources that notify one changed (yes), might have in a plan (maybe), or did not. */
function notifiedBy (notifiers: string[], done: Map<string, ResourceResult>): Notified {
  const changed = notifiers.filter((n) => { const d = done.get(n); return d !== undefined && d.action !== 'none' && d.status === 'ok' })
  const maybe = notifiers.filter((n) => done.get(n)?.status === 'unknown')
  return changed.length > 0 ? { state: 'yes', by: changed } : maybe.length > 0 ? { state: 'maybe', by: maybe } : { state: 'no', by: [] }
}

async function execOutcome (r: ExecResource, notifiers: string[], done: Map<string, ResourceResult>, shared: Shared): Promise<Outcome> {
  const notified = notifiedBy(notifiers, done)
  // Facts reach commands through templated env values, never through the command text, so a
  // tag value can never inject shell syntax: write `env: {ROLE: "{{ node.tags.role }}"}` and use "$ROLE".
  const env = r.env === undefined ? undefined : renderData(r.env, shared.template, `resources[${shared.index.get(r.id) ?? 0}].env`) as Record<string, string>
  const out = await applyExec(env === undefined ? r : { ...r, env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) }, {
    guard: shared.guard,
    policy: shared.policy.name,
    dryRun: shared.dryRun,
    runGuards: shared.runGuards,
    signal: shared.signal,
    notified,
    notifiers,
    plannedDirs: shared.plannedDirs,
    redact: shared.redact
  })
  const result: Outcome = { action: out.action, status: out.status }
  if (out.reason !== undefined) result.reason = out.reason
  if (out.warnings !== undefined) result.warnings = out.warnings
  if (out.error !== undefined) result.error = { name: out.error.name, message: out.error.message }
  if (out.exec !== undefined) result.exec = out.exec
  return result
}
