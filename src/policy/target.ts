import type { ConfigPolicy } from './schema.js'
import type { NodeFacts } from './template.js'

/** A policy with no target applies everywhere; `tags` and `facts` must all match; `nodes` lists ids or names. */
export function matchesTarget (policy: Pick<ConfigPolicy, 'target'>, node: NodeFacts): boolean {
  const t = policy.target
  if (t === undefined) return true
  if (t.nodes !== undefined && !t.nodes.some((n) => n === node.id || n === node.name)) return false
  for (const [k, v] of Object.entries(t.tags ?? {})) if (node.tags[k] !== v) return false
  for (const [path, want] of Object.entries(t.facts ?? {})) {
    const have = factAt(node.facts, path)
    if (have === undefined || have === null || typeof have === 'object' || String(have) !== String(want)) return false
  }
  return true
}

/** A fact by its dotted path (`os.family`), or undefined. */
export function factAt (facts: Record<string, unknown> | undefined, path: string): unknown {
  let cur: unknown = facts
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined
    cur = (cur as Record<string, unknown>)[part]
  }
  return cur
}
