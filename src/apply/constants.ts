import { constants } from 'node:fs'

/** Managed paths are prefixed by this unless `--root` says otherwise: the real machine. */
export const DEFAULT_ROOT = '/'

/** Mode of a file the policy creates without naming one: world-readable like most of /etc, independent of the agent's umask. */
export const DEFAULT_FILE_MODE = 0o644

/**
 * Mode of a file rendered from a secret (`{{ secrets.NAME }}`) when the policy names none, on
 * creation and on every apply after: a policy that says nothing must not leave a password
 * world-readable. Only the owner (root, for the agent) reads it; say `mode` to share it with a group.
 */
export const SECRET_FILE_MODE = 0o600

/** Mode of a directory the policy creates without naming one, for the same reason. */
export const DEFAULT_DIRECTORY_MODE = 0o755

/**
 * Resources whose file-system work may be in flight at once. An fsync costs about a
 * millisecond on a virtual disk; overlapping them hides most of that, and beyond libuv's
 * four worker threads more only queues while holding buffers. (The rest of a write is
 * synchronous: see writeFileAtomic.)
 */
export const IO_CONCURRENCY = 16

/**
 * Fewest files written together for which one syncfs(2) (a `sync -f` process, a few
 * milliseconds) replaces fdatasync file by file (a fraction of a millisecond each, four at
 * a time). Below it, syncfs would also pay for other programs' dirty data for little gain.
 */
export const SYNCFS_MIN_BATCH = 64

/** Files a write batch holds before it is made durable anyway: bounds how long the first waits. */
export const WRITE_BATCH_MAX = 2048

/** Bytes a write batch holds before it is made durable anyway: each waiting write keeps its content in memory. */
export const WRITE_BATCH_MAX_BYTES = 64 * 1024 * 1024

/** A syncfs slower than this (a file system with gigabytes to write back) is abandoned for fdatasync file by file. */
export const SYNCFS_TIMEOUT_MS = 60_000

/** Output kept per stream of an exec (the tail): enough for a useful error, bounded so a chatty command cannot exhaust memory. */
export const MAX_EXEC_OUTPUT_BYTES = 64 * 1024

/** Tail of stderr quoted in an exec failure's message; the full captured tail is in the result's output. */
export const EXEC_ERROR_TAIL_BYTES = 2 * 1024

/** After a timeout or abort, SIGTERM gets this long to end the process group before SIGKILL. */
export const EXEC_KILL_GRACE_MS = 2_000

/**
 * After the command itself exits, how long to wait for its output pipes to close. A command
 * that starts a daemon leaves the pipes open in the daemon; waiting for it would hang the apply.
 */
export const EXEC_DRAIN_MS = 500

/** Search path for exec commands: the environment is minimal on purpose so runs do not depend on who started the agent. */
export const EXEC_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** Files larger than this on either side are summarised by size and hash instead of diffed: diffs are for people. */
export const MAX_DIFF_INPUT_BYTES = 256 * 1024

/** A diff longer than this is cut, so one resource cannot swell the report (which becomes a gossiped receipt). */
export const MAX_DIFF_BYTES = 16 * 1024

/** Edit distance beyond which the diff algorithm gives up: bounds its cost, which grows with the product of sizes and edits. */
export const MAX_DIFF_EDIT_LENGTH = 5_000

/** An existing config file larger than this is not parsed for comparison; it is rewritten. Configs are small. */
export const MAX_CONFIG_READ_BYTES = 8 * 1024 * 1024

/** Under the state directory: content-addressed copies of replaced or deleted files. */
export const BACKUP_DIR = 'backups'

/** Read size when copying a large file into the backup store: big enough to amortise calls, small enough to keep memory flat. */
export const COPY_CHUNK_BYTES = 256 * 1024

/** Under the backup directory: one JSON line per backup, appended, for rollback and audit. */
export const BACKUP_INDEX = 'index.jsonl'

/**
 * Backups kept per path: the newest 5, with their contents; older lines are dropped from the
 * index and contents no kept line names are deleted, after each apply that made a backup. Enough
 * to go back a few changes by hand; without a bound, 50 applies of 2,000 changed files left a
 * 100,000-line index and every old content (issue 15).
 */
export const BACKUPS_PER_PATH = 5

/** Under the state directory: held while an apply runs so two appliers never interleave writes. */
export const LOCK_FILE = 'apply.lock'

/** Under the state directory: validated policies by file, so an unchanged policy is not parsed again (see loadPolicyFile). */
export const POLICY_CACHE_DIR = 'policy-cache'

/**
 * Opening flags for a path that lstat said is a file or directory: if it has been swapped for
 * a symlink since (by whoever can write to its directory), the open fails instead of reaching
 * the link's target; a FIFO swapped in cannot block the open.
 */
export const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK

/** Output a health check's result keeps (the tail): enough to say why a service is down, small enough for a gossiped receipt. */
export const CHECK_OUTPUT_TAIL_BYTES = 2 * 1024
