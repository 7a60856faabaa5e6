import { posix } from 'node:path'
import { orderResources } from '../policy/graph.js'
import { isPathResource } from '../policy/kinds.js'
import type { Resource } from '../policy/schema.js'

export interface Schedule {
  /** Apply order: requires and notify first, then parent directories, then the written order. */
  order: Resource[]
  /** Resources whose failure skips this one: requires, notifiers and managed parent directories. */
  dependsOn: Map<string, string[]>
  /** Resources that notify this one. */
  notifiers: Map<string, string[]>
}

const managedPath = (r: Resource): string | undefined => isPathResource(r) ? posix.normalize(r.path) : undefined

/**
 * Implicit edges, as Puppet's autorequire (docs/apply.md, "Ordering"):
 * - a path comes after the directory or symlink the policy manages above it, or, when that one
 *   is being removed, before it;
 * - a path, and an exec's `run_as`, come after the user and group the policy manages that own it;
 * - a user comes after the groups the policy manages that it names (gid, groups);
 * - a service comes after the package of the same name;
 * - a user whose home the apply makes (manage_home) comes after the directory above the home.
 * A resource being removed reverses nothing here but the directory rule: removing a user that
 * still owns files is the policy's to order.
 */
export function autoRequires (resources: readonly Resource[]): Map<string, string[]> {
  const byPath = new Map<string, { id: string, ensure: 'present' | 'absent' }>()
  const users = new Map<string, string>()
  const groups = new Map<string, string>()
  const packages = new Map<string, string>()
  for (const r of resources) {
    if (r.type === 'directory' || r.type === 'symlink') byPath.set(posix.normalize(r.path), r)
    if (r.type === 'user' && r.ensure === 'present') users.set(r.name, r.id)
    if (r.type === 'group' && r.ensure === 'present') groups.set(r.name, r.id)
    if (r.type === 'package' && r.ensure !== 'absent') packages.set(r.name, r.id)
  }
  const edges = new Map<string, string[]>(resources.map((r) => [r.id, []]))
  const add = (from: string, to: string | undefined): void => { if (to !== undefined && to !== from) edges.get(from)?.push(to) }
  for (const r of resources) {
    if (isPathResource(r) && r.type !== 'symlink') {
      if (r.owner !== undefined) add(r.id, users.get(r.owner))
      if (r.group !== undefined) add(r.id, groups.get(r.group))
    }
    if (r.type === 'exec' && r.run_as !== undefined) add(r.id, users.get(r.run_as))
    if (r.type === 'user') {
      if (typeof r.gid === 'string') add(r.id, groups.get(r.gid))
      for (const g of r.groups ?? []) add(r.id, groups.get(g))
    }
    if (r.type === 'service') add(r.id, packages.get(r.name.replace(/\.service$/, '')))
    // A user whose home the apply makes (manage_home) comes after the directory above it.
    const p = managedPath(r) ?? (r.type === 'user' && r.manage_home && r.home !== undefined ? posix.normalize(r.home) : undefined)
    if (p === undefined) continue
    for (let dir = posix.dirname(p); ; dir = posix.dirname(dir)) {
      const parent = byPath.get(dir)
      if (parent !== undefined && parent.id !== r.id) {
        if (parent.ensure === 'absent') edges.get(parent.id)?.push(r.id)
        else edges.get(r.id)?.push(parent.id)
        break
      }
      if (dir === '/') break
    }
  }
  return edges
}

/**
 * Orders resources for applying. Explicit edges come from the policy (whose validator
 * rejects cycles); implicit parent-directory edges are added when they do not create one.
 */
export function schedule (resources: readonly Resource[]): Schedule | { cycle: string[] } {
  const auto = autoRequires(resources)
  const augmented = resources.map((r) => {
    const extra = auto.get(r.id) ?? []
    return extra.length === 0 ? r : { ...r, requires: [...new Set([...(r.requires ?? []), ...extra])] }
  })
  let result = orderResources(augmented)
  let implicit = true
  if ('cycle' in result) {
    result = orderResources(resources)
    implicit = false
    if ('cycle' in result) return result
  }
  const byId = new Map(resources.map((r) => [r.id, r]))
  const position = new Map(result.order.map((r, i) => [r.id, i]))
  const notifiers = new Map<string, string[]>(resources.map((r) => [r.id, []]))
  for (const r of resources) for (const t of r.notify ?? []) notifiers.get(t)?.push(r.id)
  const dependsOn = new Map<string, string[]>()
  for (const r of resources) {
    const deps = new Set([...(r.requires ?? []), ...(notifiers.get(r.id) ?? [])])
    // Implicit edges that lost to a cycle still count when they point backwards in the order.
    for (const a of auto.get(r.id) ?? []) if (implicit || (position.get(a) ?? Infinity) < (position.get(r.id) ?? -1)) deps.add(a)
    dependsOn.set(r.id, [...deps])
  }
  return { order: result.order.map((r) => byId.get(r.id) as Resource), dependsOn, notifiers }
}
