import { TRUST_POLICY_NAME, type TrustPolicy } from '../policy/index.js'
import type { Authorizer } from '../envelope/index.js'
import { NotRootError, OutOfScopeError, RevokedSignerError, UntrustedSignerError } from './errors.js'

/**
 * Who may publish what. Roots come from the node's configuration and never from the mesh;
 * the root-signed trust policy adds admin keys with name-prefix scopes and revokes keys.
 */
export class TrustStore implements Authorizer {
  private readonly roots: ReadonlySet<string>
  private admins = new Map<string, readonly string[]>()
  private revoked = new Set<string>()

  constructor (roots: Iterable<string>, policy?: TrustPolicy) {
    this.roots = new Set(roots)
    if (policy !== undefined) this.update(policy)
  }

  /** Replaces the admin list with a newer trust policy (already accepted by the version rule). */
  update (policy: TrustPolicy): void {
    this.admins = new Map(policy.admins.map((a) => [a.key, a.scopes]))
    this.revoked = new Set(policy.revoked)
  }

  get rootKeys (): string[] {
    return [...this.roots]
  }

  authorize (signer: string, name: string): void {
    if (this.revoked.has(signer)) throw new RevokedSignerError(`key ${signer} has been revoked by the trust policy`)
    if (name === TRUST_POLICY_NAME) {
      if (!this.roots.has(signer)) throw new NotRootError(`${TRUST_POLICY_NAME} must be signed by a root key; ${signer} is not one`)
      return
    }
    if (this.roots.has(signer)) return
    const scopes = this.admins.get(signer)
    if (scopes === undefined) throw new UntrustedSignerError(`key ${signer} is not a root and not an admin in the trust policy`)
    if (!scopes.some((s) => scopeMatches(s, name))) {
      throw new OutOfScopeError(`key ${signer} may publish ${scopes.map((s) => `"${s}"`).join(', ')}, not "${name}"`)
    }
  }
}

/** `*` matches any name; `web` matches `web` and `web/…`; `web/` matches `web/…`. */
export function scopeMatches (scope: string, name: string): boolean {
  if (scope === '*') return true
  if (scope.endsWith('/')) return name.startsWith(scope)
  return name === scope || name.startsWith(`${scope}/`)
}
