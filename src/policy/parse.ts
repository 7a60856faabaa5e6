import { createRequire } from 'node:module'
import type * as Yaml from 'yaml'
import type * as JsYaml from 'js-yaml'
import type { CST, Document, LineCounter } from 'yaml'
import type { z } from '../vendor/zod.js'
import { anyPolicy, RESOURCE_TYPES, type Policy, type ConfigPolicy } from './schema.js'
import { InvalidPolicyError, PolicyTooDeepError, PolicyTooLargeError, type PolicyProblem } from './errors.js'
import { MAX_POLICY_DEPTH, MAX_POLICY_FILE_BYTES } from './constants.js'
import { tooDeepAt, walkData } from './depth.js'
import { checkGraph } from './graph.js'
import { checkTemplates } from './template.js'

type PathKey = PropertyKey

/**
 * The yaml library, loaded on first use: a JSON policy never needs it, and loading it costs
 * a CLI run about 60 ms. `require` keeps parsePolicy synchronous and returns the same
 * instance an `import` would (yaml is CommonJS).
 */
let yamlLib: typeof Yaml | undefined
const yaml = (): typeof Yaml => (yamlLib ??= createRequire(import.meta.url)('yaml') as typeof Yaml)
let jsYamlLib: typeof JsYaml | undefined
const jsYaml = (): typeof JsYaml => (jsYamlLib ??= createRequire(import.meta.url)('js-yaml') as typeof JsYaml)

/** `['resources', 2, 'mode']` → `resources[2].mode` */
export function formatPath (path: readonly PathKey[]): string {
  let out = ''
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`
    else out += out === '' ? String(k) : `.${String(k)}`
  }
  return out
}

/** A path to data nested too deep, cut after its first levels: they say which resource and field. */
export function formatDeepPath (path: readonly PathKey[]): string {
  return path.length <= 10 ? formatPath(path) : `${formatPath(path.slice(0, 8))}…`
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
          const options = disc !== 'type' ? '"policy", "trust", "retired" or "rollout"' : path[0] === 'checks' ? 'exec, http or tcp' : `${RESOURCE_TYPES.slice(0, -1).join(', ')} or ${RESOURCE_TYPES.at(-1) as string}`
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
    if (yaml().isNode(node) && node.range !== undefined && node.range !== null) {
      // For a missing key, point at the parent map's first line rather than its end.
      const pos = counter.linePos(node.range[0])
      return { line: pos.line, column: pos.col }
    }
  }
  return {}
}

/**
 * Why a `__proto__` key is refused: JavaScript objects treat the name specially, so the
 * schema, templates and config writers would silently drop it (or worse), and what nodes
 * write would differ from what was signed.
 */
export const PROTO_KEY = 'a key named "__proto__" cannot be carried faithfully (it would be dropped from what nodes write); rename it'

/** The path of the first `__proto__` key in decoded data, or undefined. */
export function protoKeyAt (data: unknown): PathKey[] | undefined {
  let found: PathKey[] | undefined
  walkData(data, (_, path) => {
    if (found !== undefined) return false
    if (path[path.length - 1] === '__proto__') found = [...path]
    return found === undefined
  })
  return found
}

/** No lone UTF-16 surrogate (ES2024, in Node since 20; the regex it replaces cost a policy load ~15 ms). */
const wellFormed = (s: string): boolean => (s as string & { isWellFormed: () => boolean }).isWellFormed()

/**
 * What YAML can hold but a policy cannot: an alias used inside its own anchor makes a
 * cycle that no JSON can encode, and a lone surrogate (`"\ud800"`) has no UTF-8 encoding.
 * Either would pass the schema and then fail (or crash) when the policy is signed. Also
 * finds the first value nested deeper than MAX_POLICY_DEPTH (aliases can nest an anchor
 * deeper than the text does).
 */
function checkValues (data: unknown): { problems: Array<{ path: PathKey[], message: string }>, tooDeep?: PathKey[] } {
  const problems: Array<{ path: PathKey[], message: string }> = []
  const ancestors = new Set<object>()
  let tooDeep: PathKey[] | undefined
  walkData(data, (value, path) => {
    const key = path[path.length - 1]
    if (typeof key === 'string' && !wellFormed(key)) problems.push({ path: [...path], message: 'the key contains a lone UTF-16 surrogate, which has no UTF-8 encoding' })
    if (key === '__proto__') problems.push({ path: [...path], message: PROTO_KEY })
    if (typeof value === 'string') {
      if (!wellFormed(value)) problems.push({ path: [...path], message: 'the string contains a lone UTF-16 surrogate, which has no UTF-8 encoding' })
      return false
    }
    if (value === null || typeof value !== 'object') return false
    if (ancestors.has(value)) {
      problems.push({ path: [...path], message: 'an alias refers to a node that contains it; a policy cannot be recursive' })
      return false
    }
    if (path.length >= MAX_POLICY_DEPTH) {
      tooDeep ??= [...path]
      return false
    }
    ancestors.add(value)
    return true
  }, (value) => { ancestors.delete(value) })
  return tooDeep === undefined ? { problems } : { problems, tooDeep }
}

export interface ParsedPolicy {
  policy: Policy
  /** The file the policy came from, used in later error messages. */
  file: string
}

/** A JSON policy nested deeper than this goes through the YAML parser, which reports it as it always has. */
const MAX_FAST_DEPTH = 100

/** Keys written in JSON text (strings followed by `:`); only meaningful for text JSON.parse accepted. */
function countKeyTokens (text: string): number {
  let keys = 0
  for (let i = text.indexOf('"'); i !== -1;) {
    // Find the closing quote: one preceded by an even number of backslashes.
    let end = i
    for (;;) {
      end = text.indexOf('"', end + 1)
      let slashes = 0
      while (text.charCodeAt(end - 1 - slashes) === 0x5c) slashes++
      if (slashes % 2 === 0) break
    }
    let next = end + 1
    for (let c = text.charCodeAt(next); c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d; c = text.charCodeAt(++next));
    if (text.charCodeAt(next) === 0x3a) keys++
    i = text.indexOf('"', next)
  }
  return keys
}

/** Keys in the parsed value, or -1 when it nests deeper than MAX_FAST_DEPTH. */
function countKeys (value: unknown, depth = 0): number {
  if (value === null || typeof value !== 'object') return 0
  if (depth > MAX_FAST_DEPTH) return -1
  let n = 0
  const add = (v: unknown): boolean => { const k = countKeys(v, depth + 1); n += k; return k >= 0 }
  if (Array.isArray(value)) {
    for (const v of value) if (!add(v)) return -1
  } else {
    for (const k in value) {
      n++
      if (!add((value as Record<string, unknown>)[k])) return -1
    }
  }
  return n
}

/**
 * The fast path for a policy written as a JSON object: JSON.parse is a hundred times faster
 * than building a YAML document, and JSON is YAML 1.2, so the data is the same. Returns
 * undefined when the text is not JSON, and when a key is repeated (JSON.parse keeps the
 * last; YAML refuses it, and the YAML path reports where) or it nests very deep: those go
 * the YAML way, so what is refused and how it is reported do not change.
 */
function parseJsonPolicy (text: string): unknown {
  if (!/^[ \t\n\r]*\{/.test(text)) return undefined
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    return undefined
  }
  const keys = countKeys(data)
  return keys >= 0 && keys === countKeyTokens(text) ? data : undefined
}

const NULL_KEY = /^(?:~|null|Null|NULL|)$/
/** What may follow a quoted scalar's closing quote (or nothing, at the end). */
const AFTER_QUOTE = /^[ \t\r\n,\]}:]?$/

/** A plain scalar that YAML 1.2 reads as a float too large for a double. */
function overflows (text: string, start: number, end: number): boolean {
  const c = text.charCodeAt(end - 1)
  // Only a scalar ending in a digit can be such a float; most are words.
  if (c < 0x30 || c > 0x39 || end - start < 4) return false
  const s = text.slice(start, end)
  return /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(s) && !Number.isFinite(Number.parseFloat(s))
}

/**
 * The fast path for YAML: js-yaml builds plain data four to five times faster than the yaml
 * library builds a document (about 0.1 s against 0.45 s for 1,000 resources). Both read
 * YAML 1.2 with its core schema; js-yaml is given only what the two read alike, one
 * document with no directive, tag, anchor, alias, null or collection key, `__proto__` key,
 * document end marker or line that starts with a tab. Anything else, and
 * anything it refuses, goes the yaml way, which reports where (test/policy/yaml-fast-path.spec.ts
 * checks that the two agree). Returns undefined when the text is not for this path.
 */
function parseYamlFast (text: string): { data: unknown } | undefined {
  // The yaml library refuses some lines js-yaml takes: a last line of only a tab, a second `...`.
  if (text.includes('__proto__') || /^(?:\t|\.\.\.)/m.test(text)) return undefined
  const { parseEvents, constructFromEvents, EVENT_ID, SCALAR_STYLE } = jsYaml()
  try {
    // Deeper than a policy may be goes the yaml way, which says where (and never composes it).
    const events = parseEvents(text, { maxDepth: MAX_POLICY_DEPTH + 2 })
    let documents = 0
    // Per open collection: -1 for a sequence or document, else the mapping's entries so far (even: a key comes next).
    const open: number[] = []
    for (const e of events) {
      if (e.type === EVENT_ID.POP) {
        open.pop()
        continue
      }
      if (e.type === EVENT_ID.DOCUMENT) {
        documents++
        if (e.directives.length > 0) return undefined
        open.push(-1)
        continue
      }
      if (e.type === EVENT_ID.ALIAS || e.tagStart !== -1 || e.anchorStart !== -1) return undefined
      const at = open.length - 1
      const entries = open[at] as number
      if (entries >= 0) {
        open[at] = entries + 1
        // The libraries name a null key ("? " or ": x") differently, and a collection as a key too.
        if (entries % 2 === 0 && (e.type !== EVENT_ID.SCALAR || (e.style === SCALAR_STYLE.PLAIN && NULL_KEY.test(text.slice(e.valueStart, e.valueEnd))))) return undefined
      }
      if (e.type === EVENT_ID.SEQUENCE) open.push(-1)
      else if (e.type === EVENT_ID.MAPPING) open.push(0)
      // `1e999`: the yaml library reads Infinity, js-yaml the string.
      else if (e.style === SCALAR_STYLE.PLAIN && overflows(text, e.valueStart, e.valueEnd)) return undefined
      // `- "a"b: c`: js-yaml reads on after a closing quote that the yaml library refuses to see followed by text.
      else if ((e.style === SCALAR_STYLE.DOUBLE_QUOTED || e.style === SCALAR_STYLE.SINGLE_QUOTED) && !AFTER_QUOTE.test(text.charAt(e.valueEnd + 1))) return undefined
    }
    if (documents !== 1) return undefined
    return { data: constructFromEvents(events, { source: text })[0] }
  } catch {
    // Duplicate keys, bad syntax, nesting past js-yaml's depth limit: the yaml path reports them.
    return undefined
  }
}

type Locate = (path: PathKey[]) => { line?: number, column?: number }

/**
 * The offset of the first collection nested deeper than MAX_POLICY_DEPTH in a CST, or
 * undefined. The yaml library builds its CST without recursion but composes documents
 * recursively (and can abort the process when that recursion runs deep), so this runs first.
 */
function tooDeepOffset (tokens: readonly CST.Token[]): number | undefined {
  const stack: Array<[CST.Token, number]> = tokens.map((t) => [t, 0])
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [token, depth] = top
    if (token.type === 'document') {
      if (token.value !== undefined) stack.push([token.value, depth])
    } else if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      if (depth >= MAX_POLICY_DEPTH) return token.offset
      for (const item of token.items) {
        if ('key' in item && item.key !== undefined && item.key !== null) stack.push([item.key, depth + 1])
        if (item.value !== undefined) stack.push([item.value, depth + 1])
      }
    }
  }
  return undefined
}

/** The CST of the text, with where it nests too deep, if it does. */
function yamlTokens (text: string): { tokens: CST.Token[], counter: LineCounter, tooDeep?: { line: number, column: number } } {
  const { LineCounter, Parser } = yaml()
  const counter = new LineCounter()
  const tokens = Array.from(new Parser(counter.addNewLine).parse(text))
  const offset = tooDeepOffset(tokens)
  if (offset === undefined) return { tokens, counter }
  const pos = counter.linePos(offset)
  return { tokens, counter, tooDeep: { line: pos.line, column: pos.col } }
}

/**
 * Where the quoted scalar that ends at `end` opens. The yaml library reports a missing closing
 * quote where the text ends, which says nothing of which string was left open.
 */
function quoteOpenedAt (tokens: readonly CST.Token[], end: number): number | undefined {
  const stack: unknown[] = [...tokens]
  for (let t = stack.pop(); t !== undefined; t = stack.pop()) {
    if (t === null || typeof t !== 'object') continue
    const token = t as { type?: string, offset?: number, source?: string }
    if ((token.type === 'double-quoted-scalar' || token.type === 'single-quoted-scalar') && (token.offset ?? 0) + (token.source?.length ?? 0) === end) return token.offset
    for (const v of Object.values(t)) if (v !== null && typeof v === 'object') stack.push(v)
  }
  return undefined
}

/** Where the innermost flow collection opened by `bracket` (`{` or `[`) still open at `pos` opens, if one is. */
function flowOpenedAt (tokens: readonly CST.Token[], pos: number, bracket: string): { offset: number, bracket: string } | undefined {
  let found: { offset: number, bracket: string } | undefined
  const stack: unknown[] = [...tokens]
  for (let t = stack.pop(); t !== undefined; t = stack.pop()) {
    if (t === null || typeof t !== 'object') continue
    const token = t as { type?: string, offset?: number, start?: { source?: string }, end?: Array<{ type: string }> }
    if (token.type === 'flow-collection' && token.start?.source === bracket && (token.offset ?? 0) <= pos && (found === undefined || (token.offset ?? 0) > found.offset) &&
      !(token.end ?? []).some((e) => e.type === 'flow-map-end' || e.type === 'flow-seq-end')) {
      found = { offset: token.offset ?? 0, bracket }
    }
    for (const v of Object.values(t)) if (v !== null && typeof v === 'object') stack.push(v)
  }
  return found
}

/** The document's errors as problems, each where a person would look for it. */
function syntaxProblems (doc: Document, counter: LineCounter, tokens: readonly CST.Token[]): PolicyProblem[] {
  const problems: PolicyProblem[] = []
  let unclosedEnd: number | undefined
  for (const e of doc.errors) {
    const message = e.message.split('\n')[0] ?? e.message
    let offset = e.pos[0]
    if (e.code === 'MISSING_CHAR' && /quote/.test(message)) {
      const opened = quoteOpenedAt(tokens, offset)
      if (opened !== undefined) {
        unclosedEnd = offset
        offset = opened
        problems.push({ path: '', ...lineCol(counter, offset), message: `${message}: the string that opens here is never closed` })
        continue
      }
    }
    // What else the parser says where the open string swallowed the text only repeats it.
    if (e.pos[0] === unclosedEnd) continue
    // An unclosed `{` or `[` is noticed lines later, where the text no longer fits it.
    const closer = /end with a ([}\]])/.exec(message)?.[1]
    const flow = closer === undefined ? undefined : flowOpenedAt(tokens, offset, closer === '}' ? '{' : '[')
    if (flow !== undefined) {
      problems.push({ path: '', ...lineCol(counter, flow.offset), message: `${message}: the "${flow.bracket}" that opens here is never closed` })
      continue
    }
    problems.push({ path: '', ...lineCol(counter, offset), message })
  }
  return problems
}

function lineCol (counter: LineCounter, offset: number): { line: number, column: number } {
  // `linePos` is only filled in by prettyErrors, so locate the error from its offset.
  const pos = counter.linePos(offset)
  return { line: pos.line, column: pos.col }
}

/** `parseDocument` in two steps, so that a document nested too deep is refused before it is composed. */
function parseYaml (text: string, file: string): { doc: Document, counter: LineCounter, tokens: CST.Token[] } {
  const { Composer, YAMLParseError } = yaml()
  const { tokens, counter, tooDeep } = yamlTokens(text)
  if (tooDeep !== undefined) throw new PolicyTooDeepError(file, { path: '', ...tooDeep }, MAX_POLICY_DEPTH)
  let doc: Document | undefined
  for (const next of new Composer({ uniqueKeys: true }).compose(tokens, true, text.length)) {
    if (doc === undefined) doc = next
    else {
      doc.errors.push(new YAMLParseError(next.range.slice(0, 2) as [number, number], 'MULTIPLE_DOCS', 'Source contains multiple documents; please use YAML.parseAllDocuments()'))
      break
    }
  }
  // compose(…, true) always ends with a document, even for empty text.
  return { doc: doc as Document, counter, tokens }
}

/**
 * Parses and validates policy text (YAML or JSON; JSON is valid YAML 1.2).
 * Every problem found is reported at once, with file, line and field path.
 */
export function parsePolicy (text: string, file = '<policy>'): Policy {
  const size = Buffer.byteLength(text)
  if (size > MAX_POLICY_FILE_BYTES) throw new PolicyTooLargeError(file, size, MAX_POLICY_FILE_BYTES)

  let data = parseJsonPolicy(text) ?? parseYamlFast(text)?.data
  let locate: Locate
  if (data !== undefined) {
    // Lines are needed only to report problems: the YAML document is built then, if at all.
    let parsed: { doc: Document, counter: LineCounter } | undefined
    locate = (path) => {
      parsed ??= parseYaml(text, file)
      return lineOf(parsed.doc, parsed.counter, path)
    }
  } else {
    const { doc, counter, tokens } = parseYaml(text, file)
    if (doc.errors.length > 0) throw new InvalidPolicyError(file, syntaxProblems(doc, counter, tokens))
    try {
      data = doc.toJS({ maxAliasCount: 100 })
    } catch (err) {
      throw new InvalidPolicyError(file, [{ path: '', message: (err as Error).message }])
    }
    locate = (path) => lineOf(doc, counter, path)
  }
  const { problems: valueProblems, tooDeep } = checkValues(data)
  if (tooDeep !== undefined) {
    // The text nests as deep as the data unless aliases did it; locate() would compose the document.
    const at = yamlTokens(text).tooDeep ?? locate(tooDeep)
    throw new PolicyTooDeepError(file, { path: formatDeepPath(tooDeep), ...at }, MAX_POLICY_DEPTH)
  }
  if (valueProblems.length > 0) {
    throw new InvalidPolicyError(file, valueProblems.map((p) => ({ path: formatPath(p.path), message: p.message, ...locate(p.path) })))
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new InvalidPolicyError(file, [{ path: '', line: 1, message: `expected a mapping with name and resources, got ${describe(data)}` }])
  }
  // `kind` is optional for ordinary policies; the discriminated union needs it present.
  const input = 'kind' in data ? data : { kind: 'policy', ...data }

  const result = anyPolicy.safeParse(input)
  const located = (problems: Array<{ path: PathKey[], message: string }>): PolicyProblem[] =>
    problems.map((p) => ({ path: formatPath(p.path), message: p.message, ...locate(p.path) }))

  if (!result.success) throw new InvalidPolicyError(file, located(toProblems(result.error.issues, input)))

  const policy = result.data
  if (policy.kind === 'policy') {
    const problems = [...checkGraph(policy), ...checkTemplates(policy)]
    if (problems.length > 0) throw new InvalidPolicyError(file, located(problems))
  }
  return policy
}

/** The line and column of a field path in policy text already parsed once (for problems found after parsing). */
export function locateInText (text: string, path: PathKey[]): { line?: number, column?: number } {
  try {
    const { doc, counter } = parseYaml(text, '<policy>')
    return lineOf(doc, counter, path)
  } catch {
    return {}
  }
}

/** Validates an already-decoded policy object (from an envelope); errors carry field paths but no lines. */
export function validatePolicyObject (data: unknown, label = '<envelope>'): Policy {
  // First, so that the schema, the graph and the templates only ever see shallow data.
  const tooDeep = tooDeepAt(data)
  if (tooDeep !== undefined) throw new PolicyTooDeepError(label, { path: formatDeepPath(tooDeep) }, MAX_POLICY_DEPTH)
  const proto = protoKeyAt(data)
  if (proto !== undefined) throw new InvalidPolicyError(label, [{ path: formatPath(proto), message: PROTO_KEY }])
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
