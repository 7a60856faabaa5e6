import { selectEnvelope, openEnvelope, assertAnnounced, EnvelopeError, type Announcement, type VerifiedEnvelope } from '../envelope/index.js'
import type { IngestOutcome } from '../sync/index.js'
import type { AgentMetrics } from './metrics.js'
import type { Logger } from './logger.js'
import type { Journal } from './journal.js'
import type { PolicyBook, ConflictRecord, ForkRecord, UntrustedRecord } from './book.js'
import type { StateStore } from '../store/index.js'
import { forwards, type Via } from './rules.js'
import { claimedHeader } from './refusals.js'
import type { RolloutRecord } from '../rollout/index.js'

/** What history keeps of a rollout record: the version rolled out, the stage and its state. */
function rolloutDetail (r: RolloutRecord): Record<string, unknown> {
  return { policy: r.policy, target: r.target.version, stage: r.stage, stages: r.stages.length, text: r.stages[r.stage]?.text, state: r.state, ...(r.reason !== undefined ? { reason: r.reason } : {}), ...(r.rolledBack ? { rolledBack: true } : {}) }
}

/** Peer faults: only these make gossipsub penalise the sender and sync hang up. */
export const PEER_FAULTS: ReadonlySet<string> = new Set(['too-large', 'malformed', 'invalid', 'bad-signature', 'hash-mismatch'])

/** Refusals by the trust policy: the envelope was fine, its signer is not (or no longer) allowed. */
export const TRUST_REFUSALS: ReadonlySet<string> = new Set(['untrusted', 'revoked', 'out-of-scope', 'not-root'])

/** The refusal reason of an error that is not the sender's fault but a fault of this node's own code. */
export const INTERNAL_REASON = 'internal'

export interface Refusal {
  reason: string
  /** The name and signer the envelope claims (unverified), when it has them. */
  name?: string
  signer?: string
  via: Via
  from?: string
  error: string
}

export interface IntakeComponents {
  book: Pick<PolicyBook, 'get' | 'offer' | 'size' | 'trust' | 'fork'>
  journal: Pick<Journal, 'persist' | 'history'>
  store: Pick<StateStore, 'saveEnvelope' | 'archivedVersions' | 'loadArchived'>
  metrics: Pick<AgentMetrics, 'envelopesAccepted' | 'envelopesRejected' | 'envelopesIgnored' | 'policies'>
  log: Logger
  now: () => number
  events: IntakeEvents
}

export interface IntakeEvents {
  accepted: (env: VerifiedEnvelope, via: Via, from?: string) => void
  rejected: (refusal: Refusal) => void
  conflict: (record: ConflictRecord) => void
  /** The accepted envelope should go on to gossip peers (rules.forwards). */
  forward: (env: VerifiedEnvelope) => void
  /** A newer version by gossip that does not extend the held one: catchUp() asks its sender for the versions between. */
  catchUp: (peer: string, env: VerifiedEnvelope) => void
  /** A fork: held back, reported. */
  fork: (record: ForkRecord) => void
  /** A new trust policy no longer allows these held policies: they were dropped from the book. */
  untrusted: (records: UntrustedRecord[]) => void
}

export interface Taken {
  outcome: IngestOutcome
  /** The verified envelope, when it was valid (taken or not). */
  envelope?: VerifiedEnvelope
  /**
   * Why it was refused (`untrusted`, `hash-mismatch`, …), or why a correctly signed envelope was
   * ignored before its policy was checked (`older`, `duplicate`: no envelope then).
   */
  reason?: string
}

/**
 * The one path every envelope takes, whatever brought it: validate (size, decode, signature,
 * trust, schema), offer it to the book (the version rule), then persist it and hand it on.
 * Never throws: the outcome says whether the sender misbehaved.
 */
export class Intake {
  /** Per name, the write of the newest accepted envelope while it is not yet on disk. */
  private readonly unsaved = new Map<string, { version: number, written: Promise<void> }>()

  constructor (private readonly c: IntakeComponents) {}

  /**
   * While `env`'s bytes are not yet durably stored, the promise of their write; undefined once
   * they are. Nothing is applied before: a node that applied a version it had not stored would
   * load the older one after a restart and roll its files back (issue 15).
   */
  saving (env: Pick<VerifiedEnvelope, 'name' | 'version'>): Promise<void> | undefined {
    const pending = this.unsaved.get(env.name)
    return pending !== undefined && pending.version >= env.version ? pending.written : undefined
  }

  private save (env: VerifiedEnvelope): void {
    const written = this.c.journal.persist(`envelope ${env.name} v${env.version}`, async () => { await this.c.store.saveEnvelope(env.name, env.bytes, env.version) })
    const entry = { version: env.version, written }
    this.unsaved.set(env.name, entry)
    written.then(() => {
      if (this.unsaved.get(env.name) === entry) this.unsaved.delete(env.name)
    }, () => {})
  }

  take (bytes: Uint8Array, via: Via, from?: string, announced?: Announcement): Taken {
    let env: VerifiedEnvelope
    try {
      // Cheapest first (validator.ts): the signed header, then, only for a trusted signer, the policy.
      const opened = openEnvelope(bytes, this.c.book.trust)
      // A fetched body must be the very envelope announced, not merely a valid one.
      if (announced !== undefined) assertAnnounced(opened, announced)
      // Then the version rule on the verified header: a replay or an older version costs no
      // more than its signature; its policy is never parsed.
      const held = this.c.book.get(opened.name)
      const early = held === undefined ? undefined : selectEnvelope(held, opened)
      if (early !== undefined && !early.accept && (early.reason === 'older' || early.reason === 'duplicate')) {
        this.c.metrics.envelopesIgnored.inc({ reason: early.reason })
        return { outcome: 'ignored', reason: early.reason }
      }
      env = opened.complete()
    } catch (err) {
      return { outcome: this.refuse(err as Error, via, from, bytes), reason: err instanceof EnvelopeError ? err.reason : INTERNAL_REASON }
    }
    const decision = this.c.book.offer(env)
    if (decision.conflict !== undefined) this.conflict(decision.conflict)
    if (!decision.accept) {
      this.c.metrics.envelopesIgnored.inc({ reason: decision.reason })
      if (decision.reason === 'unlinked' || decision.reason === 'jump') this.unlinked(env, decision.reason, via, from)
      return { outcome: 'ignored', envelope: env }
    }
    this.c.metrics.envelopesAccepted.inc({ via })
    this.c.metrics.policies.set(this.c.book.size)
    this.c.log.info({ name: env.name, version: env.version, hash: env.hash, signer: env.signer, via, from }, 'envelope accepted')
    this.save(env)
    // The audit trail says when a version was taken off the chain, and why.
    const link = env.force !== undefined ? { link: decision.link ?? 'first', force: env.force } : decision.link === 'root' ? { link: 'root' } : undefined
    // A rollout record is a stage change: the audit trail says which, with its signer (above).
    const rollout = env.policy.kind === 'rollout' ? { rollout: rolloutDetail(env.policy as RolloutRecord) } : undefined
    const detail = link !== undefined || rollout !== undefined ? { ...link, ...rollout } : undefined
    this.c.journal.history({ event: 'accepted', name: env.name, version: env.version, hash: env.hash, signer: env.signer, via, from, ...(detail !== undefined ? { detail } : {}) })
    // Gossip forwards what came by gossip itself; the node forwards what came by sync, by rule.
    if (via === 'sync' && forwards(via, decision.replaced !== undefined, this.c.now() - Date.parse(env.issuedAt))) this.c.events.forward(env)
    this.c.events.accepted(env, via, from)
    if (decision.untrusted !== undefined) this.untrusted(decision.untrusted)
    return { outcome: 'accepted', envelope: env }
  }

  /**
   * A newer version that does not extend the held one. By gossip the node may just lack the
   * versions between: it asks the sender, whose sync answer carries them. Otherwise (sync
   * could not connect them, a local publish, a jump) it is a fork: held back and reported once.
   */
  private unlinked (env: VerifiedEnvelope, reason: 'unlinked' | 'jump', via: Via, from?: string): void {
    if (reason === 'unlinked' && via === 'gossip' && from !== undefined) {
      this.c.events.catchUp(from, env)
      return
    }
    this.fork(env, reason, via, from)
  }

  /**
   * Asks the peer that offered an unlinked version for the versions between (`sync`: one
   * anti-entropy exchange). An exchange already running started before the offer, so its answer
   * may not carry them: then one more; only what is still unlinked after that is a fork.
   */
  async catchUp (env: VerifiedEnvelope, from: string, sync: (peer: string) => Promise<void>): Promise<void> {
    const behind = (): boolean => (this.c.book.get(env.name)?.version ?? 0) < env.version
    await sync(from)
    if (behind()) await sync(from)
    this.settle(env, from)
  }

  /** After catching up with the peer that offered `env`: still not on this node's chain, it is a fork. */
  settle (env: VerifiedEnvelope, from: string): void {
    const held = this.c.book.get(env.name)
    if (held !== undefined && held.version < env.version) this.fork(env, 'unlinked', 'gossip', from)
  }

  private fork (env: VerifiedEnvelope, reason: 'unlinked' | 'jump', via: Via, from?: string): void {
    const record = this.c.book.fork(env, reason)
    if (record === undefined) return
    this.c.log.warn({ ...record, via, from }, 'fork: a newer version that does not extend the one held; held back until an admin resolves it')
    this.c.journal.history({ event: 'fork', name: env.name, version: env.version, hash: env.hash, signer: env.signer, via, from, detail: record })
    this.c.events.fork(record)
  }

  /** Reports policies the trust policy no longer allows; the caller falls back or leaves them. */
  untrusted (records: UntrustedRecord[]): void {
    for (const r of records) {
      this.c.log.warn(r, 'held policy no longer trusted: not applied any more')
      this.c.journal.history({ event: 'untrusted', name: r.name, version: r.version, hash: r.hash, signer: r.signer, error: r.error, detail: { reason: r.reason } })
    }
    this.c.metrics.policies.set(this.c.book.size)
    this.c.events.untrusted(records)
  }

  /**
   * Policies the trust policy no longer allows fall back to the newest version in the archive
   * that it does allow, which is applied; with none, the policy stays untrusted (status and
   * beacons say so) and its files are left as they are (README, "Rollback and retirement").
   */
  async fallBack (records: UntrustedRecord[]): Promise<void> {
    for (const { name, version } of records) {
      for (const v of await this.c.store.archivedVersions(name)) {
        if (v >= version || this.c.book.get(name) !== undefined) continue
        const bytes = await this.c.store.loadArchived(name, v)
        if (bytes !== undefined && this.take(bytes, 'disk').outcome === 'accepted') {
          this.c.log.warn({ name, untrusted: version, fallback: v }, 'fell back to the newest version the trust policy allows')
          break
        }
      }
    }
  }

  /** Records a version conflict found outside an offer (the loser of an announcement). */
  conflict (record: ConflictRecord): void {
    this.c.log.warn(record, 'version conflict: two contents signed as one version')
    this.c.journal.history({ event: 'conflict', name: record.name, version: record.version, detail: record })
    this.c.events.conflict(record)
  }

  /**
   * Names a refusal and says what it costs the sender. Only a peer fault (garbage, a bad
   * signature), or a trust refusal by gossip, is `rejected`, which gossipsub penalises and sync
   * hangs up on. Trust refusals by sync may be honest peers with newer trust, and an error that
   * is no EnvelopeError is a bug of ours: neither may lower an honest peer's score.
   */
  refuse (err: Error, via: Via, from?: string, bytes?: Uint8Array): IngestOutcome {
    const ours = !(err instanceof EnvelopeError)
    const reason = ours ? INTERNAL_REASON : err.reason
    this.c.metrics.envelopesRejected.inc({ reason, via })
    if (ours) this.c.log.error({ via, from, err: err.message, stack: err.stack }, 'envelope check failed inside this node (a bug, not the sender\'s fault)')
    else this.c.log.warn({ reason, via, from, err: err.message }, 'envelope refused')
    this.c.events.rejected({ reason, via, from, error: err.message, ...(bytes !== undefined ? claimedHeader(bytes) : {}) })
    if (ours) return 'ignored'
    return PEER_FAULTS.has(reason) || via === 'gossip' ? 'rejected' : 'ignored'
  }
}
