import { describe, expect, it } from 'vitest'
import {
  assertAnnounced, decodeAnnouncement, encodeAnnouncement, EnvelopeError, MAX_ANNOUNCEMENT_BYTES, matchesAnnouncement, validateEnvelope,
  verifyAnnouncement, canonicalBytes, type Announcement
} from '../../src/envelope/index.js'
import { TrustStore } from '../../src/trust/index.js'
import { configPolicy, decodeEnvelope, makeKeys, resign, signed, trustPolicy } from '../helpers/envelope.js'

const keys = makeKeys()
const trust = new TrustStore([keys.root.id], trustPolicy([{ name: 'web team', key: keys.webAdmin.id, scopes: ['web/'] }]))
const env = validateEnvelope(signed(configPolicy('web/nginx'), { key: keys.webAdmin, version: 3 }), trust)
const ann = encodeAnnouncement(env)
const fields = (): Record<string, unknown> => JSON.parse(new TextDecoder().decode(ann)) as Record<string, unknown>

function reasonOf (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof EnvelopeError ? err.reason : 'not an EnvelopeError'
  }
  return undefined
}

describe('announcements', () => {
  it('carry the signed header and signature, no policy, in a few hundred bytes', () => {
    const decoded = decodeAnnouncement(ann)
    expect(decoded).toEqual({ format: 1, name: 'web/nginx', version: 3, hash: env.hash, signer: env.signer, issuedAt: env.issuedAt, signature: env.signature })
    expect(ann.byteLength).toBeLessThan(500)
    expect(() => { verifyAnnouncement(decoded, trust) }).not.toThrow()
    expect(matchesAnnouncement(env, decoded)).toBe(true)
  })

  it.each<[string, () => Uint8Array, string]>([
    ['over the size bound', () => new Uint8Array(MAX_ANNOUNCEMENT_BYTES + 1).fill(0x7b), 'too-large'],
    ['not JSON', () => new TextEncoder().encode('{'), 'malformed'],
    ['not canonical', () => new TextEncoder().encode(JSON.stringify(fields(), null, 1)), 'malformed'],
    ['carrying a policy (a whole envelope)', () => env.bytes.byteLength > MAX_ANNOUNCEMENT_BYTES ? env.bytes : canonicalBytes(decodeEnvelope(env.bytes)), 'invalid'],
    ['with an unknown field', () => canonicalBytes({ ...fields(), extra: 1 }), 'invalid'],
    ['without a signature', () => { const f = fields(); delete f.signature; return canonicalBytes(f) }, 'invalid']
  ])('refuses one %s before any crypto', (_, bytes, reason) => {
    expect(reasonOf(() => decodeAnnouncement(bytes()))).toBe(reason)
  })

  it.each<[string, () => Announcement, string]>([
    ['a forged version', () => ({ ...decodeAnnouncement(ann), version: 4 }), 'bad-signature'],
    ['a tampered hash', () => ({ ...decodeAnnouncement(ann), hash: `sha256:${'0'.repeat(64)}` }), 'bad-signature'],
    ['another signer claimed', () => ({ ...decodeAnnouncement(ann), signer: keys.root.id }), 'bad-signature'],
    ['a stranger re-signing it', () => decodeAnnouncement(canonicalBytes(resign({ ...decodeEnvelope(ann), policy: undefined } as never, keys.stranger))), 'untrusted'],
    ['an admin out of scope', () => decodeAnnouncement(encodeAnnouncement(validateEnvelope(signed(configPolicy('app/x'), { key: keys.webAdmin }), { authorize: () => {} }))), 'out-of-scope']
  ])('refuses %s when verified', (_, make, reason) => {
    expect(reasonOf(() => { verifyAnnouncement(make(), trust) })).toBe(reason)
  })

  it('tells a fetched envelope that is not the one announced', () => {
    const other = validateEnvelope(signed(configPolicy('web/nginx', [{ id: 'd', type: 'directory', path: '/srv' }]), { key: keys.webAdmin, version: 3 }), trust)
    expect(matchesAnnouncement(other, decodeAnnouncement(ann))).toBe(false)
    expect(reasonOf(() => { assertAnnounced(other, decodeAnnouncement(ann)) })).toBe('not-announced')
    expect(reasonOf(() => { assertAnnounced(env, decodeAnnouncement(ann)) })).toBeUndefined()
  })
})
