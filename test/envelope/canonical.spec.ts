import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { canonicalBytes, canonicalJson, contentHash, sha256Hex } from '../../src/envelope/index.js'

/** Rebuilds every object in `value` with its keys in another order, chosen by `order`. */
function reorder (value: unknown, order: (keys: string[]) => string[]): unknown {
  if (Array.isArray(value)) return value.map((v) => reorder(v, order))
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>
    // fromEntries defines own properties, so even a "__proto__" key stays a key.
    return Object.fromEntries(order(Object.keys(obj)).map((k) => [k, reorder(obj[k], order)]))
  }
  return value
}

describe('canonicalJson (RFC 8785)', () => {
  it.each([
    ['keys sorted by UTF-16 code units', { b: 1, a: 2, '\u20ac': 3, '\r': 4, A: 5 }, '{"\\r":4,"A":5,"a":2,"b":1,"€":3}'],
    ['nested objects and arrays keep array order', { z: [3, { y: 1, x: 2 }], a: null }, '{"a":null,"z":[3,{"x":2,"y":1}]}'],
    ['numbers in their shortest ECMAScript form', [1e21, 1e-7, 0.1, -0, 100, 1.5e300], '[1e+21,1e-7,0.1,0,100,1.5e+300]'],
    ['strings with minimal escapes', ['\u0000', '"\\', '\u2028', 'é'], '["\\u0000","\\"\\\\","\u2028","é"]'],
    // The example from RFC 8785 section 3.2.2, with its non-ASCII keys.
    ['RFC 8785 sort example', { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' },
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","😀":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}']
  ])('%s', (_, value, expected) => {
    expect(canonicalJson(value)).toBe(expected)
    expect(new TextDecoder().decode(canonicalBytes(value))).toBe(expected)
  })

  it('refuses what JSON cannot hold instead of guessing', () => {
    expect(() => canonicalJson(undefined)).toThrow()
    expect(() => canonicalJson(Number.NaN)).toThrow()
    expect(() => canonicalJson(Infinity)).toThrow()
  })

  it('does not depend on key order (property)', () => {
    fc.assert(fc.property(fc.jsonValue(), fc.func(fc.integer()), (value, rank) => {
      const shuffled = reorder(value, (keys) => [...keys].sort((x, y) => rank(x) - rank(y) || (x < y ? 1 : -1)))
      const reversed = reorder(value, (keys) => [...keys].reverse())
      const c = canonicalJson(value)
      expect(canonicalJson(shuffled)).toBe(c)
      expect(canonicalJson(reversed)).toBe(c)
      expect(contentHash(shuffled)).toBe(contentHash(value))
      // Not a constant: it still encodes the same value.
      expect(JSON.parse(c)).toEqual(JSON.parse(JSON.stringify(value)))
    }), { numRuns: 500 })
  })

  it('is a fixed point: decoding and re-encoding canonical text changes nothing (property)', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      const c = canonicalJson(value)
      expect(canonicalJson(JSON.parse(c))).toBe(c)
    }), { numRuns: 300 })
  })

  it('hashes the canonical bytes: sha256:<hex>', () => {
    expect(contentHash({ b: 1, a: 2 })).toBe(`sha256:${sha256Hex('{"a":2,"b":1}')}`)
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })
})
