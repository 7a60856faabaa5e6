import type { ConfigPolicy, Resource } from './schema.js'
import { isPathResource } from './kinds.js'

type Problem = { path: PropertyKey[], message: string }

/** Edges `before → after`: a resource runs after everything it requires and everything that notifies it. */
export function dependencyEdges (resources: readonly Resource[]): Map<string, Set<string>> {
  const after = new Map<string, Set<string>>(resources.map((r) => [r.id, new Set<string>()]))
  for (const r of resources) {
    for (const dep of r.requires ?? []) after.get(dep)?.add(r.id)
    for (const target of r.notify ?? []) after.get(r.id)?.add(target)
  }
  return after
}

/**
 * Orders resources so that each comes after what it requires and what notifies it,
 * keeping the written order where the graph leaves a choice. Returns the cycle when there is one.
 */
export function orderResources (resources: readonly Resource[]): { order: Resource[] } | { cycle: string[] } {
  const edges = dependencyEdges(resources)
  const byId = new Map(resources.map((r) => [r.id, r]))
  const state = new Map<string, 'visiting' | 'done'>()
  const order: Resource[] = []
  const stack: string[] = []
  const deps = new Map<string, string[]>(resources.map((r) => [r.id, []]))
  for (const [before, afters] of edges) for (const a of afters) deps.get(a)?.push(before)

  const visit = (id: string): string[] | undefined => {
    const s = state.get(id)
    if (s === 'done') return undefined
    if (s === 'visiting') return [...stack.slice(stack.indexOf(id)), id]
    state.set(id, 'visiting')
    stack.push(id)
    for (const d of deps.get(id) ?? []) {
      const cycle = visit(d)
      if (cycle !== undefined) return cycle
    }
    stack.pop()
    state.set(id, 'done')
    order.push(byId.get(id) as Resource)
    return undefined
  }
  for (const r of resources) {
    const cycle = visit(r.id)
    if (cycle !== undefined) return { cycle }
  }
  return { order }
}

/** Identity of what a resource manages, for spotting two resources (or policies) claiming one thing. */
export function managedKey (r: Resource): string | undefined {
  if (r.type === 'exec') return undefined
  if (isPathResource(r)) return `path:${r.path}`
  // A service named with or without ".service" is one unit.
  return `${r.type}:${r.type === 'service' ? r.name.replace(/\.service$/, '') : r.name}`
}

/** What a managed key names, for messages: the path, or "package nginx". */
export function describeKey (key: string): string {
  return key.startsWith('path:') ? key.slice(5) : key.replace(':', ' ')
}

/** Cross-field checks the schema cannot express: unique ids, known references, no cycles, one owner per path. */
export function checkGraph (policy: ConfigPolicy): Problem[] {
  const problems: Problem[] = []
  const index = new Map<string, number>()
  const paths = new Map<string, number>()
  policy.resources.forEach((r, i) => {
    const seen = index.get(r.id)
    if (seen !== undefined) problems.push({ path: ['resources', i, 'id'], message: `duplicate id "${r.id}", first used by resources[${seen}]` })
    else index.set(r.id, i)
    const key = managedKey(r)
    if (key !== undefined) {
      const other = paths.get(key)
      if (other !== undefined) problems.push({ path: ['resources', i, isPathResource(r) ? 'path' : 'name'], message: `${key.startsWith('path:') ? `"${key.slice(5)}"` : describeKey(key)} is already managed by resources[${other}]` })
      else paths.set(key, i)
    }
  })
  policy.resources.forEach((r, i) => {
    for (const field of ['requires', 'notify'] as const) {
      (r[field] ?? []).forEach((ref, j) => {
        if (!index.has(ref)) problems.push({ path: ['resources', i, field, j], message: `no resource has id "${ref}"` })
        else if (ref === r.id) problems.push({ path: ['resources', i, field, j], message: 'a resource cannot refer to itself' })
      })
    }
  })
  if (problems.length === 0) {
    const result = orderResources(policy.resources)
    if ('cycle' in result) {
      const first = result.cycle[0] as string
      problems.push({ path: ['resources', index.get(first) ?? 0], message: `dependency cycle: ${result.cycle.join(' -> ')} (each waits for the next)` })
    }
  }
  return problems
}
