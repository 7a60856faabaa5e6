import type { PathResource, Resource, SystemResource } from './schema.js'

// Without zod: the applier sorts resources by kind and never loads the schema.

const PATH_TYPES: ReadonlySet<string> = new Set(['file', 'directory', 'symlink', 'config'])

/** A file, directory, symlink or config: it manages a path under the root. */
export function isPathResource (r: Resource): r is PathResource {
  return PATH_TYPES.has(r.type)
}

/** A package, service, user or group: it manages something through a provider (src/apply/system.ts). */
export function isSystemResource (r: Resource): r is SystemResource {
  return r.type === 'package' || r.type === 'service' || r.type === 'user' || r.type === 'group'
}
