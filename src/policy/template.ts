import { TemplateError } from './errors.js'
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

export interface TemplateContext {
  node: NodeFacts
  vars: Record<string, unknown>
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
  let size = 0
  return text.replace(TOKEN, (whole, inner: string | undefined) => {
    if (whole === '\\{{') return '{{'
    if (whole === '{{') throw new TemplateError(where, `"{{" is not closed by "}}"; write \\{{ for a literal "{{"`)
    const m = REFERENCE.exec(inner ?? '')
    if (m === null) throw new TemplateError(where, `"${whole}" is not a template reference; write {{ node.name }}, {{ node.tags.KEY }} or {{ vars.KEY }}, or \\{{ for a literal`)
    const out = onRef(m[1] as string)
    size += out.length
    if (size > MAX_TEMPLATE_OUTPUT) throw new TemplateError(where, `template output exceeds ${MAX_TEMPLATE_OUTPUT} bytes`)
    return out
  })
}

export function renderString (text: string, ctx: TemplateContext, where: string): string {
  if (!text.includes('{{')) return text
  return scan(text, where, (ref) => scalar(lookup(ctx, ref, where), ref, where))
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
  return problems
}
