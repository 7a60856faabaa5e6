import { describe, expect, it } from 'vitest'
import { generateSigningKey } from '../../src/envelope/index.js'
import { TRUST_POLICY_NAME } from '../../src/policy/index.js'
import { NotRootError, OutOfScopeError, RevokedSignerError, TrustStore, UntrustedSignerError, scopeMatches } from '../../src/trust/index.js'
import { trustPolicy } from '../helpers/envelope.js'

const root = generateSigningKey().id
const web = generateSigningKey().id
const star = generateSigningKey().id
const both = generateSigningKey().id
const multi = generateSigningKey().id
const stranger = generateSigningKey().id

const store = (): TrustStore => new TrustStore([root], trustPolicy([
  { key: web, scopes: ['web/'] },
  { key: star, scopes: ['*'] },
  { key: both, scopes: ['*'] },
  { key: multi, scopes: ['app', 'db/'] }
], [both]))

describe('scopeMatches', () => {
  it.each([
    ['*', 'web/nginx', true],
    ['*', 'a', true],
    ['web', 'web', true],
    ['web', 'web/nginx', true],
    ['web', 'web/nginx/site', true],
    ['web', 'webapp', false],
    ['web', 'webapp/x', false],
    ['web', 'app/web', false],
    ['web/', 'web/nginx', true],
    ['web/', 'web/a/b', true],
    ['web/', 'web', false],
    ['web/', 'webapp/x', false],
    ['web/nginx', 'web/nginx', true],
    ['web/nginx', 'web/nginx-old', false],
    ['', 'web', false]
  ])('scope %j %s %j', (scope, name, expected) => {
    expect(scopeMatches(scope, name)).toBe(expected)
  })
})

describe('TrustStore.authorize', () => {
  it.each([
    ['a root, any name', root, 'anything/at/all'],
    ['a root, the trust policy', root, TRUST_POLICY_NAME],
    ['an admin inside its scope', web, 'web/nginx'],
    ['a * admin, any ordinary name', star, 'db/postgres'],
    ['an admin with several scopes, the bare name of one', multi, 'app'],
    ['an admin with several scopes, under another', multi, 'db/main']
  ])('allows %s', (_, signer, name) => {
    expect(() => store().authorize(signer, name)).not.toThrow()
  })

  it.each([
    ['a stranger', stranger, 'web/nginx', UntrustedSignerError, /is not a root and not an admin/],
    ['an admin outside its scope', web, 'app/settings', OutOfScopeError, /may publish "web\/", not "app\/settings"/],
    ['an admin with several scopes, outside all of them', multi, 'web/x', OutOfScopeError, /may publish "app", "db\/", not "web\/x"/],
    ['a revoked key, even though it is still listed as an admin', both, 'web/nginx', RevokedSignerError, /has been revoked/],
    ['an admin (even with *) signing the trust policy: it cannot replace the roots', star, TRUST_POLICY_NAME, NotRootError, /must be signed by a root key/],
    ['a scoped admin signing the trust policy', web, TRUST_POLICY_NAME, NotRootError, /must be signed by a root key/],
    ['a stranger signing the trust policy', stranger, TRUST_POLICY_NAME, NotRootError, /must be signed by a root key/]
  ])('refuses %s', (_, signer, name, type, message) => {
    const s = store()
    expect(() => s.authorize(signer, name)).toThrow(type)
    expect(() => s.authorize(signer, name)).toThrow(message)
  })

  it('trusts only roots until a trust policy arrives', () => {
    const s = new TrustStore([root])
    expect(() => s.authorize(root, 'web/nginx')).not.toThrow()
    expect(() => s.authorize(web, 'web/nginx')).toThrow(UntrustedSignerError)
    expect(s.rootKeys).toEqual([root])
  })

  it('a newer trust policy replaces the admins and revocations (rotation)', () => {
    const s = store()
    s.update(trustPolicy([{ key: stranger, scopes: ['web/'] }], [web]))
    expect(() => s.authorize(stranger, 'web/nginx')).not.toThrow()
    expect(() => s.authorize(web, 'web/nginx')).toThrow(RevokedSignerError)
    expect(() => s.authorize(star, 'db/postgres')).toThrow(UntrustedSignerError)
    // Un-revoking is a new version too.
    s.update(trustPolicy([{ key: both, scopes: ['*'] }]))
    expect(() => s.authorize(both, 'web/nginx')).not.toThrow()
    // Roots never come from the trust policy.
    expect(() => s.authorize(root, TRUST_POLICY_NAME)).not.toThrow()
    expect(s.rootKeys).toEqual([root])
  })
})
