import fc from 'fast-check'
import { stringify } from 'yaml'
import { describe, expect, it } from 'vitest'
import { InvalidPolicyError } from '../../src/policy/index.js'
import { outcome as parseOutcome, type Outcome } from '../helpers/parse-outcome.js'

// A YAML policy without directives, tags, anchors or aliases is read by js-yaml (the fast
// path); the rest by the yaml library. These tests hold the fast path to what the yaml path
// reads from the same text: a `%YAML 1.2` directive, which changes nothing for a YAML 1.2
// parser, sends the text the yaml way, and the report's lines are shifted back.

const outcome = (text: string, file = 'p.yaml'): Outcome => parseOutcome(text, file)

const DIRECTIVE = '%YAML 1.2\n---\n'

function viaYamlLibrary (text: string): Outcome {
  const out = outcome(DIRECTIVE + text)
  if ('policy' in out) return out
  return { problems: out.problems.map((p) => p.line === undefined ? p : { ...p, line: p.line - 2 }) }
}

const withVars = (vars: string): string => `name: app/x\nvars:\n${vars}\nresources:\n  - { id: f, type: file, path: /x, content: "{{ vars.a }}" }\n`

/** Scalars whose type depends on the schema: YAML 1.1 and 1.2, and each library's extensions, read these differently. */
const EDGE_SCALARS = [
  '0b101', '-0x1F', '0x1F', '0o17', '017', '0777', '+12', '-0', '1_000', '1e3', '1E3', '1e999', '-1e999', '.5', '-.5', '+.5', '1.', '5.e3',
  '.inf', '-.Inf', '+.INF', '.nan', '.NaN', '.NAN', 'nan', 'inf', '~', 'null', 'Null', 'NULL', 'nULL', 'true', 'True', 'TRUE', 'tRUE',
  'yes', 'no', 'on', 'off', 'y', 'n', 'Yes', '2001-12-14t21:59:43.10-05:00', '2002-12-14', '12:30:45', '1:20', '0.1.2',
  '9007199254740993', '123456789012345678901234567890', '0x', '0o', '0b', '-', '--', '=', '<<', '"quoted"', "'single'",
  '?', ':', '? x', '[a]', '{a: b}', '[]', '{}', '? [a]', '? {a: b}',
  'a: b', 'a #not a comment', 'x # a comment', '@x', '`x', '%x', '|', '>', ' lead', 'trail ', 'tab\there', 'é ☃ 😀'
]

describe('YAML policies (fast path)', () => {
  it('a plain policy takes the same values either way', () => {
    const text = withVars('  a: hello\n  port: 80\n  list: [1, two, null, true, -0.5e3]\n  nested: { x: [ { y: z } ] }\n  text: |\n    line one\n    line two\n')
    const fast = outcome(text)
    expect(fast).toEqual(viaYamlLibrary(text))
    expect(fast).toMatchObject({ policy: { vars: { port: 80, list: [1, 'two', null, true, -500], text: 'line one\nline two\n' } } })
  })

  it.each(EDGE_SCALARS)('reads the plain scalar %j as the yaml path does', (scalar) => {
    for (const text of [withVars(`  a: ${scalar}`), withVars(`  a: [${scalar}]`), withVars(`  a: { k: ${scalar} }`), withVars(`  ${scalar}: a`)]) {
      expect(outcome(text)).toEqual(viaYamlLibrary(text))
    }
  })

  // Each row: text, and a line of the report exactly as a person sees it (file:line:col: path: message).
  it.each([
    ['a repeated key', 'name: a\nname: b\nresources: []\n', 'p.yaml:2:1: Map keys must be unique'],
    ['bad indentation', 'name: a\nresources:\n  - id: f\n   type: file\n', /^p\.yaml:4:/],
    ['a wrong type, located', 'name: a\nresources:\n  - { id: f, type: file, path: /x, mode: 644 }\n', 'p.yaml:3:42: resources[0].mode: expected an octal string like "0644", got 644'],
    ['an unknown field, located', 'name: a\nresources: []\ncolour: blue\n', 'p.yaml:3:9: colour: unknown field'],
    ['two documents', 'name: a\nresources: []\n---\nname: b\n', undefined],
    ['a second document end marker', 'name: a\nresources: []\n...\n...\n', 'p.yaml:4:1: Source contains multiple documents; please use YAML.parseAllDocuments()'],
    ['text after a closing quote', 'name: a\nresources:\n- ""key: value\n', /^p\.yaml:3:5: Unexpected scalar/],
    ['a last line of only a tab', 'name: a\nresources:\n\t', /^p\.yaml:3:1: Tabs are not allowed/],
    ['a lone surrogate', 'name: a\ndescription: "x \\ud800 y"\nresources: []\n', 'p.yaml:2:14: description: the string contains a lone UTF-16 surrogate, which has no UTF-8 encoding']
  ] as Array<[string, string, string | RegExp | undefined]>)('reports %s as the yaml path does', (_, text, expected) => {
    const out = outcome(text)
    expect(out).toEqual(viaYamlLibrary(text))
    if (expected !== undefined) {
      if ('policy' in out) throw new Error('expected the policy to be refused')
      const lines = new InvalidPolicyError('p.yaml', out.problems).message.split('\n')
      expect(lines).toContainEqual(typeof expected === 'string' ? expected : expect.stringMatching(expected))
    }
  })

  it('refuses an empty file as the yaml path does', () => {
    expect(outcome('')).toEqual({ problems: [{ path: '', line: 1, message: 'expected a mapping with name and resources, got null' }] })
    expect(outcome('# only a comment\n')).toEqual(outcome(DIRECTIVE))
  })

  it('leaves anchors, aliases and tags to the yaml path, which reads them as before', () => {
    const text = withVars('  base: &b { x: 1 }\n  copy: *b\n  s: !!str 12\n  a: ok')
    expect(outcome(text)).toMatchObject({ policy: { vars: { base: { x: 1 }, copy: { x: 1 }, s: '12' } } })
  })

  it('leaves __proto__ keys to the yaml path, which refuses them with the line (they were dropped), polluting nothing', () => {
    const text = withVars('  __proto__: { polluted: true }\n  a: ok')
    expect(outcome(text)).toEqual({ problems: [expect.objectContaining({ path: 'vars.__proto__', line: 3, message: expect.stringMatching(/__proto__/) })] })
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('agrees with the yaml path on data written in every YAML style (property)', () => {
    const options = fc.record({
      collectionStyle: fc.constantFrom('any', 'block', 'flow'),
      defaultStringType: fc.constantFrom('PLAIN', 'QUOTE_DOUBLE', 'QUOTE_SINGLE', 'BLOCK_LITERAL', 'BLOCK_FOLDED'),
      defaultKeyType: fc.constantFrom(null, 'PLAIN', 'QUOTE_DOUBLE'),
      lineWidth: fc.constantFrom(0, 20, 80),
      indent: fc.constantFrom(2, 4)
    }) as fc.Arbitrary<Parameters<typeof stringify>[2] & object>
    const value = fc.jsonValue({ maxDepth: 3 })
    fc.assert(fc.property(fc.dictionary(fc.string(), value, { maxKeys: 5 }), options, (vars, opts) => {
      const body = stringify({ vars: { a: 'x', ...vars } }, { ...opts, aliasDuplicateObjects: false })
      const text = `name: app/x\n${body}resources:\n  - { id: f, type: file, path: /x, content: "{{ vars.a }}" }\n`
      expect(outcome(text)).toEqual(viaYamlLibrary(text))
    }), { numRuns: 500 })
  })

  it('agrees with the yaml path on arbitrary scalars written raw (property)', () => {
    const scalar = fc.oneof(fc.constantFrom(...EDGE_SCALARS), fc.string({ maxLength: 12 }), fc.double().map(String), fc.integer().map((n) => n.toString(16)))
    fc.assert(fc.property(scalar, fc.constantFrom('  a: %s', '  a: [%s, x]', '  a: { k: %s }', '  a:\n    - %s'), (s, shape) => {
      const text = withVars(shape.replace('%s', s))
      expect(outcome(text)).toEqual(viaYamlLibrary(text))
    }), { numRuns: 2000 })
  })

  it('agrees with the yaml path on YAML-shaped token soup, valid or not (property)', () => {
    const token = fc.constantFrom(
      'name: a\n', 'resources:\n', 'resources: ', 'vars:\n', '  a: ', '  b:\n', '    - ', '- ', '  ', '\n', ': ', ', ', '[', ']', '{', '}',
      '? ', '|\n', '>-\n', '|+\n', '# c\n', '"', "'", '\\', '\t', 'x', '1', '0x1F', '1e3', '.nan', 'null', '~', 'true', '"\\u00e9"', '\u00e9',
      '\ufeff', '...\n', '---\n', '- { id: f, type: file, path: /x, content: "{{ vars.a }}" }\n', 'key: value\n', '  - a\n', '    ', '"a\nb"',
      "'it''s'", '\r\n', '#', ' #x'
    )
    fc.assert(fc.property(fc.array(token, { maxLength: 30 }).map((t) => `name: a\n${t.join('')}`), (text) => {
      expect(outcome(text)).toEqual(viaYamlLibrary(text))
    }), { numRuns: 3000 })
  })
})
