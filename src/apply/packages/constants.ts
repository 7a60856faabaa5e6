/**
 * How long a package transaction waits for another apt or dpkg (unattended-upgrades, an
 * operator's apt-get) to release the package database's lock before it fails by name. Long
 * enough for a routine upgrade to finish, short enough that an apply stuck behind a forgotten
 * interactive apt says so within minutes; the next apply tries again.
 */
export const PACKAGE_LOCK_WAIT_S = 120

/** How often the dpkg provider tries the lock again (dpkg itself fails at once when it is held). */
export const PACKAGE_LOCK_RETRY_MS = 250

/** A whole apt-get or dpkg transaction: downloads of large packages over a slow mirror fit. */
export const PACKAGE_COMMAND_TIMEOUT_MS = 30 * 60_000

/** dpkg-query, apt-cache and dpkg-deb -f read local files: seconds at most. */
export const PACKAGE_QUERY_TIMEOUT_MS = 60_000

/** Tail of the tool's output quoted in a failure: the last apt or dpkg errors, bounded so the report stays small. */
export const PACKAGE_ERROR_TAIL_BYTES = 2 * 1024

/** Where the package database lives under a root (dpkg's admindir). */
export const DPKG_ADMINDIR = 'var/lib/dpkg'

/** The tools' environment: fixed, so output parses the same whoever started the agent, and nothing prompts. */
export const PACKAGE_TOOL_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LC_ALL: 'C',
  DEBIAN_FRONTEND: 'noninteractive',
  APT_LISTCHANGES_FRONTEND: 'none'
}

/** Where apt keeps the .deb files it downloaded, under a root: the dpkg provider's source in a sandbox root without `source`. */
export const APT_ARCHIVES_DIR = 'var/cache/apt/archives'

/**
 * Most `NAME_*.deb` files of one package read from the archive cache (one dpkg-deb each): apt
 * keeps a few versions at most; a cache grown past this is read newest-named first.
 */
export const ARCHIVE_MAX_FILES = 32
