import { TemplateError, TemplateOutputTooLargeError } from './errors.js'
import { MAX_POLICY_DEPTH, MAX_TEMPLATE_OUTPUT } from './constants.js'
import { walkData } from './depth.js'
import type { ConfigPolicy } from './schema.js'

/**
 * Logic-less templating: `{{ node.name }}`, `{{ node.tags.role }}`, `{{ vars.port }}`,
 * `{{ secrets.db_password }}`. Only dotted look-ups; no expressions, helpers or code, so a
 * policy can never run anything through a template. `\{{` writes a literal `{{`.
 * Messages never quote a value: a secret's would end up in receipts and logs (docs/secrets.md).
 */

/** The facts a node offers to templates. */
export interface NodeFacts {
  id: string
  name: string
  tags: Record<string, string>
  /** What the node gathered about itself (src/facts/): os, kernel, cpus, …, and facts.d's. Self-asserted, as tags are. */
  facts?: Record<string, unknown>
}

/**
 * What templates may name. Make one per render of a policy (one apply): what every string
 * rendered with it expands to is counted together against MAX_TEMPLATE_OUTPUT.
 */
export interface TemplateContext {
  node: NodeFacts
  vars: Record<string, unknown>
  /** Secret values, opened on this node for this apply only (src/secrets/); absent when none were given. */
  secrets?: Readonly<Record<string, string>>
  /** The node's gathered facts: `{{ facts.os.family }}`. */
  facts?: Record<string, unknown>
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
const REFERENCE = /^\s*((?:node|vars|secrets|facts)(?:\.[A-Za-z0-9_-]+)+)\s*$/
/** A secret's name: one segment after `secrets.`. */
export const SECRET_NAME = /^[A-Za-z0-9_-]{1,100}$/

function lookup (ctx: TemplateContext, ref: string, where: string): unknown {
  if (ref.startsWith('secrets.') && ctx.secrets === undefined) {
    throw new TemplateError(where, `{{ ${ref} }} names a secret, and none were given: publish with --secrets FILE (sealed to the nodes that may read it), or plan/apply with --secrets FILE`)
  }
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
  if (ref.startsWith('secrets.')) return `the secrets given have no "${ref.slice(8)}"`
  if (ref.startsWith('facts.')) return `this node has no fact "${ref.slice(6)}" (grapevine facts lists them)`
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
    if (m === null) throw new TemplateError(where, `"${whole}" is not a template reference; write {{ node.name }}, {{ node.tags.KEY }}, {{ vars.KEY }}, {{ facts.PATH }} or {{ secrets.NAME }}, or \\{{ for a literal`)
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

/** Calls `each` with every templated string of a policy (the only strings rendered on a node) and its path. */
function eachTemplated (policy: ConfigPolicy, each: (text: string, path: PropertyKey[]) => void): void {
  policy.resources.forEach((r, i) => {
    if (r.type === 'file' && r.content !== undefined && r.template && r.encoding === 'utf8') each(r.content, ['resources', i, 'content'])
    if (r.type === 'config') eachString(r.data, ['resources', i, 'data'], each)
    if (r.type === 'exec') eachString(r.env ?? {}, ['resources', i, 'env'], each)
    if (r.type === 'user' && r.password_hash !== undefined) each(r.password_hash, ['resources', i, 'password_hash'])
  })
  policy.checks?.forEach((c, i) => {
    if (c.type === 'exec') eachString(c.env ?? {}, ['checks', i, 'env'], each)
  })
}

/** The secret names a policy's templates refer to, sorted; malformed templates are skipped (checkTemplates reports them). */
export function secretReferences (policy: ConfigPolicy): string[] {
  const names = new Set<string>()
  eachTemplated(policy, (text) => {
    if (!text.includes('secrets.')) return
    try {
      for (const ref of references(text, '')) if (ref.startsWith('secrets.')) names.add(ref.slice(8))
    } catch {
      // Reported by checkTemplates.
    }
  })
  return [...names].sort()
}

/** Whether a string renders a secret: its output is secret (mode 0600 by default, no diff, no backup). */
export function rendersSecret (text: string): boolean {
  if (!text.includes('secrets.')) return false
  try {
    return references(text, '').some((ref) => ref.startsWith('secrets.'))
  } catch {
    return false
  }
}

/** Whether any string inside structured data (config data, env) renders a secret. */
export function dataRendersSecret (data: unknown): boolean {
  let found = false
  walkData(data, (value) => {
    if (typeof value === 'string' && rendersSecret(value)) found = true
    return !found
  })
  return found
}

/**
 * Checks templates at validate time: syntax everywhere, `vars.*` references against the
 * policy's vars, and `secrets.*` references against the names sealed with it, when it carries
 * sealed secrets. `node.*` references can only be checked on the node; a policy file names
 * secrets it does not hold, and `publish --secrets` seals them.
 */
export function checkTemplates (policy: ConfigPolicy): Array<{ path: PropertyKey[], message: string }> {
  const problems: Array<{ path: PropertyKey[], message: string }> = []
  const vars = { vars: policy.vars ?? {} }
  const sealed = policy.sealed === undefined ? undefined : new Set(policy.sealed.names)
  eachTemplated(policy, (text, path) => {
    try {
      for (const ref of references(text, '')) {
        if (ref.startsWith('vars.')) lookup({ node: { id: '', name: '', tags: {} }, ...vars }, ref, '')
        else if (ref.startsWith('secrets.')) {
          const name = ref.slice(8)
          if (!SECRET_NAME.test(name)) throw new TemplateError('', `{{ ${ref} }} is not a secret name; write {{ secrets.NAME }}, NAME of letters, digits, "_" and "-"`)
          if (sealed !== undefined && !sealed.has(name)) throw new TemplateError('', `{{ ${ref} }} names a secret that was not sealed with this policy (it holds ${[...sealed].join(', ')})`)
        } else if (ref.startsWith('facts.')) {
          // Facts are gathered on the node: only the reference's shape can be checked here.
        } else if (!/^node\.(id|name|tags\.[A-Za-z0-9_-]+)$/.test(ref)) throw new TemplateError('', `{{ ${ref} }} is not a node fact; node facts are id, name and tags.<key>`)
      }
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err
      problems.push({ path, message: err.message.replace(/^: /, '') })
    }
  })
  return problems
}
