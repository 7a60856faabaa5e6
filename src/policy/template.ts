import { TemplateError, TemplateOutputTooLargeError } from './errors.js'
import { MAX_POLICY_DEPTH, MAX_TEMPLATE_OUTPUT } from './constants.js'
import { walkData } from './depth.js'
import type { ConfigPolicy } from './schema.js'

/**
 * Logic-less templating: `{{ node.name }}`, `{{ node.tags.role }}`, `{{ vars.port }}`.
 * Only dotted look-ups; no expressions, helpers or code, so a policy can never run
 * anything through a template. `\{{` writes a literal `{{`.
 */

/** The facts a node offers to templates. */
export interface NodeFacts {
  id: string
  name: string
  tags: Record<string, string>
}

/**
 * What templates may name. Make one per render of a policy (one apply): what every string
 * rendered with it expands to is counted together against MAX_TEMPLATE_OUTPUT.
 */
export interface TemplateContext {
  node: NodeFacts
  vars: Record<string, unknown>
}

/** Bytes expanded so far with each context; a WeakMap, so a context's count goes with it. */
const spent = new WeakMap<TemplateContext, number>()

function charge (ctx: TemplateContext, where: string, bytes: number): void {
  const total = (spent.get(ctx) ?? 0) + bytes
  if (total > MAX_TEMPLATE_OUTPUT) throw new TemplateOutputTooLargeError(where, MAX_TEMPLATE_OUTPUT)
  spent.set(ctx, total)
}

/** Bytes an object or array var adds to the output (its strings and keys, 8 per other value), measured once per object. */
const sizes = new WeakMap<object, number>()
function sizeOf (value: object): number {
  let size = sizes.get(value)
  if (size === undefined) {
    let n = 0
    walkData(value, (v, path) => {
      const key = path[path.length - 1]
      if (typeof key === 'string') n += Buffer.byteLength(key)
      n += typeof v === 'string' ? Buffer.byteLength(v) : 8
      return true
    })
    size = n
    sizes.set(value, size)
  }
  return size
}

// An escape, a complete `{{ ... }}`, or a `{{` that never closes (an error, not a literal).
const TOKEN = /\\\{\{|\{\{([^{}]*)\}\}|\{\{/g
const REFERENCE = /^\s*((?:node|vars)(?:\.[A-Za-z0-9_-]+)+)\s*$/

function lookup (ctx: TemplateContext, ref: string, where: string): unknown {
  let cur: unknown = ctx
  for (const part of ref.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) {
      throw new TemplateError(where, `{{ ${ref} }} names nothing: ${describeMissing(ref)}`)
    }
    cur = (cur as Record<string, unknown>)[part]
  }
  return cur
}

function describeMissing (ref: string): string {
  if (ref.startsWith('node.tags.')) return `this node has no tag "${ref.slice(10)}"`
  if (ref.startsWith('vars.')) return `the policy's vars have no "${ref.slice(5)}"`
  return 'node facts are id, name and tags.<key>'
}

function scalar (value: unknown, ref: string, where: string): string {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  throw new TemplateError(where, `{{ ${ref} }} is ${value === null ? 'null' : typeof value}, expected a string, number or boolean`)
}

/** Calls `onRef` for each reference; throws TemplateError on malformed `{{ }}`. */
function scan (text: string, where: string, onRef: (ref: string) => string): string {
  return text.replace(TOKEN, (whole, inner: string | undefined) => {
    if (whole === '\\{{') return '{{'
    if (whole === '{{') throw new TemplateError(where, `"{{" is not closed by "}}"; write \\{{ for a literal "{{"`)
    const m = REFERENCE.exec(inner ?? '')
    if (m === null) throw new TemplateError(where, `"${whole}" is not a template reference; write {{ node.name }}, {{ node.tags.KEY }} or {{ vars.KEY }}, or \\{{ for a literal`)
    return onRef(m[1] as string)
  })
}

/** Renders one string; throws TemplateOutputTooLargeError once `ctx` has expanded past MAX_TEMPLATE_OUTPUT. */
export function renderString (text: string, ctx: TemplateContext, where: string): string {
  if (!text.includes('{{')) return text
  return scan(text, where, (ref) => {
    const out = scalar(lookup(ctx, ref, where), ref, where)
    charge(ctx, where, Buffer.byteLength(out))
    return out
  })
}

/**
 * Renders every string inside structured data. A string that is exactly one reference
 * keeps the referenced value's type, so `port: "{{ vars.port }}"` stays a number.
 * Validation bounds the data's nesting (MAX_POLICY_DEPTH), so the recursion is shallow;
 * the check here only guards callers that skipped validation.
 */
export function renderData (data: unknown, ctx: TemplateContext, where: string): unknown {
  return render(data, ctx, where, 1)
}

function render (data: unknown, ctx: TemplateContext, where: string, depth: number): unknown {
  if (typeof data === 'string') {
    const whole = /^\{\{([^{}]*)\}\}$/.exec(data)
    const m = whole === null ? null : REFERENCE.exec(whole[1] as string)
    if (m !== null) {
      const v = lookup(ctx, m[1] as string, where)
      // A whole-value reference copies no text here, but the writer will: it counts as what it adds.
      if (typeof v === 'number' || typeof v === 'boolean') charge(ctx, where, 8)
      else if (typeof v === 'string') charge(ctx, where, Buffer.byteLength(v))
      else if (v !== null && typeof v === 'object') charge(ctx, where, sizeOf(v))
      if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v
      if (Array.isArray(v) || (v !== null && typeof v === 'object')) return v
    }
    return renderString(data, ctx, where)
  }
  if (data === null || typeof data !== 'object') return data
  if (depth > MAX_POLICY_DEPTH) throw new TemplateError(where, `nested more than ${MAX_POLICY_DEPTH} levels deep`)
  if (Array.isArray(data)) return data.map((v, i) => render(v, ctx, `${where}[${i}]`, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(data)) out[k] = render(v, ctx, `${where}.${k}`, depth + 1)
  return out
}

/** References in a string, for validation without node facts. */
function references (text: string, where: string): string[] {
  const refs: string[] = []
  scan(text, where, (ref) => { refs.push(ref); return '' })
  return refs
}

/** Calls `each` with every string inside `data` and its path under `base`, without recursion. */
function eachString (data: unknown, base: PropertyKey[], each: (text: string, path: PropertyKey[]) => void): void {
  walkData(data, (value, path) => {
    if (typeof value === 'string') each(value, [...base, ...path])
    return true
  })
}

/**
 * Checks templates at validate time: syntax everywhere, and `vars.*` references against
 * the policy's vars. `node.*` references can only be checked on the node.
 */
export function checkTemplates (policy: ConfigPolicy): Array<{ path: PropertyKey[], message: string }> {
  const problems: Array<{ path: PropertyKey[], message: string }> = []
  const vars = { vars: policy.vars ?? {} }
  const check = (text: string, path: PropertyKey[]): void => {
    try {
      for (const ref of references(text, '')) {
        if (ref.startsWith('vars.')) lookup({ node: { id: '', name: '', tags: {} }, ...vars }, ref, '')
        else if (!/^node\.(id|name|tags\.[A-Za-z0-9_-]+)$/.test(ref)) throw new TemplateError('', `{{ ${ref} }} is not a node fact; node facts are id, name and tags.<key>`)
      }
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err
      problems.push({ path, message: err.message.replace(/^: /, '') })
    }
  }
  policy.resources.forEach((r, i) => {
    if (r.type === 'file' && r.content !== undefined && r.template && r.encoding === 'utf8') check(r.content, ['resources', i, 'content'])
    if (r.type === 'config') eachString(r.data, ['resources', i, 'data'], check)
    if (r.type === 'exec') eachString(r.env ?? {}, ['resources', i, 'env'], check)
  })
  policy.checks?.forEach((c, i) => {
    if (c.type === 'exec') eachString(c.env ?? {}, ['checks', i, 'env'], check)
  })
  return problems
}
