import { describe, expect, it } from 'vitest'
import { generateSigningKey } from '../../src/envelope/index.js'
import { generateIdentity, peerIdOf } from '../../src/net/identity.js'
import {
  MAX_ADMISSION_BYTES, admissionStatus, openAdmission, signAdmission, verifyAdmission, type AdmissionTrust
} from '../../src/admission/index.js'
import { TrustStore } from '../../src/trust/index.js'
import { trustPolicy } from '../helpers/envelope.js'

const root = generateSigningKey()
const enroller = generateSigningKey()
const stranger = generateSigningKey()
const peer = peerIdOf(await generateIdentity()).toString()
const other = peerIdOf(await generateIdentity()).toString()
const NOW = Date.parse('2026-06-01T00:00:00Z')
const DAY = 86_400_000

function trust (extra: { enrollers?: string[], revokedNodes?: string[], revoked?: string[] } = {}): TrustStore {
  return new TrustStore([root.id], { ...trustPolicy([], extra.revoked ?? []), enrollers: extra.enrollers ?? [enroller.id], revokedNodes: extra.revokedNodes ?? [] })
}

const cert = (opts: Partial<Parameters<typeof signAdmission>[0]> = {}): Uint8Array =>
  signAdmission({ peer, name: 'web-1', tags: { role: 'web' }, key: enroller, issuedAt: NOW - DAY, ...opts })

function tampered (bytes: Uint8Array, edit: (c: Record<string, unknown>) => void): Uint8Array {
  const c = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>
  edit(c)
  return new TextEncoder().encode(JSON.stringify(c))
}

type Case = [string, Uint8Array | unknown, AdmissionTrust, string | undefined]

describe('verifyAdmission', () => {
  const cases: Case[] = [
    ['a valid certificate from a listed enroller', cert(), trust(), undefined],
    ['one signed by a root key, with no enroller listed for it', cert({ key: root }), trust(), undefined],
    ['one that expires tomorrow', cert({ expires: NOW + DAY }), trust(), undefined],
    ['the decoded object, as a beacon carries it', JSON.parse(new TextDecoder().decode(cert())), trust(), undefined],
    ['another peer\'s certificate', cert({ peer: other }), trust(), 'AdmissionWrongPeerError'],
    ['an enroller the trust policy does not list', cert({ key: stranger }), trust(), 'UnknownEnrollerError'],
    ['an enroller whose key is revoked', cert(), trust({ revoked: [enroller.id] }), 'UnknownEnrollerError'],
    ['a node in revokedNodes', cert(), trust({ revokedNodes: [peer] }), 'RevokedNodeError'],
    ['an expired certificate', cert({ expires: NOW - 1 }), trust(), 'AdmissionExpiredError'],
    ['a tampered name', tampered(cert(), (c) => { c.name = 'db-1' }), trust(), 'AdmissionSignatureError'],
    ['a tampered tag', tampered(cert(), (c) => { c.tags = { role: 'db' } }), trust(), 'AdmissionSignatureError'],
    ['a moved peer id', tampered(cert(), (c) => { c.peer = other }), trust(), 'AdmissionSignatureError'],
    ['a removed expiry', tampered(cert({ expires: NOW - 1 }), (c) => { delete c.expires }), trust(), 'AdmissionSignatureError'],
    ['an unknown field', tampered(cert(), (c) => { c.admin = true }), trust(), 'InvalidAdmissionError'],
    ['not JSON', new TextEncoder().encode('{"kind":'), trust(), 'InvalidAdmissionError'],
    ['too large, refused before decoding', new Uint8Array(MAX_ADMISSION_BYTES + 1), trust(), 'InvalidAdmissionError']
  ]
  it.each(cases)('%s', (_what, input, t, error) => {
    const run = (): unknown => verifyAdmission(input, t, { peer, now: NOW })
    if (error === undefined) expect(run()).toMatchObject({ peer, name: 'web-1', tags: { role: 'web' } })
    else expect(run).toThrow(expect.objectContaining({ name: error }))
  })

  it('refuses to sign what a verifier would refuse', () => {
    const tags = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`t${i}`, 'v']))
    expect(() => cert({ tags })).toThrow(expect.objectContaining({ name: 'InvalidAdmissionError', message: expect.stringMatching(/at most 16 tags/) }))
  })
})

describe('admissionStatus', () => {
  const opened = openAdmission(cert())
  it.each([
    ['enforced, a valid certificate', opened, trust(), true, undefined],
    ['enforced, none', undefined, trust(), false, 'no-certificate'],
    ['enforced, another peer\'s', openAdmission(cert({ peer: other })), trust(), false, 'wrong-peer'],
    ['no enrollers listed (transition): none still counts', undefined, trust({ enrollers: [] }), true, undefined],
    ['no enrollers listed: an unknown enroller\'s still counts, with the reason', openAdmission(cert({ key: stranger })), trust({ enrollers: [] }), true, 'unknown-enroller'],
    ['no enrollers listed: a revoked node does not count', undefined, trust({ enrollers: [], revokedNodes: [peer] }), false, 'revoked']
  ] as const)('%s', (_what, c, t, admitted, reason) => {
    const s = admissionStatus(c, peer, t, NOW)
    expect(s.admitted).toBe(admitted)
    expect(s.reason).toBe(reason)
  })
})
