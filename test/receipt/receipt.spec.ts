import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonicalJson, generateSigningKey } from '../../src/envelope/index.js'
import { MAX_ADMISSION_BYTES, MAX_ADMISSION_TAGS, openAdmission, signAdmission } from '../../src/admission/index.js'
import {
  boundFailures, InvalidReceiptError, signReport, validateReport, MAX_PRESENCE_POLICIES, MAX_RECEIPT_BYTES,
  MAX_RECEIPT_ERROR_CHARS, MAX_RECEIPT_FAILURES, type NodeReport, type Presence, type Receipt
} from '../../src/receipt/index.js'

const key = generateSigningKey()
/** An age X25519 recipient, as a node announces its encryption key. */
const RECIPIENT = `age1${'qpzry9x8gf2tvdw0s3jn54khce6mua7l'.repeat(2).slice(0, 58)}`
const other = generateSigningKey()
const HASH = `sha256:${'ab'.repeat(32)}`
const AT = '2025-01-02T03:04:05.000Z'
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

function receipt (extra: Partial<Receipt> = {}): Receipt {
  return {
    format: 1, kind: 'receipt', node: 'node-a', key: key.id, name: 'web-1', tags: { role: 'web' }, at: AT,
    policy: 'web/nginx', version: 3, hash: HASH, outcome: 'applied', changed: 2, failures: [], failedCount: 0, durationMs: 41.5,
    ...extra
  }
}

function presence (extra: Partial<Presence> = {}): Presence {
  return { format: 1, kind: 'presence', node: 'node-a', key: key.id, name: 'web-1', tags: {}, at: AT, policies: [['web/nginx', 3, HASH, 'applied']], ...extra }
}

const failure = (i: number, error = 'EACCES: permission denied'): Receipt['failures'][number] => ({ resource: `file-${i}`, error })
const policies = (n: number): Presence['policies'] => Array.from({ length: n }, (_, i) => [`site/p${i}`, i + 1, HASH, 'applied'])
const tags = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, 'x']))

/** Signs anything report-shaped, valid or not, so the validator's schema is what refuses it. */
const signAny = (body: unknown): Uint8Array => signReport(body as NodeReport, key)

describe('signReport and validateReport', () => {
  it.each<[string, NodeReport]>([
    ['a receipt', receipt()],
    ['a failed receipt listing its failures', receipt({ outcome: 'failed', failures: [failure(1), failure(2)], failedCount: 7 })],
    ['a presence beacon', presence()],
    ['a presence beacon holding nothing', presence({ policies: [] })],
    ['a receipt announcing the node\'s encryption key', receipt({ recipient: RECIPIENT })],
    ['a beacon announcing it', presence({ recipient: RECIPIENT })],
    ['a sealed receipt saying why', receipt({ outcome: 'sealed', changed: 0, failures: [{ resource: '(secrets)', error: 'not a recipient: sealed to 2 nodes, not to this one' }], failedCount: 1 })]
  ])('round-trip %s', (_, body) => {
    expect(validateReport(signReport(body, key))).toEqual(body)
  })

  it('sign canonical JSON: the same report always gives the same bytes', () => {
    const a = signReport(receipt(), key)
    const b = signReport(Object.fromEntries(Object.entries(receipt()).reverse()) as unknown as Receipt, key)
    expect(b).toEqual(a)
    expect(new TextDecoder().decode(a)).toBe(canonicalJson(JSON.parse(new TextDecoder().decode(a))))
  })
})

describe('bounds', () => {
  // Each bound at its limit is taken and one past it refused, both signed honestly.
  it.each<[string, unknown, unknown]>([
    ['failures listed', receipt({ failures: Array.from({ length: MAX_RECEIPT_FAILURES }, (_, i) => failure(i)) }), receipt({ failures: Array.from({ length: MAX_RECEIPT_FAILURES + 1 }, (_, i) => failure(i)) })],
    ['characters of one error', receipt({ failures: [failure(1, 'e'.repeat(MAX_RECEIPT_ERROR_CHARS))] }), receipt({ failures: [failure(1, 'e'.repeat(MAX_RECEIPT_ERROR_CHARS + 1))] })],
    ['characters of a failing resource', receipt({ failures: [{ resource: 'r'.repeat(200), error: 'x' }] }), receipt({ failures: [{ resource: 'r'.repeat(201), error: 'x' }] })],
    ['policies per presence beacon', presence({ policies: policies(MAX_PRESENCE_POLICIES) }), presence({ policies: policies(MAX_PRESENCE_POLICIES + 1) })],
    ['tags', receipt({ tags: tags(64) }), receipt({ tags: tags(65) })],
    ['characters of a node name', receipt({ name: 'n'.repeat(200) }), receipt({ name: 'n'.repeat(201) })],
    ['characters of a node id', receipt({ node: 'n'.repeat(128) }), receipt({ node: 'n'.repeat(129) })],
    ['a version', receipt({ version: 1 }), receipt({ version: 0 })],
    ['a count of changes', receipt({ changed: 0 }), receipt({ changed: -1 })]
  ])('%s', (_, atLimit, pastLimit) => {
    expect(validateReport(signAny(atLimit))).toEqual(atLimit)
    expect(() => validateReport(signAny(pastLimit))).toThrow(InvalidReceiptError)
    expect(() => validateReport(signAny(pastLimit))).toThrow(/^receipt is invalid: /)
  })

  it(`refuses more than ${MAX_RECEIPT_BYTES} bytes before decoding them`, () => {
    const json = (n: number): Uint8Array => utf8(`"${' '.repeat(n - 2)}"`)
    expect(() => validateReport(json(MAX_RECEIPT_BYTES))).toThrow(/^receipt is invalid/)
    expect(() => validateReport(json(MAX_RECEIPT_BYTES + 1))).toThrow(`receipt is ${MAX_RECEIPT_BYTES + 1} bytes, over the ${MAX_RECEIPT_BYTES}-byte limit`)
  })

  it.each<[string, unknown]>([
    ['an unknown kind', { ...presence(), kind: 'census' }],
    ['an unknown outcome', receipt({ outcome: 'exploded' as Receipt['outcome'] })],
    ['a field the schema does not know', { ...receipt(), extra: 1 }],
    ['format 2', { ...receipt(), format: 2 }],
    ['a time that is not ISO 8601', receipt({ at: 'yesterday' })],
    ['a bad policy name', receipt({ policy: 'Web Server' })],
    ['a bad hash', receipt({ hash: 'sha256:00' })],
    ['a key that is not a key id', receipt({ key: 'ed25519:short' })],
    ['an encryption key that is not an age recipient', receipt({ recipient: 'age1short' })],
    ['an age identity (the secret half) as the encryption key', receipt({ recipient: `AGE-SECRET-KEY-1${'Q'.repeat(58)}` })]
  ])('refuses %s', (_, body) => {
    expect(() => validateReport(signAny(body))).toThrow(InvalidReceiptError)
  })
})

describe('the size bound, with the encryption key in every report', () => {
  // MAX_RECEIPT_BYTES is 8 KiB for the report and 4 KiB for the certificate it carries; the
  // recipient (76 bytes with its key in JSON) must not push the largest receipt a node signs over it.
  it('the largest receipt a node signs (every failure at its bounds, a long name, a certificate near its bound) still fits, recipient included', () => {
    const enroller = generateSigningKey()
    // The largest certificate the schema allows: every tag it may have, with the longest key and value.
    const tags = Object.fromEntries(Array.from({ length: MAX_ADMISSION_TAGS }, (_, i) => [`tag-${i}`.padEnd(64, 'x'), 'v'.repeat(128)]))
    const cert = signAdmission({ peer: 'p'.repeat(128), name: 'n'.repeat(200), tags, key: enroller, issuedAt: Date.parse(AT), expires: Date.parse(AT) + 1 })
    expect(cert.byteLength).toBeLessThanOrEqual(MAX_ADMISSION_BYTES)
    const failures = boundFailures(Array.from({ length: MAX_RECEIPT_FAILURES + 5 }, (_, i) => ({ resource: `r${i}`.padEnd(300, 'r'), error: '語'.repeat(500) })))
    const largest = (recipient?: string): Uint8Array => signReport(receipt({
      node: 'p'.repeat(128), name: 'n'.repeat(200), policy: `${'a'.repeat(60)}/${'b'.repeat(60)}`, outcome: 'failed', failures, failedCount: 15,
      admission: openAdmission(cert), ...(recipient !== undefined ? { recipient } : {})
    }), key)
    const without = largest()
    const withKey = largest(RECIPIENT)
    expect(withKey.byteLength - without.byteLength).toBe(77)
    expect(withKey.byteLength).toBeLessThanOrEqual(MAX_RECEIPT_BYTES)
    expect(validateReport(withKey)).toMatchObject({ recipient: RECIPIENT })
  })
})

describe('a tampered report is refused', () => {
  const signed = (): Record<string, unknown> => JSON.parse(new TextDecoder().decode(signReport(receipt({ recipient: RECIPIENT }), key))) as Record<string, unknown>
  const encode = (fields: Record<string, unknown>): Uint8Array => utf8(JSON.stringify(fields))

  it.each<[string, (r: Record<string, unknown>) => Record<string, unknown>, RegExp]>([
    ['an outcome changed', (r) => ({ ...r, outcome: 'failed' }), /signature does not verify for node-a/],
    ['a version raised', (r) => ({ ...r, version: 4 }), /signature does not verify/],
    ['a node renamed', (r) => ({ ...r, node: 'node-b' }), /signature does not verify for node-b/],
    ['another key claimed', (r) => ({ ...r, key: other.id }), /signature does not verify/],
    ['a signature from another key', (r) => ({ ...r, signature: JSON.parse(new TextDecoder().decode(signReport(receipt(), other))).signature }), /signature does not verify/],
    ['the signature removed', ({ signature: _, ...r }) => r, /receipt is invalid/],
    ['a truncated signature', (r) => ({ ...r, signature: (r.signature as string).slice(1) }), /receipt is invalid/],
    // A relay must not swap the key publishers seal a node's secrets to.
    ['the encryption key swapped', (r) => ({ ...r, recipient: `age1${'q'.repeat(58)}` }), /signature does not verify for node-a/],
    ['the encryption key removed', ({ recipient: _, ...r }) => r, /signature does not verify for node-a/]
  ])('%s', (_, tamper, message) => {
    expect(() => validateReport(encode(signed()))).not.toThrow()
    expect(() => validateReport(encode(tamper(signed())))).toThrow(InvalidReceiptError)
    expect(() => validateReport(encode(tamper(signed())))).toThrow(message)
  })
})

describe('boundFailures', () => {
  it.each<[string, Array<{ resource: string, error: string }>, Receipt['failures']]>([
    ['leaves a short list alone', [failure(1), failure(2)], [failure(1), failure(2)]],
    ['keeps the first MAX_RECEIPT_FAILURES', Array.from({ length: 15 }, (_, i) => failure(i)), Array.from({ length: MAX_RECEIPT_FAILURES }, (_, i) => failure(i))],
    ['keeps an error of exactly the limit', [failure(1, 'e'.repeat(MAX_RECEIPT_ERROR_CHARS))], [failure(1, 'e'.repeat(MAX_RECEIPT_ERROR_CHARS))]],
    ['cuts a longer error and marks the cut', [failure(1, 'e'.repeat(1_000))], [failure(1, `${'e'.repeat(MAX_RECEIPT_ERROR_CHARS - 3)}...`)]],
    ['cuts a long resource id', [{ resource: 'r'.repeat(300), error: 'x' }], [{ resource: 'r'.repeat(200), error: 'x' }]],
    ['cuts a resource id before a character that would straddle the limit', [{ resource: `${'r'.repeat(199)}😀`, error: 'x' }], [{ resource: 'r'.repeat(199), error: 'x' }]],
    ['cuts an error between characters, never inside a surrogate pair', [failure(1, `${'e'.repeat(396)}😀 and more`)], [failure(1, `${'e'.repeat(396)}...`)]],
    ['bounds multi-byte text by its bytes', [failure(1, '语'.repeat(200))], [failure(1, `${'语'.repeat(132)}...`)]],
    ['bounds text JSON escapes by its escaped bytes', [failure(1, '\u001b'.repeat(100))], [failure(1, `${'\u001b'.repeat(66)}...`)]],
    ['makes a lone surrogate U+FFFD', [failure(1, 'half \uD800 a pair')], [failure(1, 'half \uFFFD a pair')]]
  ])('%s', (_, input, expected) => {
    expect(boundFailures(input)).toEqual(expected)
  })

  it('keeps any receipt within every bound, whatever its failures say', () => {
    // Multi-byte characters and characters JSON escapes (stderr of a failed command: colour codes, newlines).
    const text = fc.string({ unit: fc.constantFrom('a', 'é', '语', '😀', '\n', '\u001b', '"', '\\'), maxLength: 500, size: 'max' })
    fc.assert(fc.property(fc.array(fc.record({ resource: text, error: text }), { maxLength: 12, size: 'max' }), (failures) => {
      const body = receipt({ outcome: 'failed', failures: boundFailures(failures), failedCount: failures.length, recipient: RECIPIENT })
      const bytes = signReport(body, key)
      expect(bytes.byteLength).toBeLessThanOrEqual(MAX_RECEIPT_BYTES)
      expect(validateReport(bytes)).toEqual(body)
    }), { numRuns: 50 })
  })
})

describe('validateReport on arbitrary input', () => {
  const valid = signReport(receipt({ failures: [failure(1)], failedCount: 1 }), key)

  it('only ever throws InvalidReceiptError, on any bytes', () => {
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 2_000 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => utf8(JSON.stringify(v) ?? 'null')),
      // Report-shaped objects with arbitrary values in the known fields.
      fc.record({ format: fc.jsonValue(), kind: fc.constantFrom('receipt', 'presence', 'x'), node: fc.jsonValue(), key: fc.jsonValue(), signature: fc.jsonValue(), policies: fc.jsonValue() }, { requiredKeys: [] })
        .map((v) => utf8(JSON.stringify({ ...receipt(), ...v })))
    )
    fc.assert(fc.property(input, (bytes) => {
      try {
        const report = validateReport(bytes)
        expect(['receipt', 'presence']).toContain(report.kind)
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidReceiptError)
      }
    }), { numRuns: 500 })
  })

  it('a report with any byte changed is refused, or reads as the same report', () => {
    const original = validateReport(valid)
    fc.assert(fc.property(fc.nat({ max: valid.byteLength - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
      const bytes = valid.slice()
      bytes[at] = bytes[at]! ^ xor
      try {
        // Only the signature's last character has spare bits: base64url of 64 bytes ends in 4 unused ones.
        expect(validateReport(bytes)).toEqual(original)
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidReceiptError)
      }
    }), { numRuns: 1_000 })
  })
})

describe('a presence beacon\'s facts (docs/facts.md)', () => {
  const FACTS = { os: { family: 'debian', release: { full: '12.11', major: '12' } }, processors: { count: 4 }, init: 'other', role: 'web' }
  const signed = (): Record<string, unknown> => JSON.parse(new TextDecoder().decode(signReport(presence({ facts: FACTS }), key))) as Record<string, unknown>
  const encode = (fields: Record<string, unknown>): Uint8Array => utf8(JSON.stringify(fields))

  it('are carried inside the signed body', () => {
    expect(validateReport(signReport(presence({ facts: FACTS }), key))).toMatchObject({ kind: 'presence', facts: FACTS })
  })

  it.each<[string, (f: Record<string, unknown>) => Record<string, unknown>]>([
    ['a fact changed', (f) => ({ ...f, os: { family: 'redhat', release: { full: '12.11', major: '12' } } })],
    ['a fact added', (f) => ({ ...f, role: 'db' })],
    ['a fact removed', ({ role: _, ...f }) => f]
  ])('%s: the signature does not verify', (_, tamper) => {
    const r = signed()
    expect(() => validateReport(encode(r))).not.toThrow()
    expect(() => validateReport(encode({ ...r, facts: tamper(r.facts as Record<string, unknown>) }))).toThrow(/signature does not verify for node-a/)
    const { facts: _f, ...without } = r
    expect(() => validateReport(encode(without))).toThrow(/signature does not verify/)
  })

  it.each<[string, Record<string, unknown>]>([
    ['over 2048 bytes', { big: 'x'.repeat(2048) }],
    ['nested deeper than 8', { a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } }],
    ['a list, not a map', [1, 2] as unknown as Record<string, unknown>]
  ])('facts %s are refused', (_, facts) => {
    expect(() => validateReport(signAny(presence({ facts })))).toThrow(InvalidReceiptError)
  })
})
