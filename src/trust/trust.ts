import { TRUST_POLICY_NAME, type AdminLimits, type Policy, type TrustPolicy } from '../policy/index.js'
import { ROLLOUT_NAME_PREFIX } from '../rollout/constants.js'
import type { Authorizer } from '../envelope/index.js'
import { NotRootError, OutOfScopeError, RevokedSignerError, UntrustedSignerError } from './errors.js'
import { describeLimit, grantExcesses } from './grant.js'

/** An admin as the trust policy lists it. */
interface Admin {
  name?: string
  scopes: readonly string[]
  limits?: AdminLimits
}

/** Excesses named in one refusal; the rest are counted. */
const MAX_EXCESSES_SHOWN = 5

/**
 * Who may publish what. Roots come from the node's configuration and never from the mesh;
 * the root-signed trust policy adds admin keys with name-prefix scopes and optional limits
 * on what their policies may do, and revokes keys.
 */
export class TrustStore implements Authorizer {
  private readonly roots: ReadonlySet<string>
  private admins = new Map<string, Admin>()
  private revoked = new Set<string>()
  private enrollers = new Set<string>()
  private revokedNodes = new Set<string>()

  constructor (roots: Iterable<string>, policy?: TrustPolicy) {
    this.roots = new Set(roots)
    if (policy !== undefined) this.update(policy)
  }

  /** Replaces the admin list with a newer trust policy (already accepted by the version rule). */
  update (policy: TrustPolicy): void {
    this.admins = new Map(policy.admins.map((a) => [a.key, a]))
    this.revoked = new Set(policy.revoked)
    this.enrollers = new Set(policy.enrollers)
    this.revokedNodes = new Set(policy.revokedNodes)
  }

  /** Admission (src/admission): roots and the listed enrollers may admit nodes, unless revoked. */
  mayEnroll (key: string): boolean {
    return !this.revoked.has(key) && (this.roots.has(key) || this.enrollers.has(key))
  }

  isNodeRevoked (peer: string): boolean {
    return this.revokedNodes.has(peer)
  }

  /** Admission is enforced once the trust policy lists an enroller; until then every node counts. */
  get admissionEnforced (): boolean {
    return this.enrollers.size > 0
  }

  get rootKeys (): string[] {
    return [...this.roots]
  }

  /**
   * A rollout record (`rollout/<policy>`) is authorized against the policy it rolls out: whoever
   * may publish `web/nginx` may stage it. Only a rollout record may bear such a name (the schema
   * reserves the prefix), and its schema checks that the name matches its `policy`.
   */
  authorize (signer: string, name: string): void {
    if (this.revoked.has(signer)) throw new RevokedSignerError(`key ${signer} has been revoked by the trust policy`)
    const subject = name.startsWith(ROLLOUT_NAME_PREFIX) ? name.slice(ROLLOUT_NAME_PREFIX.length) : name
    if (subject === TRUST_POLICY_NAME) {
      if (!this.roots.has(signer)) throw new NotRootError(`${name} must be signed by a root key; ${signer} is not one`)
      return
    }
    if (this.roots.has(signer)) return
    const scopes = this.admins.get(signer)?.scopes
    if (scopes === undefined) throw new UntrustedSignerError(`key ${signer} is not a root and not an admin in the trust policy`)
    if (!scopes.some((s) => scopeMatches(s, subject))) {
      const what = subject === name ? `"${name}"` : `"${name}" (the rollout of "${subject}")`
      throw new OutOfScopeError(`key ${signer} may publish ${quoted(scopes)}, not ${what}`)
    }
  }

  /**
   * Whether a valid policy stays within its signer's limits (after `authorize`); roots have none.
   * A rollout record has none either: it manages no resource, only which already-signed
   * version of its policy a node enforces, and that version was held to its own signer's limits.
   */
  authorizePolicy (signer: string, policy: Policy): void {
    if (this.roots.has(signer)) return
    const admin = this.admins.get(signer)
    if (admin === undefined) throw new UntrustedSignerError(`key ${signer} is not a root and not an admin in the trust policy`)
    if (policy.kind === 'rollout') return
    const limits = admin.limits
    if (limits === undefined) return
    const excesses = grantExcesses(policy, limits)
    if (excesses.length === 0) return
    const who = `${admin.name !== undefined ? `${admin.name}, ` : ''}scopes ${quoted(admin.scopes)}`
    const lines = excesses.slice(0, MAX_EXCESSES_SHOWN).map((e) =>
      `${e.list ?? 'resources'}[${e.index}] (id "${e.id}"): ${e.message} for key ${signer} (${who}; limits ${describeLimit(limits, e.rule)})`)
    const more = excesses.length > MAX_EXCESSES_SHOWN ? `; and ${excesses.length - MAX_EXCESSES_SHOWN} more` : ''
    throw new OutOfScopeError(`${policy.name} goes beyond its signer's limits: ${lines.join('; ')}${more}`)
  }

  /** Name and limits at once: for re-checking held envelopes against a new trust policy. */
  authorizeAll (signer: string, policy: Policy): void {
    this.authorize(signer, policy.name)
    this.authorizePolicy(signer, policy)
  }
}

const quoted = (scopes: readonly string[]): string => scopes.map((s) => `"${s}"`).join(', ')

/** `*` matches any name; `web` matches `web` and `web/…`; `web/` matches `web/…`. */
export function scopeMatches (scope: string, name: string): boolean {
  if (scope === '*') return true
  if (scope.endsWith('/')) return name.startsWith(scope)
  return name === scope || name.startsWith(`${scope}/`)
}
