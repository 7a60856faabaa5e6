/** Domain separation: an admission signature can never be replayed as an envelope's or a receipt's. */
export const ADMISSION_SIGNING_CONTEXT = 'grapevine/admission/v1\n'

/**
 * Largest certificate accepted from anywhere. A real one is ~450 bytes; 16 tags of the longest
 * key and value stay under 4 KiB. Receipts and beacons carry one, so MAX_RECEIPT_BYTES leaves room for it.
 */
export const MAX_ADMISSION_BYTES = 4096

/** Tags an enroller may assert in one certificate: a handful of facts (role, site, owner), not an inventory. */
export const MAX_ADMISSION_TAGS = 16

/** Where an agent looks for its certificate when not given `--admission`. */
export const ADMISSION_FILE = 'admission.cert'

/** The stream protocol on which peers show each other their certificates (`--admitted-only`). */
export const ADMISSION_PROTOCOL = '/grapevine/admission/1.0.0'

/**
 * With `--admitted-only`, how long a new connection may stay without showing a valid
 * certificate: long enough for a noise handshake, identify and one stream on a loaded host.
 */
export const ADMISSION_GRACE_MS = 10_000
