import { LineCounter, parseDocument, isNode, type Document } from 'yaml'
import type { z } from 'zod'
import { anyPolicy, type Policy, type ConfigPolicy } from './schema.js'
import { InvalidPolicyError, PolicyTooLargeError, type PolicyProblem } from './errors.js'
import { MAX_POLICY_FILE_BYTES } from './constants.js'
import { checkGraph } from './graph.js'
import { checkTemplates } from './template.js'

type PathKey = PropertyKey

/** `['resources', 2, 'mode']` → `resources[2].mode` */
export function formatPath (path: readonly PathKey[]): string {
  let out = ''
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`
    else out += out === '' ? String(k) : `.${String(k)}`
  }
  return out
}

function valueAt (data: unknown, path: readonly PathKey[]): unknown {
  let cur: unknown = data
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<PropertyKey, unknown>)[k]
  }
  return cur
}

export function describe (value: unknown): string {
  if (value === undefined) return 'nothing'
  const s = JSON.stringify(value)
  return s === undefined ? String(value) : s.length > 60 ? `${s.slice(0, 57)}...` : s
}

/** Turns zod issues into problems a person can act on: field path, expectation and what was found. */
export function toProblems (issues: z.core.$ZodIssue[], data: unknown): Array<{ path: PathKey[], message: string }> {
  const out: Array<{ path: PathKey[], message: string }> = []
  for (const issue of issues) {
    const path = issue.path.slice()
    const found = valueAt(data, path)
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) out.push({ path: [...path, key], message: 'unknown field' })
        break
      case 'invalid_union': {
        const disc = (issue as { discriminator?: string }).discriminator
        if (disc !== undefined) {
          const options = disc === 'type' ? 'file, directory, symlink, config or exec' : '"policy", "trust" or "retired"'
          // zod reports the discriminator's own path when it is present, the object's when it is missing.
          const at = path[path.length - 1] === disc ? path : [...path, disc]
          out.push({ path: at, message: `expected ${disc} to be ${options}, got ${describe(valueAt(data, at))}` })
        } else {
          out.push({ path, message: `${issue.message}, got ${describe(found)}` })
        }
        break
      }
      case 'invalid_type':
        out.push({
          path,
          message: found === undefined
            ? `required field is missing (expected ${issue.expected})`
            : issue.message.startsWith('Invalid input') ? `expected ${issue.expected}, got ${describe(found)}` : issue.message
        })
        break
      default:
        out.push({ path, message: /\bgot\b|received/.test(issue.message) ? issue.message : `${issue.message}, got ${describe(found)}` })
    }
  }
  return out
}

/** Locates a field path in the YAML document, falling back to the nearest parent that exists. */
export function lineOf (doc: Document, counter: LineCounter, path: PathKey[]): { line?: number, column?: number } {
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n)
    const node = sub.length === 0 ? doc.contents : doc.getIn(sub, true)
    if (isNode(node) && node.range !== undefined && node.range !== null) {
      // For a missing key, point at the parent map's first line rather than its end.
      const pos = counter.linePos(node.range[0])
      return { line: pos.line, column: pos.col }
    }
  }
  return {}
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * What YAML can hold but a policy cannot: an alias used inside its own anchor makes a
 * cycle that no JSON can encode, and a lone surrogate (`"\ud800"`) has no UTF-8 encoding.
 * Either would pass the schema and then fail (or crash) when the policy is signed.
 */
function checkValues (data: unknown): Array<{ path: PathKey[], message: string }> {
  const problems: Array<{ path: PathKey[], message: string }> = []
  const ancestors = new Set<object>()
  const surrogate = (s: string, path: PathKey[], what: string): void => {
    if (LONE_SURROGATE.test(s)) problems.push({ path, message: `${what} contains a lone UTF-16 surrogate, which has no UTF-8 encoding` })
  }
  const walk = (value: unknown, path: PathKey[]): void => {
    if (typeof value === 'string') return surrogate(value, path, 'the string')
    if (value === null || typeof value !== 'object') return
    if (ancestors.has(value)) {
      problems.push({ path, message: 'an alias refers to a node that contains it; a policy cannot be recursive' })
      return
    }
    ancestors.add(value)
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i]))
    else {
      for (const [k, v] of Object.entries(value)) {
        surrogate(k, [...path, k], 'the key')
        walk(v, [...path, k])
      }
    }
    ancestors.delete(value)
  }
  walk(data, [])
  return problems
}

export interface ParsedPolicy {
  policy: Policy
  /** The file the policy came from, used in later error messages. */
  file: string
}

/**
 * Parses and validates policy text (YAML or JSON; JSON is valid YAML 1.2).
 * Every problem found is reported at once, with file, line and field path.
 */
export function parsePolicy (text: string, file = '<policy>'): Policy {
  const size = Buffer.byteLength(text)
  if (size > MAX_POLICY_FILE_BYTES) throw new PolicyTooLargeError(file, size, MAX_POLICY_FILE_BYTES)

  const counter = new LineCounter()
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new InvalidPolicyError(file, doc.errors.map((e) => {
      // `linePos` is only filled in by prettyErrors, so locate the error from its offset.
      const pos = counter.linePos(e.pos[0])
      return { path: '', line: pos.line, column: pos.col, message: e.message.split('\n')[0] ?? e.message }
    }))
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    throw new InvalidPolicyError(file, [{ path: '', message: (err as Error).message }])
  }
  const valueProblems = checkValues(data)
  if (valueProblems.length > 0) {
    throw new InvalidPolicyError(file, valueProblems.map((p) => ({ path: formatPath(p.path), message: p.message, ...lineOf(doc, counter, p.path) })))
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new InvalidPolicyError(file, [{ path: '', line: 1, message: `expected a mapping with name and resources, got ${describe(data)}` }])
  }
  // `kind` is optional for ordinary policies; the discriminated union needs it present.
  const input = 'kind' in data ? data : { kind: 'policy', ...data }

  const result = anyPolicy.safeParse(input)
  const located = (problems: Array<{ path: PathKey[], message: string }>): PolicyProblem[] =>
    problems.map((p) => ({ path: formatPath(p.path), message: p.message, ...lineOf(doc, counter, p.path) }))

  if (!result.success) throw new InvalidPolicyError(file, located(toProblems(result.error.issues, input)))

  const policy = result.data
  if (policy.kind === 'policy') {
    const problems = [...checkGraph(policy), ...checkTemplates(policy)]
    if (problems.length > 0) throw new InvalidPolicyError(file, located(problems))
  }
  return policy
}

/** Validates an already-decoded policy object (from an envelope); errors carry field paths but no lines. */
export function validatePolicyObject (data: unknown, label = '<envelope>'): Policy {
  const result = anyPolicy.safeParse(data)
  if (!result.success) {
    throw new InvalidPolicyError(label, toProblems(result.error.issues, data).map((p) => ({ path: formatPath(p.path), message: p.message })))
  }
  if (result.data.kind === 'policy') {
    const problems = [...checkGraph(result.data), ...checkTemplates(result.data)]
    if (problems.length > 0) throw new InvalidPolicyError(label, problems.map((p) => ({ path: formatPath(p.path), message: p.message })))
  }
  return result.data
}

export type { ConfigPolicy }
