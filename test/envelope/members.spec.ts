import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { topLevelMembers } from '../../src/envelope/members.js'

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array, from: number, to: number): string => new TextDecoder().decode(b.subarray(from, to))

describe('topLevelMembers', () => {
  it('finds every member of any JSON object, however its values nest or it is spaced', () => {
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 6 })), fc.constantFrom(undefined, 1, '\t'), (obj, space) => {
      const bytes = utf8(JSON.stringify(obj, null, space))
      const members = topLevelMembers(bytes)
      if (typeof members === 'string') throw new Error(members)
      // JSON.parse keeps the last of repeated keys; JSON.stringify never repeats one.
      expect(Object.fromEntries(members.map((m) => [JSON.parse(text(bytes, m.keyStart, m.keyEnd)), JSON.parse(text(bytes, m.valueStart, m.valueEnd))]))).toEqual(JSON.parse(JSON.stringify(obj)))
    }), { numRuns: 500 })
  })

  it('never throws or hangs on arbitrary bytes, and refuses what is not an object', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const members = topLevelMembers(bytes)
      if (bytes.length > 0 && typeof members !== 'string') expect(new TextDecoder().decode(bytes).trimStart().startsWith('{')).toBe(true)
    }), { numRuns: 2000 })
  })

  it.each([
    ['', 'expected "{" at byte 0'],
    ['[1]', 'expected "{" at byte 0'],
    ['{"a":1', 'expected "," or "}" at byte 6'],
    ['{"a":[[[', 'unterminated value at byte 5'],
    ['{"a', 'unterminated string at byte 1'],
    ['{"a" 1}', 'expected ":" at byte 5'],
    ['{1:2}', 'expected a member name at byte 1'],
    ['{"a":}', 'unterminated value at byte 5'],
    ['{} x', 'unexpected bytes after the object at byte 2']
  ])('says why %j is not an object', (input, reason) => {
    expect(topLevelMembers(utf8(input))).toBe(reason)
  })

  it('steps over a value a million levels deep', () => {
    const bytes = utf8(`{"a":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)},"b":"}"}`)
    const members = topLevelMembers(bytes)
    expect(typeof members === 'string' ? members : members.map((m) => text(bytes, m.keyStart, m.keyEnd))).toEqual(['"a"', '"b"'])
  })
})
