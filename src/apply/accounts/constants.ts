/**
 * How long one shadow tool may take. They edit a few small files under a lock that other
 * tools hold only briefly; a minute means something is stuck (a lock held by a hung process).
 */
export const ACCOUNT_TOOL_TIMEOUT_MS = 60_000

/**
 * How long a tool that moves or removes a home directory may take (`usermod -d -m`,
 * `userdel -r`): across file systems the move is a copy of the whole tree.
 */
export const HOME_MOVE_TIMEOUT_MS = 10 * 60_000

/** Tail of a tool's stderr quoted in its failure: the shadow tools say what went wrong in a line or two. */
export const TOOL_ERROR_TAIL_BYTES = 2 * 1024

/** Output kept per stream; the tools print a few lines at most. */
export const MAX_TOOL_OUTPUT_BYTES = 64 * 1024

/**
 * Where the tools are looked up. The agent's own PATH may lack the sbin directories (a
 * service manager's default, a non-login shell), where Debian installs useradd and friends.
 */
export const TOOL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Key of the account database cached in SystemContext.run for one apply. */
export const ACCOUNTS_RUN_KEY = 'accounts:db'
