import { describe, expect, it } from 'vitest'
import {
  ENVELOPE_SIGNING_CONTEXT, canonicalBytes, envelopeHeader, type EnvelopeHeader, canonicalJson, contentHash, envelopeId, generateSigningKey, pickHeader, signPolicy,
  signingPayload, verifyBytes
} from '../../src/envelope/index.js'
import { FIXED_NOW, configPolicy, decodeEnvelope } from '../helpers/envelope.js'

const key = generateSigningKey()
const p = configPolicy('web/nginx', [{ id: 'd', type: 'directory', path: '/srv' }])

describe('signPolicy', () => {
  it('writes canonical bytes holding the header, the policy and a signature', () => {
    const bytes = signPolicy(p, { version: 4, key, now: () => FIXED_NOW })
    const fields = decodeEnvelope(bytes)
    expect(Object.keys(fields)).toEqual(['format', 'hash', 'issuedAt', 'name', 'policy', 'signature', 'signer', 'version'])
    expect(new TextDecoder().decode(bytes)).toBe(canonicalJson(fields))
    expect(fields).toMatchObject({
      format: 1, name: 'web/nginx', version: 4, hash: contentHash(p), signer: key.id, issuedAt: '2025-01-02T03:04:05.000Z', policy: p
    })
  })

  it('signs the header with a domain-separation context, not the bare header', () => {
    const fields = decodeEnvelope(signPolicy(p, { version: 1, key, now: () => FIXED_NOW }))
    const header = envelopeHeader.parse(pickHeader(fields as unknown as EnvelopeHeader))
    const sig = Buffer.from(fields.signature, 'base64url')
    expect(sig).toHaveLength(64)
    expect(verifyBytes(key.id, signingPayload(header), sig)).toBe(true)
    expect(new TextDecoder().decode(signingPayload(header))).toContain(JSON.stringify(ENVELOPE_SIGNING_CONTEXT))
    expect(verifyBytes(key.id, canonicalBytes(header), sig)).toBe(false)
  })

  it('is deterministic for the same policy, version, key and clock', () => {
    const a = signPolicy(p, { version: 2, key, now: () => FIXED_NOW })
    const b = signPolicy(p, { version: 2, key, now: () => FIXED_NOW })
    expect(a).toEqual(b)
  })

  it('gives a rollback (old content, new version) the same hash but a new envelope id', () => {
    const v1 = signPolicy(p, { version: 1, key, now: () => FIXED_NOW })
    const v3 = signPolicy(p, { version: 3, key, now: () => FIXED_NOW })
    expect(decodeEnvelope(v3).hash).toBe(decodeEnvelope(v1).hash)
    expect(envelopeId(v3)).not.toBe(envelopeId(v1))
  })

  it.each([0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1])('refuses version %s with a message naming the value', (version) => {
    expect(() => signPolicy(p, { version, key })).toThrow(new RangeError(`version must be a positive integer: current value is ${version}`))
  })
})
