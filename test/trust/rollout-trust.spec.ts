import { describe, expect, it } from 'vitest'
import { generateSigningKey, validateEnvelope } from '../../src/envelope/index.js'
import { NotRootError, OutOfScopeError, RevokedSignerError, TrustStore, UntrustedSignerError } from '../../src/trust/index.js'
import type { RolloutRecord } from '../../src/rollout/index.js'
import { rolloutRecordOf } from '../helpers/rollout.js'
import { trustPolicy, signed, signedOver, encodeEnvelope } from '../helpers/envelope.js'

// A rollout record (`rollout/<policy>`) is authorized against the policy it rolls out
// (docs/rollout.md, "Who may sign it"): the same scopes, revocation and errors as that policy.

const root = generateSigningKey()
const web = generateSigningKey()
const nginx = generateSigningKey()
const app = generateSigningKey()
const limited = generateSigningKey()
const revoked = generateSigningKey()
const stranger = generateSigningKey()

const store = (): TrustStore => new TrustStore([root.id], trustPolicy([
  { key: web.id, scopes: ['web/'] },
  { key: nginx.id, scopes: ['web/nginx'] },
  { key: app.id, scopes: ['app'] },
  // Limits that no resource-less record could break, and that a config policy here would.
  { key: limited.id, scopes: ['web/'], limits: { types: ['file'], paths: ['/srv/'] } },
  { key: revoked.id, scopes: ['*'] }
], [revoked.id]))

const record = (policy: string): RolloutRecord => rolloutRecordOf({ policy, autoRollback: true })

describe('TrustStore.authorize, rollout records', () => {
  it.each([
    ['a root', root, 'rollout/anything/at/all'],
    ['an admin whose scope holds the policy', web, 'rollout/web/nginx'],
    ['an admin scoped to exactly the policy', nginx, 'rollout/web/nginx'],
    ['an admin scoped to a bare name, its rollout', app, 'rollout/app'],
    ['an admin scoped to a bare name, a policy under it', app, 'rollout/app/x']
  ])('allows %s', (_, signer, name) => {
    expect(() => store().authorize(signer.id, name)).not.toThrow()
  })

  it.each([
    ['an admin whose scope does not hold the policy', app, 'rollout/web/nginx', OutOfScopeError, 'may publish "app", not "rollout/web/nginx" (the rollout of "web/nginx")'],
    ['an admin scoped to a sibling policy', nginx, 'rollout/web/site', OutOfScopeError, 'not "rollout/web/site" (the rollout of "web/site")'],
    // Scopes are matched against the policy, not the record's name: a scope on the prefix gives nothing.
    ['an admin scoped to web/, a record named for another policy', web, 'rollout/app', OutOfScopeError, 'not "rollout/app"'],
    ['a stranger', stranger, 'rollout/web/nginx', UntrustedSignerError, 'is not a root and not an admin'],
    ['a revoked admin', revoked, 'rollout/web/nginx', RevokedSignerError, 'has been revoked'],
    ['a * admin, a record for the trust policy', web, 'rollout/grapevine/trust', NotRootError, 'rollout/grapevine/trust must be signed by a root key']
  ])('refuses %s', (_, signer, name, type, message) => {
    const s = store()
    expect(() => s.authorize(signer.id, name)).toThrow(type)
    expect(() => s.authorize(signer.id, name)).toThrow(message)
  })

  it('does not let an admin scoped to rollout/ sign records for policies outside its scope', () => {
    const s = new TrustStore([root.id], trustPolicy([{ key: app.id, scopes: ['rollout/'] }]))
    expect(() => s.authorize(app.id, 'rollout/web/nginx')).toThrow(OutOfScopeError)
  })
})

describe('validating a signed rollout record', () => {
  const open = (bytes: Uint8Array): unknown => validateEnvelope(bytes, store()).policy

  it('accepts one signed by an admin in scope for its policy, and by a root', () => {
    const r = record('web/nginx')
    for (const key of [web, nginx, root]) expect(open(signed(r, { key }))).toEqual(r)
  })

  it('puts no limits on it: they bound resources, and a record has none (authorizeAll too)', () => {
    const r = record('web/nginx')
    expect(open(signed(r, { key: limited }))).toEqual(r)
    expect(() => store().authorizeAll(limited.id, r)).not.toThrow()
  })

  it('refuses one by an admin out of scope for its policy, and a forged one', () => {
    expect(() => open(signed(record('web/nginx'), { key: app }))).toThrow(OutOfScopeError)
    expect(() => store().authorizeAll(app.id, record('web/nginx'))).toThrow(OutOfScopeError)
    // Signed by an admin in scope for app, then carrying a header name for app over a web/nginx
    // record: the name must match the record, which must match its policy.
    const forged = signedOver(record('web/nginx'), app, { name: 'rollout/app' })
    expect(() => open(encodeEnvelope(forged))).toThrow(/does not match its policy's name/)
  })
})
