import { applyPolicy, checkFailures, type ApplyReport } from '../apply/index.js'
import type { ServiceRuntime } from '../apply/system.js'
import { isExistsOnlyDirectory, matchesTarget, managedKey, type ConfigPolicy, type NodeFacts, type Resource } from '../policy/index.js'
import { validateEnvelope, type VerifiedEnvelope } from '../envelope/index.js'
import { enforcement, ROLLOUT_NAME_PREFIX, type Enforcement, type RolloutRecord } from '../rollout/index.js'
import type { AppliedRecord, SealedRecord, StateStore } from '../store/index.js'
import type { AgentMetrics } from './metrics.js'
import type { Logger } from './logger.js'
import type { Journal } from './journal.js'
import type { PolicyBook, ConflictRecord } from './book.js'
import { receiptOutcome } from './rules.js'
import { foldApply, versionOutcome, MAX_RECEIPT_ERROR_CHARS, type ReceiptOutcome, type VersionApplies } from '../receipt/index.js'
import { NotARecipientError, openSealed, redactDeep, redactor, type EncryptionKey } from '../secrets/index.js'
import { SECRETS_RESOURCE } from './constants.js'

export type ConfigEnvelope = VerifiedEnvelope & { policy: ConfigPolicy }

/** Failing resources whose error text goes in an apply's log line; status and history keep them all. */
export const FAILURES_LOGGED = 3

/** A path one policy may not manage because another holds it. */
export interface PathClaim {
  path: string
  owner: string
}

/**
 * Two policies managing one path is a reported conflict, never a flip-flop: the policy whose
 * name sorts first keeps the path on every node (deterministic, no shared state needed). Pure:
 * returns, per resource id of `env`, the path it may not manage and the policy that keeps it.
 * A directory that is only made sure of (isExistsOnlyDirectory) is shared: it conflicts with
 * neither another such directory nor one managed fully, which then keeps the path.
 */
export function pathClaims (env: ConfigEnvelope, held: Iterable<ConfigEnvelope>): Map<string, PathClaim> {
  const mine = new Map<string, Resource>()
  for (const r of env.policy.resources) {
    const key = managedKey(r)
    if (key !== undefined) mine.set(key, r)
  }
  const claims = new Map<string, PathClaim>()
  for (const other of held) {
    if (other.name === env.name || other.name > env.name) continue
    for (const o of other.policy.resources) {
      const key = managedKey(o)
      const r = key === undefined ? undefined : mine.get(key)
      if (r === undefined || compatible(r, o)) continue
      // The first name, not the first held: books fill in arrival order, which differs per node.
      const claim = claims.get(r.id)
      if (claim === undefined || other.name < claim.owner) claims.set(r.id, { path: (key as string).slice('path:'.length), owner: other.name })
    }
  }
  return claims
}

/** Two resources at one path that can both be applied: a shared directory beside any directory that is there. */
function compatible (a: Resource, b: Resource): boolean {
  const present = (r: Resource): boolean => r.type === 'directory' && r.ensure === 'present'
  return (isExistsOnlyDirectory(a) && present(b)) || (isExistsOnlyDirectory(b) && present(a))
}

export interface ApplyQueueComponents {
  book: Pick<PolicyBook, 'get' | 'values' | 'pathConflict' | 'trust'>
  journal: Pick<Journal, 'replace' | 'history'>
  /** `saveSealed`: without it (tests), what was found sealed is not kept across restarts. */
  store: Pick<StateStore, 'saveApplied' | 'dir' | 'loadArchived'> & Partial<Pick<StateStore, 'saveSealed'>>
  metrics: Pick<AgentMetrics, 'applies' | 'applyDuration'>
  log: Logger
  now: () => number
  facts: NodeFacts
  root: string
  /** `sandbox`: services' running state is recorded under the root (AgentOptions.serviceRuntime). */
  serviceRuntime?: ServiceRuntime
  signal: AbortSignal
  /** While an envelope is not yet durably stored, its write (Intake.saving): nothing is applied from it before. */
  saving: (env: VerifiedEnvelope) => Promise<void> | undefined
  /** Reports go out from here: receipts, events. */
  events: ApplyQueueEvents
  /** This node's encryption key, asked at each apply of a policy with sealed secrets (`grapevine rekey` replaces it); none: nothing sealed opens here. */
  encryptionKey?: () => EncryptionKey | undefined
  /** Gathers `facts.facts` again (memory, addresses, facts.d) before each run of the queue; never throws. Without it, facts stay as given. */
  refreshFacts?: () => Promise<void>
}

export interface ApplyQueueEvents {
  /** `outcome` is what the version did on this node (its first successful apply), not only this run. */
  applied: (env: VerifiedEnvelope, report: ApplyReport, outcome: Extract<ReceiptOutcome, 'applied' | 'unchanged' | 'failed' | 'unhealthy'>) => void
  /** A trust policy taken: nothing to apply, it is in force once held. */
  held?: (env: VerifiedEnvelope) => void
  notTargeted: (env: VerifiedEnvelope) => void
  /** Targeted, but its secrets are not sealed to this node (or to its current key): nothing applied. `why` names no secret. */
  sealed?: (env: VerifiedEnvelope, why: string) => void
  retired: (env: VerifiedEnvelope) => void
  conflict: (record: ConflictRecord) => void
}

/**
 * One apply at a time. A name marked dirty is applied at the next turn with whatever version
 * the book holds then, so a newer version arriving meanwhile is applied next and intermediate
 * ones are skipped.
 */
export class ApplyQueue {
  /** The last apply per policy name, as saved in the state directory. */
  applied: Record<string, AppliedRecord> = {}
  private readonly dirty = new Set<string>()
  /** Names whose next turn is a drift repair (scheduleAll): applied even when nothing new arrived for them. */
  private readonly repairs = new Set<string>()
  /** Names woken only because their rollout record changed. */
  private readonly byRecord = new Set<string>()
  private running?: Promise<void>
  /** The version each name last wrote a history line for: a quiet drift check does not. */
  private readonly lastHistoryVersion = new Map<string, number>()
  /** Per name, the version whose secrets this node may not read, and why: its outcome is `sealed` until another apply of the name. Kept in sealed.json. */
  private readonly sealedVersions = new Map<string, SealedRecord>()

  constructor (private readonly c: ApplyQueueComponents) {}

  get busy (): boolean {
    return this.running !== undefined
  }

  targets (env: VerifiedEnvelope): env is ConfigEnvelope {
    return env.policy.kind === 'policy' && matchesTarget(env.policy, this.c.facts)
  }

  /**
   * What a presence beacon says of one held envelope, in the receipts' words (applied,
   * unchanged, failed, …); `held-back` while a rollout keeps this node on another version.
   */
  outcomeOf (env: VerifiedEnvelope): string {
    if (this.sealedWhy(env) !== undefined) return 'sealed'
    const record = this.applied[env.name]
    if (record?.version === env.version && record.hash === env.hash) return record.applies !== undefined ? versionOutcome(record.applies) : receiptOutcome(record.changed, record.failed)
    if (env.policy.kind !== 'policy') return env.policy.kind
    if (!this.targets(env)) return 'not-targeted'
    return this.enforcementOf(env).kind === 'head' ? 'pending' : 'held-back'
  }

  /** Why this node may not read this version's secrets (so did not apply it), or undefined. Only while it targets this node (tags change). */
  sealedWhy (env: VerifiedEnvelope): string | undefined {
    const s = this.sealedVersions.get(env.name)
    return s?.version === env.version && s.hash === env.hash && this.targets(env) ? s.why : undefined
  }

  /** What an earlier run found sealed (sealed.json): shown at once, and history does not say it again. */
  restoreSealed (records: Record<string, SealedRecord>): void {
    for (const [name, r] of Object.entries(records)) {
      if (typeof r?.version === 'number' && typeof r.hash === 'string' && typeof r.why === 'string') this.sealedVersions.set(name, { version: r.version, hash: r.hash, why: r.why })
    }
  }

  /** Why this node enforces another version than the one it holds (a staged rollout), or undefined. */
  heldBack (env: VerifiedEnvelope): string | undefined {
    if (env.policy.kind !== 'policy' || !this.targets(env)) return undefined
    const e = this.enforcementOf(env)
    return e.kind === 'head' ? undefined : e.why
  }

  /** What a rollout record for this policy, if any, lets this node enforce (docs/rollout.md). */
  private enforcementOf (env: VerifiedEnvelope): Enforcement {
    const held = this.c.book.get(ROLLOUT_NAME_PREFIX + env.name)
    const record = held?.policy.kind === 'rollout' ? held.policy as RolloutRecord : undefined
    const last = this.applied[env.name]
    return enforcement({ version: env.version, id: env.id, hash: env.hash, staged: env.staged }, record, this.c.facts.id, last !== undefined ? { version: last.version, hash: last.hash } : undefined)
  }

  /**
   * The envelope this node enforces for a held policy: the head, or an older version from the
   * archive while a rollout holds it back (a stage that has not come, a rollback). Undefined:
   * nothing to enforce yet, or the older version is not in the archive (logged).
   */
  private async enforced (env: ConfigEnvelope): Promise<ConfigEnvelope | undefined> {
    const e = this.enforcementOf(env)
    if (e.kind === 'head') return env
    if (e.kind === 'none') {
      this.c.log.debug({ name: env.name, version: env.version, why: e.why }, 'held back by its rollout: nothing to enforce yet')
      return undefined
    }
    const last = this.applied[env.name]
    const bytes = await this.c.store.loadArchived(env.name, e.version)
    let older: VerifiedEnvelope | undefined
    try {
      older = bytes === undefined ? undefined : validateEnvelope(bytes, this.c.book.trust)
    } catch (err) {
      this.c.log.warn({ name: env.name, version: e.version, err: (err as Error).message }, 'held back by its rollout, but the archived version it enforces is refused now')
      return undefined
    }
    const exact = older !== undefined && older.name === env.name && older.version === e.version && (e.id === undefined || older.id === e.id) && (e.hash === undefined || older.hash === e.hash)
    if (!exact || !this.targets(older as VerifiedEnvelope)) {
      // A node that joined after the previous version was replaced never held it: it manages nothing for the policy until its stage comes.
      if (last?.version !== e.version) this.c.log.warn({ name: env.name, version: env.version, enforce: e.version, why: e.why }, 'held back by its rollout, and the version it should enforce is not in the archive: managing nothing for this policy until its stage comes')
      return undefined
    }
    if (last === undefined || last.version !== e.version || last.hash !== (older as VerifiedEnvelope).hash) this.c.log.info({ name: env.name, held: env.version, enforce: e.version, why: e.why }, 'held back by its rollout: enforcing an older version')
    return older as ConfigEnvelope
  }

  scheduleAll (): void {
    for (const env of this.c.book.values()) {
      if (env.policy.kind === 'trust' || env.policy.kind === 'rollout') continue
      this.repairs.add(env.name)
      this.schedule(env.name)
    }
  }

  /** Applies again every held policy with sealed secrets (its key changed): each opens them anew, or says `sealed`. */
  scheduleSealed (): void {
    for (const env of this.c.book.values()) {
      if (env.policy.kind !== 'policy' || env.policy.sealed === undefined) continue
      this.repairs.add(env.name)
      this.schedule(env.name)
    }
  }

  /**
   * Re-applies (and so re-checks) the policies this node bakes: a running rollout whose current
   * stage includes it, with a bake, within the stage's time (timeout plus bake). A check that
   * fails meanwhile makes its receipt `unhealthy` at once, and the gate halts.
   */
  scheduleBaking (): void {
    const now = this.c.now()
    for (const env of this.c.book.values()) {
      if (env.policy.kind !== 'rollout') continue
      const r = env.policy as RolloutRecord
      const head = this.c.book.get(r.policy)
      if (r.state !== 'running' || r.bakeMs === 0 || head === undefined || head.id !== r.target.id) continue
      if (now > Date.parse(r.stageStartedAt) + r.stageTimeoutMs + r.bakeMs) continue
      if (this.targets(head) && this.enforcementOf(head).kind === 'head') {
        this.repairs.add(r.policy)
        this.schedule(r.policy)
      }
    }
  }

  schedule (name: string): void {
    this.dirty.add(name)
    if (this.running !== undefined) return
    this.running = (async () => {
      // Once per run, not per policy: targets and templates see facts as they are now.
      if (this.c.refreshFacts !== undefined) await this.c.refreshFacts()
      while (this.dirty.size > 0 && !this.c.signal.aborted) {
        const next = this.dirty.values().next().value as string
        this.dirty.delete(next)
        const env = this.c.book.get(next)
        if (env !== undefined) await this.applyOne(env)
      }
    })().finally(() => {
      this.running = undefined
      // Other microtasks run between the loop's last look at `dirty` and this callback. An
      // envelope taken in between found `running` still set, so it is dirty with no loop to
      // apply it: held, never applied until the next re-apply. Start one for it.
      const missed = this.dirty.values().next().value
      if (missed !== undefined && !this.c.signal.aborted) this.schedule(missed)
    })
  }

  async idle (): Promise<void> {
    while (this.running !== undefined) await this.running
  }

  private async applyOne (env: VerifiedEnvelope): Promise<void> {
    const saving = this.c.saving(env)
    if (saving !== undefined) {
      // Applied from memory, a version the disk never took would be rolled back by the next
      // start, which loads what is stored. Its turn comes again once it is written.
      this.c.log.debug({ name: env.name, version: env.version }, 'apply waits for its envelope to be stored')
      saving.then(() => { if (!this.c.signal.aborted) this.schedule(env.name) }, () => {})
      return
    }
    if (env.policy.kind === 'retired') {
      this.forgetSealed(env.name)
      // Stop managing it: no more applies or drift repair. Its resources stay as they are.
      if (this.applied[env.name] !== undefined) {
        delete this.applied[env.name]
        this.saveApplied()
      }
      this.c.events.retired(env)
      return
    }
    if (env.policy.kind === 'trust') {
      this.c.events.held?.(env)
      return
    }
    // A rollout record manages no resource: it says which version of its policy a node enforces
    // (docs/rollout.md). No receipt (nothing ran); its policy is looked at again.
    if (env.policy.kind === 'rollout') {
      const policy = (env.policy as RolloutRecord).policy
      // Marked dirty, not schedule()d: this runs inside the loop, which takes it next (and in
      // the loop's first turn `running` is not even set yet, so schedule() would start a second loop).
      if (this.c.book.get(policy) !== undefined) {
        this.byRecord.add(policy)
        this.dirty.add(policy)
      }
      return
    }
    if (env.policy.kind !== 'policy') return
    if (!this.targets(env)) {
      this.forgetSealed(env.name)
      this.c.events.notTargeted(env)
      return
    }
    const repair = this.repairs.delete(env.name)
    const chosen = await this.enforced(env)
    if (chosen === undefined) return
    // Held back on what it already applied, or woken only by its rollout record, with nothing
    // failed: the staged envelope or the record changes nothing here, so no apply (a fleet-wide
    // burst of no-op applies and state writes would slow the very stage being gated). Drift
    // repair and bake checks (repairs) still re-apply it.
    const byRecord = this.byRecord.delete(env.name)
    const last = this.applied[env.name]
    if ((chosen !== env || byRecord) && !repair && last?.version === chosen.version && last.hash === chosen.hash && last.failed === 0) return
    await this.applyEnforced(chosen)
  }

  private async applyEnforced (env: ConfigEnvelope): Promise<void> {
    const report = await this.openAndRun(env)
    if (report === undefined) return
    // Failing health checks are listed with the failing resources (as `check:<id>`), so status, history and receipts show them.
    const failures = [
      ...report.resources.filter((r) => r.status === 'failed').map((f) => ({ resource: f.id, error: f.error?.message ?? 'failed' })),
      ...checkFailures(report.checks, MAX_RECEIPT_ERROR_CHARS)
    ]
    const before = this.applied[env.name]
    const sameVersion = before?.version === env.version && before.hash === env.hash
    // Earlier applies of this version, for a record written before `applies` existed: its last run's counts.
    const held: VersionApplies | undefined = !sameVersion ? undefined : before.applies ?? foldApply(undefined, before.changed, before.failed)
    const applies = foldApply(held, report.counts.changed, report.counts.failed, report.health === 'unhealthy')
    const record: AppliedRecord = {
      name: env.name,
      version: env.version,
      hash: env.hash,
      // `status` shows it: the resources applied, but a health check failed.
      outcome: report.health === 'unhealthy' && report.counts.failed === 0 ? 'unhealthy' : report.outcome,
      at: new Date(this.c.now()).toISOString(),
      changed: report.counts.changed,
      failed: report.counts.failed,
      durationMs: report.durationMs,
      applies,
      ...(failures.length > 0 ? { errors: failures } : {})
    }
    this.applied[env.name] = record
    this.forgetSealed(env.name)
    this.c.metrics.applies.inc({ outcome: report.outcome })
    this.c.metrics.applyDuration.observe(report.durationMs / 1000)
    const level = report.counts.failed > 0 || report.health === 'unhealthy' ? 'warn' : 'info'
    // The failing resources' own words, so the log line alone says what to fix; the first few, and how many more.
    const errors = record.errors?.slice(0, FAILURES_LOGGED).map((e) => `${e.resource}: ${e.error}`)
    const moreErrors = (record.errors?.length ?? 0) - FAILURES_LOGGED
    this.c.log[level]({ name: env.name, version: env.version, outcome: report.outcome, ...(report.health !== undefined ? { health: report.health } : {}), changed: record.changed, failed: record.failed, durationMs: report.durationMs, ...(errors !== undefined ? { errors } : {}), ...(moreErrors > 0 ? { moreErrors } : {}) }, 'policy applied')
    // Only runs that changed something or failed make history; a quiet drift check does not.
    // A change of health is news too: a node that became healthy again says so in its history.
    const eventful = report.counts.changed > 0 || report.counts.failed > 0 || this.lastHistoryVersion.get(env.name) !== env.version || (held?.unhealthy === true) !== (applies.unhealthy === true)
    this.lastHistoryVersion.set(env.name, env.version)
    this.saveApplied()
    if (eventful) this.c.journal.history({ event: 'applied', name: env.name, version: env.version, hash: env.hash, outcome: report.health === 'unhealthy' && report.counts.failed === 0 ? 'unhealthy' : report.outcome, changed: record.changed, failed: record.failed, ...(record.errors !== undefined ? { detail: record.errors } : {}) })
    this.c.events.applied(env, report, versionOutcome(applies))
  }

  /**
   * Opens the policy's sealed secrets, if any, with this node's key, and applies it with them.
   * The values live only for this apply: they are not kept here, and every string of the report
   * is redacted of them (a command's output, an error), so neither a receipt nor a log line nor
   * the history carries one. Undefined when the secrets are not this node's to read (`sealed`):
   * nothing applied. Secrets sealed to it that do not open are a failed apply, `(secrets)`.
   */
  private async openAndRun (env: ConfigEnvelope): Promise<ApplyReport | undefined> {
    const sealed = env.policy.sealed
    if (sealed === undefined) return await this.run(env)
    let secrets: Record<string, string>
    try {
      const key = this.c.encryptionKey?.()
      if (key === undefined) throw new NotARecipientError('not a recipient: this node has no encryption key')
      secrets = await openSealed(sealed, this.c.facts.id, key)
    } catch (err) {
      if ((err as Error).name === NotARecipientError.name) {
        this.noteSealed(env, (err as Error).message)
        return undefined
      }
      this.c.log.warn({ name: env.name, version: env.version, err: (err as Error).message, errName: (err as Error).name }, 'sealed secrets do not open')
      return failedReport(env.name, err as Error, this.c.now(), SECRETS_RESOURCE)
    }
    const redact = redactor(secrets)
    const report = await this.run(env, secrets)
    return redact === undefined ? report : redactDeep(report, redact)
  }

  /** A version not applied for its secrets: history says so once per version, the receipt and beacons say `sealed`. */
  private noteSealed (env: ConfigEnvelope, why: string): void {
    const before = this.sealedVersions.get(env.name)
    this.sealedVersions.set(env.name, { version: env.version, hash: env.hash, why })
    if (before?.version !== env.version || before.hash !== env.hash || before.why !== why) {
      this.c.log.warn({ name: env.name, version: env.version, why }, 'not applied: its secrets are not sealed to this node')
      this.c.journal.history({ event: 'sealed', name: env.name, version: env.version, hash: env.hash, outcome: 'sealed', error: why })
      this.saveSealed()
    }
    this.c.events.sealed?.(env, why)
  }

  /** Applies one targeted policy; an apply that threw (a bug, an unusable root) still yields a report, so it is seen. */
  private async run (env: ConfigEnvelope, secrets?: Record<string, string>): Promise<ApplyReport> {
    const targeted = [...this.c.book.values()].filter((e): e is ConfigEnvelope => this.targets(e))
    const skip = new Map<string, string>()
    for (const [id, claim] of pathClaims(env, targeted)) {
      skip.set(id, `${claim.path} is also managed by policy "${claim.owner}", which keeps it (the name that sorts first wins)`)
      const record = this.c.book.pathConflict(env.name, claim.path, claim.owner)
      if (record !== undefined) this.c.events.conflict(record)
    }
    try {
      return await applyPolicy(env.policy, { root: this.c.root, stateDir: this.c.store.dir, facts: this.c.facts, signal: this.c.signal, now: this.c.now, skip, ...(this.c.serviceRuntime !== undefined ? { serviceRuntime: this.c.serviceRuntime } : {}), ...(secrets !== undefined ? { secrets } : {}) })
    } catch (err) {
      const redact = redactor(secrets)
      const message = redact === undefined ? (err as Error).message : redact((err as Error).message)
      this.c.log.error({ name: env.name, version: env.version, err: message }, 'apply crashed')
      return failedReport(env.name, err as Error, this.c.now())
    }
  }

  private forgetSealed (name: string): void {
    if (this.sealedVersions.delete(name)) this.saveSealed()
  }

  private saveSealed (): void {
    const save = this.c.store.saveSealed
    if (save === undefined) return
    const records = Object.fromEntries(this.sealedVersions)
    this.c.journal.replace('sealed', async () => { await save.call(this.c.store, records) })
  }

  private saveApplied (): void {
    this.c.journal.replace('applied', async () => { await this.c.store.saveApplied({ ...this.applied }) })
  }
}

/** A run that failed as a whole (a crash, secrets that do not open): one failed pseudo-resource, so it is seen. */
function failedReport (policy: string, err: Error, now: number, resource = '(policy)'): ApplyReport {
  return {
    policy,
    dryRun: false,
    startedAt: new Date(now).toISOString(),
    durationMs: 0,
    outcome: 'failures',
    counts: { total: 1, changed: 0, unchanged: 0, failed: 1, skipped: 0, unknown: 0 },
    resources: [{ id: resource, type: 'exec', action: 'none', status: 'failed', error: { name: err.name, message: err.message }, durationMs: 0 }]
  }
}
