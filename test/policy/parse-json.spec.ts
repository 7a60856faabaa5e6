import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { InvalidPolicyError } from '../../src/policy/index.js'
import { outcome as parseOutcome, type Outcome } from '../helpers/parse-outcome.js'

// A policy that is a JSON object takes a fast path (JSON.parse, and the YAML document only
// to locate problems). These tests hold it to what the YAML path reports for the same text.

const outcome = (text: string, file = 'p.json'): Outcome => parseOutcome(text, file)

/** The same text through the YAML path: a comment line first means it is not JSON; lines are shifted back. */
function viaYaml (text: string): Outcome {
  const out = outcome(`#\n${text}`)
  if ('policy' in out) return out
  return { problems: out.problems.map((p) => p.line === undefined ? p : { ...p, line: p.line - 1 }) }
}

const messageOf = (text: string): string[] => {
  const out = outcome(text)
  if ('policy' in out) throw new Error('expected the policy to be refused')
  return new InvalidPolicyError('p.json', out.problems).message.split('\n')
}

const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n'

describe('JSON policies (fast path)', () => {
  it('parse to the same policy as the YAML path', () => {
    const text = json({ name: 'app/x', vars: { port: 80, list: [1, 'two', null, true, -0.5e3] }, resources: [{ id: 'f', type: 'file', path: '/x', content: 'é \u2028 😀', mode: '0644' }] })
    expect(outcome(text)).toEqual(viaYaml(text))
    expect(outcome(text)).toMatchObject({ policy: { kind: 'policy', name: 'app/x' } })
  })

  // Each row: text, and a line of the report exactly as a person sees it (file:line:col: path: message).
  it.each([
    ['a repeated key, which JSON.parse would take silently', '{\n  "name": "a",\n  "name": "b",\n  "resources": []\n}\n', 'p.json:3:3: Map keys must be unique'],
    ['a repeated key deep inside', json({ name: 'a', resources: [{ id: 'f', type: 'file', path: '/x' }] }).replace('"path": "/x"', '"path": "/x",\n      "path": "/y"'), 'p.json:8:7: Map keys must be unique'],
    ['a repeated key that differs only by an escape', '{"name": "a", "n\\u0061me": "b", "resources": []}', 'p.json:1:15: Map keys must be unique'],
    ['an unterminated object', '{"name": "a",\n "resources": [\n', /^p\.json:2:15: .*the "\[" that opens here is never closed/],
    ['a trailing comma', '{"name": "a", "resources": [],}', undefined],
    ['a wrong type, located', json({ name: 'a', resources: [{ id: 'f', type: 'file', path: '/x', mode: 644 }] }), 'p.json:8:15: resources[0].mode: expected an octal string like "0644", got 644'],
    ['an unknown field, located', json({ name: 'a', resources: [], colour: 'blue' }), 'p.json:4:13: colour: unknown field'],
    ['a lone surrogate written as an escape', '{"name": "a", "description": "x \\ud800 y", "resources": []}', 'p.json:1:30: description: the string contains a lone UTF-16 surrogate, which has no UTF-8 encoding'],
    ['a template naming an unknown var', json({ name: 'a', resources: [{ id: 'f', type: 'file', path: '/x', content: '{{ vars.nope }}' }] }), 'p.json:8:18: resources[0].content: {{ vars.nope }} names nothing: the policy\'s vars have no "nope"'],
    ['a duplicate id', json({ name: 'a', resources: [{ id: 'f', type: 'directory', path: '/x' }, { id: 'f', type: 'directory', path: '/y' }] }), 'p.json:10:13: resources[1].id: duplicate id "f", first used by resources[0]']
  ] as Array<[string, string, string | RegExp | undefined]>)('reports %s as the YAML path does', (_, text, expected) => {
    expect(outcome(text)).toEqual(viaYaml(text))
    if (expected !== undefined) expect(messageOf(text)).toContainEqual(typeof expected === 'string' ? expected : expect.stringMatching(expected))
  })

  it('keys that contain quotes, backslashes and colons are counted right', () => {
    const text = json({ name: 'a', vars: { 'a"b': 1, 'c\\': { 'd:': ':', '\\"': '"\\' }, '': 'x' }, resources: [] })
    expect(outcome(text)).toEqual(viaYaml(text))
    expect(outcome(text)).toHaveProperty('policy')
  })

  it('a very deep value goes the YAML way', () => {
    const deep = '['.repeat(150) + ']'.repeat(150)
    const text = `{"name": "a", "vars": {"x": ${deep}}, "resources": []}`
    expect(outcome(text)).toEqual(viaYaml(text))
  })

  it('agrees with the YAML path on JSON of policy shape (property)', () => {
    const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('file', 'config', 'exec', '/x', '0644', '{{ vars.a }}', '{{ node.name }}', '\ud800', 'a"b\\'))
    const value = fc.oneof(fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }), text, fc.constantFrom(['a'], 644))
    const field = fc.constantFrom('id', 'type', 'path', 'mode', 'content', 'requires', 'notify', 'data', 'format', 'command', 'ensure', 'x')
    const resource = fc.dictionary(field, value, { maxKeys: 6 })
    const doc = fc.record({
      kind: fc.constantFrom('policy', 'trust', 'retired', 7),
      name: fc.oneof(fc.constant('a'), text),
      vars: fc.dictionary(text, fc.jsonValue({ maxDepth: 1, stringUnit: 'binary' })),
      resources: fc.oneof(fc.array(resource, { maxLength: 4 }), fc.jsonValue({ maxDepth: 1 }))
    }, { requiredKeys: [] })
    // Sometimes repeat a key: JSON.parse keeps the last, YAML refuses it.
    const repeat = fc.option(fc.constantFrom('"name": "b", ', '"vars": {}, ', '"kind": "policy", '), { nil: undefined })
    fc.assert(fc.property(doc, fc.constantFrom(undefined, 2, '\t'), repeat, (d, indent, extra) => {
      let t = JSON.stringify(d, null, indent)
      if (extra !== undefined && t.length > 2) t = `{${extra}${t.slice(1)}`
      expect(outcome(t)).toEqual(viaYaml(t))
    }), { numRuns: 500 })
  })
})
