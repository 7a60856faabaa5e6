import type { ConfigPolicy } from './schema.js'
import type { NodeFacts } from './template.js'

/** A policy with no target applies everywhere; `tags` must all match; `nodes` lists ids or names. */
export function matchesTarget (policy: Pick<ConfigPolicy, 'target'>, node: NodeFacts): boolean {
  const t = policy.target
  if (t === undefined) return true
  if (t.nodes !== undefined && !t.nodes.some((n) => n === node.id || n === node.name)) return false
  for (const [k, v] of Object.entries(t.tags ?? {})) if (node.tags[k] !== v) return false
  return true
}
