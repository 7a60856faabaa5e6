import { join } from 'node:path'
import type { PackageResource } from '../../policy/schema.js'
import type { SystemContext } from '../system.js'
import { PackageSourceError } from '../errors.js'
import { PACKAGE_QUERY_TIMEOUT_MS } from './constants.js'
import type { Offer } from './provider.js'
import { errorTail, packageSettings } from './tool.js'

/** The `source` .deb's own name and version (dpkg-deb -f, read-only); it must be the package the resource names. */
export async function debOffer (r: PackageResource & { source: string }, ctx: SystemContext): Promise<Offer> {
  // The source is a path on the managed system, so under the root.
  const file = join(ctx.root, r.source)
  const res = await packageSettings(ctx.run).run(['dpkg-deb', '-f', file, 'Package', 'Version'], { timeoutMs: PACKAGE_QUERY_TIMEOUT_MS, ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) })
  if (res.exitCode !== 0) throw new PackageSourceError(r.name, `cannot read ${r.source} as a .deb: ${res.spawnError ?? errorTail(res)}`)
  const fields = new Map(res.stdout.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]))
  const name = fields.get('Package')
  const version = fields.get('Version')
  if (name !== r.name) throw new PackageSourceError(r.name, `${r.source} holds the package ${name ?? '(none)'}, not ${r.name}`)
  if (version === undefined || version === '') throw new PackageSourceError(r.name, `${r.source} has no Version field`)
  return { candidate: version, versions: [version], file }
}
