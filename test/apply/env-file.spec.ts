import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { spawnSync } from 'node:child_process'
import { parseEnv, stringifyEnv } from '../../src/apply/env-file.js'

const arbName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/)
/** Any text a file can hold; NUL cannot be in an environment variable. */
const arbValue = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: fc.constantFrom('a', ' ', '"', "'", '\\', '$', '`', '\n', '#', '=', '\t'), maxLength: 20 }),
  fc.integer().map(String)
).filter((s) => !s.includes('\0') && !s.includes('\r'))

describe('env files', () => {
  it('reads back exactly what it writes', () => {
    fc.assert(fc.property(fc.dictionary(arbName, arbValue, { maxKeys: 8 }), (data) => {
      expect(parseEnv(stringifyEnv(data))).toEqual(data)
    }))
  })

  it('writes what /bin/sh reads the same way', () => {
    fc.assert(fc.property(fc.dictionary(arbName.map((n) => `V_${n}`), arbValue, { minKeys: 1, maxKeys: 4 }), (data) => {
      const script = `${stringifyEnv(data)}\n${Object.keys(data).map((k) => `printf '%s\\0' "$${k}"`).join('\n')}`
      const out = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: {} })
      expect(out.stdout.split('\0').slice(0, -1)).toEqual(Object.values(data))
    }), { numRuns: 40 })
  })

  it.each([
    ['comments, export and quotes', '# x\nexport A=1\nB=\'two words\' # note\nC="a \\"b\\" \\$c"\n\nD=', { A: '1', B: 'two words', C: 'a "b" $c', D: '' }],
    ['backslash escapes outside quotes', 'A=a\\ b', { A: 'a b' }]
  ])('reads %s', (_name, text, expected) => {
    expect(parseEnv(text)).toEqual(expected)
  })

  it.each([
    ['a line without =', 'JUST_A_WORD\n'],
    ['an unterminated quote', 'A="open\n'],
    ['a substitution', 'A=$HOME\n'],
    ['text after the value', 'A=1 2\n']
  ])('refuses %s', (_name, text) => {
    expect(() => parseEnv(text)).toThrow(SyntaxError)
  })
})
