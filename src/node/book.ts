import { linkOf, selectEnvelope, type Conflict, type Link, type VerifiedEnvelope } from '../envelope/index.js'
import { TRUST_POLICY_NAME, type TrustPolicy } from '../policy/index.js'
import type { TrustStore } from '../trust/index.js'
import type { DigestEntry, FetchRequest } from '../sync/index.js'

export interface ConflictRecord {
  kind: 'version' | 'path'
  name: string
  at: string
  version?: number
  winner?: string
  loser?: string
  path?: string
  policies?: string[]
}

/** A held envelope the current trust policy no longer allows: its signer was revoked or lost the scope. */
export interface UntrustedRecord {
  name: string
  version: number
  hash: string
  signer: string
  reason: string
  error: string
  at: string
}

/** A newer version that does not extend the one held: held back, never applied, until an admin resolves it. */
export interface ForkRecord {
  name: string
  held: { version: number, id: string }
  offered: { version: number, id: string, signer: string, prev?: string }
  /** `unlinked`: its history is not this node's; `jump`: too far past the held version. */
  reason: 'unlinked' | 'jump'
  at: string
}

/** What the book did with an envelope offered to it. */
export type Decision =
  | { accept: true, replaced?: VerifiedEnvelope, link?: Link, conflict?: ConflictRecord, untrusted?: UntrustedRecord[] }
  | { accept: false, reason: 'older' | 'duplicate' | 'conflict-lost' | 'unlinked' | 'jump', conflict?: ConflictRecord }

/** Forks remembered per name: the newest few offers that did not extend it. */
const MAX_FORKS_PER_NAME = 4
/** Fork offers remembered as ruled on, oldest forgotten first. */
const MAX_DISMISSED = 1024

/**
 * The policy book: the envelope held per name, the trust they were checked against, and the
 * conflicts seen. Pure (no I/O, no timers): `offer()` applies the version rule and says what
 * happened; the intake around it persists, applies and reports.
 */
export class PolicyBook {
  private readonly held = new Map<string, VerifiedEnvelope>()
  private readonly open = new Map<string, ConflictRecord>()
  private readonly distrusted = new Map<string, UntrustedRecord>()
  private readonly forked = new Map<string, ForkRecord[]>()
  /** Offers an admin has ruled on (a forced version): not reported as forks again. */
  private readonly dismissed = new Set<string>()
  private readonly roots: ReadonlySet<string>

  constructor (readonly trust: TrustStore, private readonly now: () => number) {
    this.roots = new Set(trust.rootKeys)
  }

  get (name: string): VerifiedEnvelope | undefined {
    return this.held.get(name)
  }

  values (): IterableIterator<VerifiedEnvelope> {
    return this.held.values()
  }

  get size (): number {
    return this.held.size
  }

  /**
   * The version rule against what is held. A winner is taken at once, so copies arriving while
   * it is persisted are duplicates, and a trust policy takes effect for the next envelope.
   * A version conflict is returned only the first time it is seen.
   */
  offer (env: VerifiedEnvelope): Decision {
    const current = this.held.get(env.name)
    const selection = selectEnvelope(current, env)
    const conflict = selection.conflict !== undefined ? this.versionConflict(env.name, selection.conflict) : undefined
    if (!selection.accept) return { accept: false, reason: selection.reason, ...(conflict !== undefined ? { conflict } : {}) }
    // A newer version is taken only along the chain (envelope/selector.ts linkOf).
    const link = current !== undefined && env.version > current.version ? linkOf(current, env, this.roots.has(env.signer)) : undefined
    if (link === 'unlinked' || link === 'jump') return { accept: false, reason: link }
    this.held.set(env.name, env)
    this.distrusted.delete(env.name)
    // A forced version is an admin's ruling on the name (`grapevine resolve`), even when it also extends.
    if (env.force !== undefined) this.dismissForks(env.name)
    const untrusted = env.policy.kind === 'trust' ? this.retrust(env.policy as TrustPolicy) : []
    return { accept: true, ...(current !== undefined ? { replaced: current } : {}), ...(link !== undefined ? { link } : {}), ...(conflict !== undefined ? { conflict } : {}), ...(untrusted.length > 0 ? { untrusted } : {}) }
  }

  /**
   * Takes a new trust policy and re-checks every held envelope against it at once: those whose
   * signer it revokes or no longer allows are dropped from the book (so nothing applies them
   * again) and returned, for the caller to fall back to an older version or report.
   */
  private retrust (policy: TrustPolicy): UntrustedRecord[] {
    this.trust.update(policy)
    const dropped: UntrustedRecord[] = []
    for (const env of [...this.held.values()]) {
      if (env.name === TRUST_POLICY_NAME) continue
      try {
        // Names and limits both: a grant narrowed to fewer resource types or paths applies at once.
        this.trust.authorizeAll(env.signer, env.policy)
      } catch (err) {
        const record: UntrustedRecord = {
          name: env.name, version: env.version, hash: env.hash, signer: env.signer, reason: (err as { reason?: string }).reason ?? 'untrusted', error: (err as Error).message, at: this.iso()
        }
        this.held.delete(env.name)
        this.distrusted.set(env.name, record)
        dropped.push(record)
      }
    }
    return dropped
  }

  /** Policies dropped because the trust policy no longer allows their signer, and not replaced since. */
  get untrusted (): UntrustedRecord[] {
    return [...this.distrusted.values()]
  }

  /**
   * Whether the peer's offer is a version this node dropped when its trust policy stopped
   * allowing the signer, and the signer is still not allowed the name: a peer that has not yet
   * heard of that trust policy offers it, and asking for it would only be refused again.
   */
  droppedAsUntrusted (offer: { name: string, version: number, hash: string }): boolean {
    const record = this.distrusted.get(offer.name)
    if (record === undefined || record.version !== offer.version || record.hash !== offer.hash) return false
    try {
      this.trust.authorize(record.signer, record.name)
      return false
    } catch {
      return true
    }
  }

  /** Notes a policy found untrusted elsewhere (a stored envelope refused at start). */
  distrust (record: UntrustedRecord): void {
    if (!this.held.has(record.name)) this.distrusted.set(record.name, record)
  }

  /** Records a newer version that does not extend the held one; undefined when already known or nothing is held. */
  fork (env: VerifiedEnvelope, reason: ForkRecord['reason']): ForkRecord | undefined {
    const held = this.held.get(env.name)
    if (held === undefined) return undefined
    const known = this.forked.get(env.name) ?? []
    if (this.dismissed.has(env.id) || known.some((f) => f.offered.id === env.id)) return undefined
    const record: ForkRecord = {
      name: env.name,
      held: { version: held.version, id: held.id },
      offered: { version: env.version, id: env.id, signer: env.signer, ...(env.prev !== undefined ? { prev: env.prev } : {}) },
      reason,
      at: this.iso()
    }
    this.forked.set(env.name, [...known, record].slice(-MAX_FORKS_PER_NAME))
    return record
  }

  /** A forced version rules on every open fork of its name: they are closed and not reported again. */
  private dismissForks (name: string): void {
    for (const f of this.forked.get(name) ?? []) {
      this.dismissed.add(f.offered.id)
      if (this.dismissed.size > MAX_DISMISSED) this.dismissed.delete(this.dismissed.values().next().value as string)
    }
    this.forked.delete(name)
  }

  /** Forks still open: offers newer than what is held now. */
  get forks (): ForkRecord[] {
    return [...this.forked.values()].flat().filter((f) => (this.held.get(f.name)?.version ?? 0) < f.offered.version)
  }

  /** Records a same-version conflict (say the loser of an announcement); undefined when already known. */
  versionConflict (name: string, c: Conflict): ConflictRecord | undefined {
    return this.note(`version:${name}:${c.version}`, { kind: 'version', name, version: c.version, winner: c.winner, loser: c.loser, at: this.iso() })
  }

  /** Records a path claimed by two policies; undefined when already known. */
  pathConflict (name: string, path: string, owner: string): ConflictRecord | undefined {
    return this.note(`path:${path}`, { kind: 'path', name, path, policies: [owner, name], at: this.iso() })
  }

  get conflicts (): ConflictRecord[] {
    return [...this.open.values()]
  }

  digest (): DigestEntry[] {
    return [...this.held.values()].map((e) => ({ name: e.name, version: e.version, hash: e.hash, id: e.id }))
  }

  /** What this node serves to a fetch: the envelope it holds, if it is exactly the one asked for. */
  servable (req: FetchRequest): Uint8Array | undefined {
    const env = this.held.get(req.name)
    return env !== undefined && env.version === req.version && env.hash === req.hash ? env.bytes : undefined
  }

  get trustVersion (): number | undefined {
    return this.held.get(TRUST_POLICY_NAME)?.version
  }

  private note (key: string, record: ConflictRecord): ConflictRecord | undefined {
    if (this.open.has(key)) return undefined
    this.open.set(key, record)
    return record
  }

  private iso (): string {
    return new Date(this.now()).toISOString()
  }
}
