import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { PackageResource } from '../../policy/schema.js'
import type { SystemContext } from '../system.js'
import { PackageSourceError } from '../errors.js'
import { APT_ARCHIVES_DIR, ARCHIVE_MAX_FILES, PACKAGE_QUERY_TIMEOUT_MS } from './constants.js'
import type { Offer } from './provider.js'
import { packageSettings } from './tool.js'
import { compareVersions } from './version.js'

/**
 * What a sandbox root's own apt archive cache offers for `r`: the `.deb` files apt would have
 * downloaded there (`ROOT/var/cache/apt/archives/NAME_VERSION_ARCH.deb`), each read with
 * `dpkg-deb -f` (read-only), so a rehearsal root seeded like a machine that ran
 * `apt-get install --download-only` installs without a `source`. The candidate is the newest
 * version there; for an exact `ensure`, the file of that version. Throws PackageSourceError,
 * naming the directory, when none of its files is the package.
 */
export async function archiveOffer (r: PackageResource, ctx: SystemContext): Promise<Offer> {
  const dir = join(ctx.root, APT_ARCHIVES_DIR)
  // Package names hold no "_" (Debian policy 5.6.1), so the prefix names one package's files.
  const names = (await readdir(dir).catch(() => [] as string[]))
    .filter((f) => f.startsWith(`${r.name}_`) && f.endsWith('.deb'))
    .sort().reverse().slice(0, ARCHIVE_MAX_FILES)
  const { run } = packageSettings(ctx.run)
  const found = await Promise.all(names.map(async (name) => {
    const file = join(dir, name)
    const res = await run(['dpkg-deb', '-f', file, 'Package', 'Version'], { timeoutMs: PACKAGE_QUERY_TIMEOUT_MS, ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) })
    if (res.exitCode !== 0) return undefined // not a .deb after all (a partial download): apt skips it too
    const fields = new Map(res.stdout.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]))
    const version = fields.get('Version')
    return fields.get('Package') === r.name && version !== undefined && version !== '' ? { version, file } : undefined
  }))
  const debs = found.flatMap((d) => d !== undefined ? [d] : []).sort((a, b) => compareVersions(b.version, a.version))
  const newest = debs[0]
  if (newest === undefined) {
    throw new PackageSourceError(r.name, `the dpkg provider installs only from a package file: give source (a .deb path under the root ${ctx.root}), or put ${r.name}_VERSION_ARCH.deb in ${dir} (none there)`)
  }
  const exact = r.ensure !== 'present' && r.ensure !== 'latest' && r.ensure !== 'absent' ? debs.find((d) => compareVersions(d.version, r.ensure) === 0) : undefined
  return { candidate: newest.version, versions: debs.map((d) => d.version), file: (exact ?? newest).file }
}
