/**
 * A query (is-enabled, is-active, show) reads unit files or asks the manager one question: it
 * answers in milliseconds, so a long wait means something is stuck.
 */
export const SYSTEMCTL_QUERY_TIMEOUT_MS = 30_000

/**
 * enable, disable and daemon-reload write symlinks or make the manager reread its units: quick,
 * but daemon-reload on a machine with thousands of units takes seconds.
 */
export const SYSTEMCTL_CHANGE_TIMEOUT_MS = 120_000

/**
 * start, stop and restart wait for the unit's job. systemd gives a start and a stop 90 s each
 * by default (DefaultTimeoutStartSec, DefaultTimeoutStopSec) and a restart is both: this lets
 * systemd time the unit out first, so its own message is what the report shows.
 */
export const SYSTEMCTL_JOB_TIMEOUT_MS = 240_000

/** Tail of systemctl's stderr quoted in a failure's message. */
export const SYSTEMCTL_ERROR_TAIL_BYTES = 2 * 1024

/**
 * Where systemd, as PID 1, marks that it runs: sd_booted(3) checks for this directory, so
 * does `systemctl`. Containers that run another init have no such directory.
 */
export const SYSTEMD_RUNNING_DIR = '/run/systemd/system'

/** Unit types systemctl knows; a name ending in none of them is a service (`nginx` is `nginx.service`). */
export const UNIT_SUFFIXES = ['service', 'socket', 'device', 'mount', 'automount', 'swap', 'target', 'path', 'timer', 'slice', 'scope'] as const

/**
 * Where the sandbox service runtime (`--sandbox-services`, rehearsals in a sandbox root) keeps
 * each unit's running state, under the root: where systemd keeps its runtime state, /run.
 */
export const SANDBOX_SERVICES_DIR = 'run/grapevine/services'

/** Unit file directories the sandbox runtime reads `ExecReload=` from, in systemd's order of precedence. */
export const UNIT_DIRS = ['etc/systemd/system', 'usr/local/lib/systemd/system', 'lib/systemd/system', 'usr/lib/systemd/system'] as const
