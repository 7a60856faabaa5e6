import type { PackageResource } from '../../policy/schema.js'
import type { SystemContext } from '../system.js'

/** What a provider can install for one resource. */
export interface Offer {
  /** The version `present` and `latest` install; undefined when the sources have none. */
  candidate?: string
  /** Every version it could install: an exact `ensure` must be one of them. */
  versions: string[]
  /** Host path of the package file (`source`) to install from. */
  file?: string
}

/** One package's part of a transaction. */
export interface PackageOp {
  name: string
  remove?: true
  /** The exact version to install (absent: the candidate). */
  version?: string
  file?: string
  downgrade?: boolean
}

/**
 * A package manager. One file per provider (apt.ts, dpkg.ts); dnf or apk would be one more
 * file implementing these two calls and a line in PROVIDERS (index.ts). The installed state is
 * read by the family's database reader (database.ts for dpkg-based systems).
 */
export interface PackageProvider {
  readonly name: string
  /** Read-only: what could be installed for `r` (apt-cache policy, or the source file's version). */
  offer: (r: PackageResource, ctx: SystemContext) => Promise<Offer>
  /** Installs and removes every op in as few tool runs as the tool allows; throws a named error. */
  commit: (ops: PackageOp[], ctx: SystemContext) => Promise<void>
}
