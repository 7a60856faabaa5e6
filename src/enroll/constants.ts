/** Seconds ssh waits for the TCP connection and the server's banner before giving up. */
export const SSH_CONNECT_TIMEOUT_S = 15

/**
 * Seconds the master connection outlives its last command: enough for the next step, short
 * enough that a crashed enroll leaves no connection open for long (close() ends it at once).
 */
export const SSH_CONTROL_PERSIST_S = 60

/** Keep-alives: a connection that stops answering is declared lost after about 15 s, not hung on. */
export const SSH_SERVER_ALIVE = { intervalS: 5, count: 3 }

/** Seconds the install script waits for the old agent to stop (SIGTERM, then SIGKILL) and for the new one to log "agent started". */
export const STOP_TIMEOUT_S = 30
export const START_TIMEOUT_S = 30

/** How often `--wait` asks the local agent's fleet view for the new node. */
export const WAIT_POLL_MS = 500

/**
 * The most a remote command's stdout or stderr may print before enroll stops it: every step
 * prints a few lines (the probe, a checksum, the identity, the install's result), so more is a
 * host misbehaving, and is not held in memory.
 */
export const MAX_REMOTE_OUTPUT_BYTES = 1024 * 1024
