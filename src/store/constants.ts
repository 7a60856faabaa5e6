/**
 * Marks the temporary file of an atomic write (`.NAME.grapevine-tmp-PID-RANDOM`), so that a
 * later run can tell ours from anyone else's and clean up after a crash.
 */
export const TEMP_MARKER = 'grapevine-tmp'

/**
 * Bytes of randomness in a temporary file's name: with the pid, enough that two writers
 * never pick the same name, while keeping the name short (NAME_MAX is 255).
 */
export const TEMP_RANDOM_BYTES = 6

/**
 * Temporary names drawn per call to randomBytes: as unpredictable as a call per name, which
 * costs 13 µs each, and an apply may name thousands.
 */
export const TEMP_NAMES_PER_DRAW = 256

/** Characters of the target's name kept in its temporary file's name, so the name stays under NAME_MAX (255). */
export const TEMP_NAME_MAX_BASE = 150
