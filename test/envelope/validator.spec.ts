import fc from 'fast-check'
import { describe, expect, expectTypeOf, it } from 'vitest'
import * as envelopeModule from '../../src/envelope/index.js'
import * as trustModule from '../../src/trust/index.js'
import {
  EnvelopeError, MAX_ENVELOPE_BYTES, canonicalBytes, canonicalJson, contentHash, generateSigningKey, sha256Hex, validateEnvelope, type Authorizer
} from '../../src/envelope/index.js'
import { TrustStore } from '../../src/trust/index.js'
import { TRUST_POLICY_NAME } from '../../src/policy/index.js'
import {
  FIXED_NOW, configPolicy, decodeEnvelope, encodeEnvelope, makeKeys, resign, signed, signedOver, trustPolicy
} from '../helpers/envelope.js'
import { arbPolicy } from '../helpers/policy-arbitraries.js'

/**
 * Every `reason` an exported envelope or trust error can carry. Derived from the modules'
 * exports, so a new rejection reason makes the table below fail to compile until it is tested.
 */
type Exports = typeof envelopeModule & typeof trustModule
type ReasonOf<T> = T extends abstract new (...args: never[]) => { reason: infer R } ? (string extends R ? never : R) : never
// 'not-announced' compares a valid envelope with its announcement, after validation: test/envelope/announcement.spec.ts.
type RejectionReason = Exclude<{ [K in keyof Exports]: ReasonOf<Exports[K]> }[keyof Exports], 'not-announced'>

const keys = makeKeys()
const trust = new TrustStore([keys.root.id], trustPolicy([
  { name: 'web team', key: keys.webAdmin.id, scopes: ['web/'] },
  { name: 'ops', key: keys.starAdmin.id, scopes: ['*'] },
  { name: 'former', key: keys.revokedAdmin.id, scopes: ['*'] }
], [keys.revokedAdmin.id]))
// A web admin whose grant limits power, not only names (docs/trust.md).
const limitedAdmin = generateSigningKey()
const limitedTrust = new TrustStore([keys.root.id], trustPolicy([
  { name: 'web team', key: limitedAdmin.id, scopes: ['web/'], limits: { types: ['file', 'directory', 'config'], paths: ['/var/www/'] } }
]))
/** EnvelopeError is abstract; toThrow() wants something constructible. */
const ANY_REJECTION = EnvelopeError as unknown as new () => EnvelopeError
const acceptAll: Authorizer = { authorize: () => {} }

const webWithVars = configPolicy('web/nginx', [
  { id: 'site', type: 'file', path: '/etc/nginx/site.conf', content: 'listen {{ vars.port }}; # café ☕\n' }
], { vars: { port: 8080 } })
const web = configPolicy('web/nginx')
const good = signed(webWithVars, { key: keys.webAdmin, version: 7 })
const goodFields = decodeEnvelope(good)
const text = new TextDecoder().decode(good)
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

interface RejectionCase {
  bytes: Uint8Array
  /** Defaults to the test trust store (one root, admins for web/ and *, one revoked). */
  trust?: Authorizer
  maxBytes?: number
  /** What the message must say, so a person can act on it. */
  message: RegExp
}

const rejections = {
  'too-large': {
    'one byte over maxBytes': () => ({ bytes: good, maxBytes: good.byteLength - 1, message: /over the \d+-byte limit/ }),
    'over the default limit, even when garbage': () => ({ bytes: new Uint8Array(MAX_ENVELOPE_BYTES + 1).fill(0x7b), message: /over the 2097152-byte limit/ })
  },
  malformed: {
    'not JSON': () => ({ bytes: utf8('this is not json'), message: /not UTF-8 JSON/ }),
    'not UTF-8': () => ({ bytes: Uint8Array.from([...good.subarray(0, 20), 0xff, 0xfe, ...good.subarray(20)]), message: /not UTF-8 JSON/ }),
    'truncated': () => ({ bytes: good.subarray(0, good.byteLength - 1), message: /not UTF-8 JSON/ }),
    'extra whitespace between header fields': () => ({ bytes: utf8(text.replace('"format":1,', '"format": 1,')), message: /not canonical JSON/ }),
    'trailing newline': () => ({ bytes: utf8(text + '\n'), message: /not canonical JSON/ }),
    'reordered keys': () => {
      const { signature, ...rest } = goodFields
      return { bytes: utf8(JSON.stringify({ signature, ...rest })), message: /not canonical JSON/ }
    },
    'a number spelled differently': () => ({ bytes: utf8(text.replace('"version":7', '"version":7.0')), message: /not canonical JSON/ }),
    'a duplicated key': () => ({ bytes: utf8(text.replace('{"format":1,', '{"format":1,"format":1,')), message: /not canonical JSON/ }),
    'a leading byte-order mark': () => ({ bytes: Uint8Array.from([0xef, 0xbb, 0xbf, ...good]), message: /not UTF-8 JSON/ }),
    'not an object': () => ({ bytes: utf8('[1,2,3]'), message: /not UTF-8 JSON: expected "\{" at byte 0/ }),
    'the policy twice': () => ({ bytes: utf8(text.replace('"policy":', `"policy":{},"policy":`)), message: /"policy" appears twice/ }),
    'an unterminated policy, however deep': () => ({ bytes: utf8(text.replace('"policy":', `"policy":${'{"a":'.repeat(10_000)}`)), message: /not UTF-8 JSON: unterminated value/ }),
    'bytes after the object': () => ({ bytes: utf8(`${text} {}`), message: /unexpected bytes after the object/ }),
    'a policy that is not JSON, signed as it is': () => {
      const body = '{"kind":"policy",}'
      const fields = resign({ ...goodFields, hash: `sha256:${sha256Hex(body)}` }, keys.webAdmin)
      return { bytes: utf8(new TextDecoder().decode(encodeEnvelope({ ...fields, policy: {} })).replace('"policy":{}', `"policy":${body}`)), message: /policy of web\/nginx v7 is not UTF-8 JSON/ }
    }
  },
  invalid: {
    'missing field': () => {
      const { issuedAt: _, ...rest } = goodFields
      return { bytes: encodeEnvelope(rest), message: /issuedAt/ }
    },
    'unknown field': () => ({ bytes: encodeEnvelope({ ...goodFields, extra: 1 }), message: /extra/ }),
    'wrong format version': () => ({ bytes: encodeEnvelope(resign({ ...goodFields, format: 2 }, keys.webAdmin)), message: /format/ }),
    'the policy missing': () => {
      const { policy: _, ...rest } = goodFields
      return { bytes: encodeEnvelope(rest), message: /field policy: required field is missing/ }
    },
    'the policy not an object': () => ({ bytes: encodeEnvelope({ ...goodFields, policy: [goodFields.policy] }), message: /field policy: expected an object/ }),
    'a header field bigger than any header (stepped over, never parsed deep)': () => ({
      bytes: utf8(text.replace('"issuedAt":', `"extra":${'['.repeat(5000)}${']'.repeat(5000)},"issuedAt":`)), message: /header \(everything but the policy\) is over 4096 bytes/
    }),
    'version zero': () => ({ bytes: encodeEnvelope(resign({ ...goodFields, version: 0 }, keys.webAdmin)), message: /version/ }),
    'bad policy inside, correctly signed': () => {
      const bad = { kind: 'policy', name: 'web/nginx', resources: [{ id: 'x', type: 'file', path: 'relative/path' }] }
      return { bytes: encodeEnvelope(signedOver(bad, keys.webAdmin)), message: /policy in envelope is invalid: .*resources\[0\]\.path: expected an absolute path/ }
    },
    'an ordinary policy under the trust policy\'s name, signed by a root': () => {
      const body = { kind: 'policy', name: TRUST_POLICY_NAME, resources: [] }
      return { bytes: encodeEnvelope(signedOver(body, keys.root)), message: /name: grapevine\/trust is reserved for the trust policy/ }
    },
    'a retired tombstone under the trust policy\'s name, signed by a root': () => {
      const body = { kind: 'retired', name: TRUST_POLICY_NAME }
      return { bytes: encodeEnvelope(signedOver(body, keys.root)), message: /name: grapevine\/trust is reserved for the trust policy/ }
    },
    'name mismatch between header and policy': () => {
      const fields = signedOver(web, keys.webAdmin, { name: 'web/other' })
      return { bytes: encodeEnvelope(fields), message: /envelope name "web\/other" does not match its policy's name "web\/nginx"/ }
    },
    'signature spelled non-canonically (spare bits set)': () => {
      const sig = goodFields.signature
      const last = sig.at(-1)!
      // The 4 spare bits of the last character: 'A'..'P', 'Q'..'f', 'g'..'v', 'w'..'_' decode alike.
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      const sibling = alphabet[alphabet.indexOf(last) + 1]!
      return { bytes: encodeEnvelope({ ...goodFields, signature: sig.slice(0, -1) + sibling }), message: /signature: expected a 64-byte Ed25519 signature/ }
    }
  },
  'bad-signature': {
    'signed by another key than the signer named': () => {
      const forged = resign(goodFields, keys.stranger)
      return { bytes: encodeEnvelope({ ...forged, signer: keys.webAdmin.id }), message: /does not verify for signer/ }
    },
    'version raised after signing': () => ({ bytes: encodeEnvelope({ ...goodFields, version: 8 }), message: /signature on web\/nginx v8 does not verify/ }),
    'issuedAt changed after signing': () => ({ bytes: encodeEnvelope({ ...goodFields, issuedAt: '2030-01-01T00:00:00.000Z' }), message: /does not verify/ }),
    'signature from another envelope': () => {
      const other = decodeEnvelope(signed(webWithVars, { key: keys.webAdmin, version: 8 }))
      return { bytes: encodeEnvelope({ ...goodFields, signature: other.signature }), message: /does not verify/ }
    },
    'signer swapped for a trusted root': () => ({ bytes: encodeEnvelope({ ...goodFields, signer: keys.root.id }), message: /does not verify/ })
  },
  'hash-mismatch': {
    'policy body changed after signing': () => {
      const body = { ...webWithVars, vars: { port: 9090 } }
      return { bytes: encodeEnvelope({ ...goodFields, policy: body }), message: /policy content of web\/nginx v7 does not match the signed hash/ }
    },
    'a field the schema would default, added after signing': () => {
      // The hash covers the policy as it travelled, so even a no-op change is caught.
      const body = { ...(goodFields.policy as object), description: 'added' }
      return { bytes: encodeEnvelope({ ...goodFields, policy: body }), message: /does not match the signed hash/ }
    },
    'extra whitespace inside the policy (its bytes are what the signed hash binds)': () => ({
      bytes: utf8(JSON.stringify(JSON.parse(text), null, 1)), message: /policy content of web\/nginx v7 does not match the signed hash$/
    }),
    'header signed over another policy\'s hash': () => {
      const fields = resign({ ...goodFields, hash: contentHash(configPolicy('web/nginx')) }, keys.webAdmin)
      return { bytes: encodeEnvelope(fields), message: /does not match the signed hash/ }
    }
  },
  untrusted: {
    'a key that is neither root nor admin': () => ({ bytes: signed(web, { key: keys.stranger }), message: /is not a root and not an admin/ }),
    'an admin key before any trust policy is known': () => ({ bytes: signed(web, { key: keys.webAdmin }), trust: new TrustStore([keys.root.id]), message: /not an admin/ })
  },
  revoked: {
    'a revoked key that is still listed as an admin': () => ({ bytes: signed(web, { key: keys.revokedAdmin }), message: /has been revoked/ }),
    'a revoked key signing the trust policy': () => ({ bytes: signed(trustPolicy([]), { key: keys.revokedAdmin }), message: /has been revoked/ })
  },
  'out-of-scope': {
    'a web/ admin signing app/settings': () => ({ bytes: signed(configPolicy('app/settings'), { key: keys.webAdmin }), message: /may publish "web\/", not "app\/settings"/ }),
    'a web/ admin signing the bare name web': () => ({ bytes: signed(configPolicy('web'), { key: keys.webAdmin }), message: /not "web"/ }),
    'a web/ admin signing webapp/x': () => ({ bytes: signed(configPolicy('webapp/x'), { key: keys.webAdmin }), message: /not "webapp\/x"/ }),
    'a restricted admin\'s exec': () => ({
      bytes: signed(configPolicy('web/site', [{ id: 'site', type: 'directory', path: '/var/www/site' }, { id: 'reload', type: 'exec', command: 'systemctl reload nginx' }]), { key: limitedAdmin }),
      trust: limitedTrust,
      message: new RegExp(`^web/site goes beyond its signer's limits: resources\\[1\\] \\(id "reload"\\): type exec is not allowed for key ${limitedAdmin.id} \\(web team, scopes "web/"; limits types: file, directory, config\\)$`)
    }),
    'a restricted admin\'s file outside its path prefixes': () => ({
      bytes: signed(configPolicy('web/site', [{ id: 'keys', type: 'file', path: '/root/.ssh/authorized_keys', content: 'ssh-ed25519 AAAA attacker' }]), { key: limitedAdmin }),
      trust: limitedTrust,
      message: /resources\[0\] \(id "keys"\): path \/root\/\.ssh\/authorized_keys is outside the allowed paths for key .* \(web team, scopes "web\/"; limits paths: \/var\/www\/\)/
    })
  },
  'not-root': {
    'an admin with scope * cannot replace the roots': () => ({
      bytes: signed(trustPolicy([{ key: keys.starAdmin.id, scopes: ['*'] }]), { key: keys.starAdmin }),
      message: /grapevine\/trust must be signed by a root key/
    }),
    'a scoped admin cannot sign the trust policy either': () => ({ bytes: signed(trustPolicy([]), { key: keys.webAdmin }), message: /must be signed by a root key/ }),
    'a stranger signing the trust policy': () => ({ bytes: signed(trustPolicy([]), { key: keys.stranger }), message: /must be signed by a root key/ })
  }
} satisfies Record<RejectionReason, Record<string, () => RejectionCase>>

describe('validateEnvelope', () => {
  it('has a table row for every rejection reason', () => {
    // The table is typed by the derived union; this pins the union itself so it cannot go empty.
    expectTypeOf<RejectionReason>().toEqualTypeOf<
      'too-large' | 'malformed' | 'invalid' | 'bad-signature' | 'hash-mismatch' | 'untrusted' | 'revoked' | 'out-of-scope' | 'not-root'
    >()
    expect(Object.keys(rejections)).toHaveLength(9)
  })

  it('accepts a well-formed envelope from an admin in scope and returns what was signed', () => {
    const env = validateEnvelope(good, trust)
    expect(env).toMatchObject({
      format: 1, name: 'web/nginx', version: 7, signer: keys.webAdmin.id, issuedAt: new Date(FIXED_NOW).toISOString(), hash: contentHash(webWithVars)
    })
    expect(env.policy).toEqual(webWithVars)
    expect(env.id).toBe(sha256Hex(good))
    expect(env.bytes).toBe(good)
  })

  it.each([
    ['a root, for any name', keys.root, 'app/settings'],
    ['a root, for the trust policy', keys.root, TRUST_POLICY_NAME],
    ['a * admin, for any other name', keys.starAdmin, 'db/postgres']
  ])('accepts %s', (_, key, name) => {
    const p = name === TRUST_POLICY_NAME ? trustPolicy([]) : configPolicy(name)
    expect(validateEnvelope(signed(p, { key }), trust).name).toBe(name)
  })

  describe.each(Object.entries(rejections))('rejects as %s', (reason, cases) => {
    it.each(Object.entries(cases as Record<string, () => RejectionCase>))('%s', (_, make) => {
      const c = make()
      let caught: unknown
      try {
        validateEnvelope(c.bytes, c.trust ?? trust, c.maxBytes === undefined ? {} : { maxBytes: c.maxBytes })
      } catch (err) {
        caught = err
      }
      expect(caught).toBeInstanceOf(EnvelopeError)
      expect((caught as EnvelopeError).reason).toBe(reason)
      expect((caught as Error).message).toMatch(c.message)
    })
  })

  // Cheapest check first: each row breaks two things and must report the earlier check.
  const badBody = { kind: 'policy', name: 'web/nginx', resources: [{ id: 'x', type: 'file', path: 'relative/path' }] }
  it.each([
    ['size before decoding', () => utf8('x'.repeat(100)), 100 - 1, 'too-large'],
    ['decoding before the header\'s shape', () => utf8('{"format":2,'), undefined, 'malformed'],
    ['the header\'s shape before the signature', () => encodeEnvelope({ ...goodFields, format: 2 }), undefined, 'invalid'],
    ['the signature before the canonical form', () => utf8(JSON.stringify({ ...goodFields, version: 8 }, null, 1)), undefined, 'bad-signature'],
    ['the signature before the content hash', () => encodeEnvelope({ ...goodFields, version: 8, policy: configPolicy('web/nginx') }), undefined, 'bad-signature'],
    ['the signature before the policy', () => encodeEnvelope({ ...signedOver(badBody, keys.webAdmin), version: 2 }), undefined, 'bad-signature'],
    ['trust before the content hash', () => encodeEnvelope({ ...decodeEnvelope(signed(web, { key: keys.stranger })), policy: webWithVars }), undefined, 'untrusted'],
    ['the name scope before the policy', () => encodeEnvelope(signedOver({ ...badBody, name: 'app/x' }, keys.webAdmin)), undefined, 'out-of-scope'],
    ['the content hash before the canonical form', () => utf8(JSON.stringify({ ...goodFields, policy: web }, null, 1)), undefined, 'hash-mismatch'],
    ['the canonical form before the policy', () => utf8(new TextDecoder().decode(encodeEnvelope(signedOver(badBody, keys.webAdmin))).replace('"format":1,', '"format": 1,')), undefined, 'malformed']
  ] as const)('checks %s', (_, make, maxBytes, reason) => {
    expect(() => validateEnvelope(make(), trust, maxBytes === undefined ? {} : { maxBytes }))
      .toThrow(expect.objectContaining({ reason }))
  })

  it('never consults trust for an envelope that fails an earlier check', () => {
    const calls: string[] = []
    const spy: Authorizer = { authorize: (signer) => { calls.push(signer) } }
    expect(() => validateEnvelope(encodeEnvelope({ ...goodFields, version: 9 }), spy)).toThrow(ANY_REJECTION)
    expect(calls).toEqual([])
    validateEnvelope(good, spy)
    expect(calls).toEqual([keys.webAdmin.id])
  })

  it('refuses every other spelling of every signature character', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const sig = goodFields.signature
    let tried = 0
    for (let i = 0; i < sig.length; i++) {
      for (const c of alphabet) {
        if (c === sig[i]) continue
        const bytes = encodeEnvelope({ ...goodFields, signature: sig.slice(0, i) + c + sig.slice(i + 1) })
        expect(() => validateEnvelope(bytes, acceptAll), `signature[${i}] = ${c}`).toThrow(ANY_REJECTION)
        tried++
      }
    }
    expect(tried).toBe(86 * 63)
  })
})

describe('validateEnvelope properties', () => {
  const samples = [
    good,
    signed(configPolicy('a'), { key: keys.root }),
    signed(trustPolicy([{ key: keys.webAdmin.id, scopes: ['web/'] }], [keys.revokedAdmin.id]), { key: keys.root, version: 3 })
  ]
  const mutation = fc.record({
    sample: fc.constantFrom(...samples.keys()),
    op: fc.constantFrom('flip', 'insert', 'delete'),
    at: fc.nat(),
    value: fc.integer({ min: 1, max: 255 })
  })
  const mutate = (bytes: Uint8Array, op: string, at: number, value: number): Uint8Array => {
    const b = [...bytes]
    if (op === 'flip') { const i = at % b.length; b[i] = b[i]! ^ value }
    else if (op === 'insert') b.splice(at % (b.length + 1), 0, value - 1)
    else b.splice(at % b.length, 1)
    return Uint8Array.from(b)
  }

  it('refuses any single-byte change (flip, insert or delete anywhere) with a named error', () => {
    // Even with an authorizer that trusts everyone: integrity alone must catch it.
    for (const s of samples) expect(validateEnvelope(s, acceptAll).bytes).toBe(s)
    fc.assert(fc.property(mutation, ({ sample, op, at, value }) => {
      const bytes = mutate(samples[sample]!, op, at, value)
      expect(() => validateEnvelope(bytes, acceptAll)).toThrow(ANY_REJECTION)
    }), { numRuns: 2000 })
  })

  it('round-trips any valid policy: sign then validate gives back the policy and header', () => {
    fc.assert(fc.property(
      arbPolicy,
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 0, max: Date.UTC(9999, 11, 31) }),
      (p, version, now) => {
        const bytes = signed(p, { key: keys.root, version, now })
        const env = validateEnvelope(bytes, trust)
        // The same policy as JSON data: JSON has no -0, so a -0 in vars arrives as 0 (with the same hash).
        expect(env.policy).toEqual(JSON.parse(canonicalJson(p)))
        expect(env).toMatchObject({ format: 1, name: p.name, version, signer: keys.root.id, issuedAt: new Date(now).toISOString(), hash: contentHash(p) })
        expect(env.id).toBe(sha256Hex(bytes))
        // The bytes are already canonical: re-encoding what was decoded changes nothing.
        expect(canonicalBytes(decodeEnvelope(bytes))).toEqual(bytes)
      }
    ), { numRuns: 300 })
  })
})
