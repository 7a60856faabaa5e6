import fc from 'fast-check'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  InvalidPolicyError, MAX_POLICY_DEPTH, PolicyTooDeepError, TemplateError, loadPolicyFile, parsePolicy, renderData, tooDeepAt, validatePolicyObject, walkData
} from '../../src/policy/index.js'
import { deepChain } from '../helpers/deep.js'
import { useTempDir } from '../helpers/tmp.js'

/** Recursive reference: objects and arrays on the deepest path (a scalar is 0). */
function depthOf (v: unknown): number {
  if (v === null || typeof v !== 'object') return 0
  const children = Array.isArray(v) ? v : Object.values(v)
  return 1 + Math.max(0, ...children.map(depthOf))
}

/** A config policy whose data nests `chain` objects under the key `k`: depth 4 + chain. */
const deepJson = (chain: number): string =>
  `{"name":"web/deep","resources":[{"id":"c","type":"config","path":"/etc/x.json","format":"json","data":{"k":${deepChain(chain)}}}]}`

function deepBlockYaml (chain: number): string {
  const lines = ['name: web/deep', 'resources:', '  - id: c', '    type: config', '    path: /etc/x.json', '    format: json', '    data:', '      k:']
  // As deep as deepJson(chain): `k`'s value is the first of `chain` mappings.
  for (let i = 0; i < chain - 1; i++) lines.push(`${' '.repeat(8 + 2 * i)}a:`)
  lines.push(`${' '.repeat(8 + 2 * (chain - 1))}b: x`)
  return lines.join('\n') + '\n'
}

const refusal = (f: () => unknown): PolicyTooDeepError => {
  try {
    f()
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyTooDeepError)
    expect(err).toBeInstanceOf(InvalidPolicyError)
    return err as PolicyTooDeepError
  }
  throw new Error('expected PolicyTooDeepError')
}

describe('walkData', () => {
  it('visits every value in document order with its path, skips where asked, and leaves each collection once', () => {
    const seen: string[] = []
    const left: string[] = []
    walkData({ a: [1, { b: 2 }], skip: { c: 3 }, d: 'x' }, (v, path) => {
      seen.push(`${path.join('.')}=${typeof v === 'object' ? '{}' : String(v)}`)
      return path[0] !== 'skip'
    }, (v) => { left.push(JSON.stringify(v)) })
    expect(seen).toEqual(['={}', 'a={}', 'a.0=1', 'a.1={}', 'a.1.b=2', 'skip={}', 'd=x'])
    expect(left).toEqual(['{"b":2}', '[1,{"b":2}]', JSON.stringify({ a: [1, { b: 2 }], skip: { c: 3 }, d: 'x' })])
  })

  it('walks a million levels without recursion', () => {
    let v: unknown = 'x'
    for (let i = 0; i < 1_000_000; i++) v = [v]
    let count = 0
    walkData(v, () => { count++; return true })
    expect(count).toBe(1_000_001)
    expect(tooDeepAt(v)).toHaveLength(MAX_POLICY_DEPTH)
  })
})

describe('tooDeepAt', () => {
  it('finds a path exactly when the data is deeper than the limit (against a recursive reference)', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 1, max: 12 }), (v, limit) => {
      const at = tooDeepAt(v, limit)
      expect(at !== undefined).toBe(depthOf(v) > limit)
      if (at !== undefined) {
        // The path leads to a collection at depth limit + 1.
        let cur: unknown = v
        for (const k of at) cur = (cur as Record<string | number, unknown>)[k]
        expect(at).toHaveLength(limit)
        expect(typeof cur === 'object' && cur !== null).toBe(true)
      }
    }), { numRuns: 500 })
  })
})

describe('MAX_POLICY_DEPTH in policy files', () => {
  const chainLimit = MAX_POLICY_DEPTH - 4

  it('accepts a policy exactly as deep as the limit, JSON and YAML', () => {
    expect(parsePolicy(deepJson(chainLimit), 'p.json').name).toBe('web/deep')
    expect(parsePolicy(deepBlockYaml(chainLimit), 'p.yaml').name).toBe('web/deep')
    expect(validatePolicyObject(JSON.parse(deepJson(chainLimit))).name).toBe('web/deep')
  })

  it.each([
    ['JSON one level too deep (JSON.parse path)', () => deepJson(chainLimit + 1), 'p.json', 1, 'resources[0].data.k.a.a.a.a…'],
    ['JSON 1,000 deep', () => deepJson(1000), 'p.json', 1, ''],
    ['JSON 100,000 deep', () => deepJson(100_000), 'p.json', 1, ''],
    ['block YAML one level too deep', () => deepBlockYaml(chainLimit + 1), 'p.yaml', 69, 'resources[0].data.k.a.a.a.a…'],
    ['block YAML 1,000 deep', () => deepBlockYaml(1000), 'p.yaml', 69, ''],
    ['flow YAML 1,000 deep', () => `name: web/deep\nresources:\n  - id: c\n    type: config\n    path: /etc/x.json\n    format: json\n    data: {"k": ${'['.repeat(1000)}${']'.repeat(1000)}}\n`, 'p.yaml', 7, ''],
    ['compact YAML sequences 1,000 deep', () => `name: web/deep\nresources:\n  - id: c\n    type: config\n    path: /etc/x.json\n    format: json\n    data:\n      k:\n        ${'- '.repeat(1000)}x\n`, 'p.yaml', 9, '']
  ])('refuses %s with a named error, the file and a line', (_, text, file, line, path) => {
    const err = refusal(() => parsePolicy(text(), file))
    expect(err.limit).toBe(MAX_POLICY_DEPTH)
    expect(err.problems).toHaveLength(1)
    expect(err.problems[0]).toMatchObject({ line, path })
    expect(err.message).toMatch(new RegExp(`^${file}:${line}:\\d+: .*nested more than ${MAX_POLICY_DEPTH} levels deep`))
  })

  it('refuses depth that only aliases create (the text itself is shallow)', () => {
    const nest = (n: number, inner: string, indent: number): string[] =>
      Array.from({ length: n }, (_, i) => `${' '.repeat(indent + 2 * i)}a:`).concat(`${' '.repeat(indent + 2 * n)}${inner}`)
    const text = ['name: web/deep', 'vars:', '  x: &deep', ...nest(40, 'b: x', 4), 'resources:', '  - id: c', '    type: config', '    path: /etc/x.json',
      '    format: json', '    data:', ...nest(30, 'k: *deep', 6)].join('\n') + '\n'
    const err = refusal(() => parsePolicy(text, 'alias.yaml'))
    expect(err.problems[0]?.path).toMatch(/^resources\[0\]\.data\.a\.a/)
    expect(err.problems[0]?.line).toBeGreaterThan(0)
  })

  it('refuses a deep object handed to validatePolicyObject (an envelope\'s policy) by path', () => {
    const err = refusal(() => validatePolicyObject(JSON.parse(deepJson(100_000)), 'envelope web/deep v1'))
    expect(err.message).toBe(`envelope web/deep v1: resources[0].data.k.a.a.a.a…: nested more than ${MAX_POLICY_DEPTH} levels deep (objects and arrays; the limit for a policy)`)
  })

  describe('loadPolicyFile (grapevine validate)', () => {
    const dir = useTempDir()
    it('names the file and the line of a 1,000-deep policy', async () => {
      const file = join(dir(), 'deep.json')
      await writeFile(file, deepJson(1000))
      const err = await loadPolicyFile(file).then(() => undefined, (e: unknown) => e)
      expect(err).toBeInstanceOf(PolicyTooDeepError)
      expect((err as Error).message).toMatch(new RegExp(`^${file}:1:\\d+: nested more than`))
    })
  })
})

describe('renderData', () => {
  it('refuses data deeper than a policy may be (for callers that skipped validation)', () => {
    const deep = JSON.parse(deepChain(MAX_POLICY_DEPTH + 1)) as unknown
    expect(() => renderData(deep, { node: { id: 'n', name: 'n', tags: {} }, vars: {} }, 'data')).toThrow(TemplateError)
    expect(() => renderData(JSON.parse(deepChain(MAX_POLICY_DEPTH - 1)), { node: { id: 'n', name: 'n', tags: {} }, vars: {} }, 'data')).not.toThrow()
  })
})
