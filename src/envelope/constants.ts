/** Envelope format version; a node refuses formats it does not know rather than guessing. */
export const ENVELOPE_FORMAT = 1

/**
 * Largest envelope accepted from anywhere. Policies are capped at 1 MiB of source and sources are
 * embedded (base64 grows them by a third), so 2 MiB fits the largest valid policy while keeping
 * gossipsub's 4 MiB message ceiling out of reach.
 */
export const MAX_ENVELOPE_BYTES = 2 * 1024 * 1024

/** Domain separation: a signature over an envelope header can never be replayed as another kind of signature. */
export const ENVELOPE_SIGNING_CONTEXT = 'grapevine/envelope/v1\n'

export const KEY_ID_PREFIX = 'ed25519:'

/**
 * Largest announcement (signed header plus signature, no policy) accepted from gossip. A real one
 * is ~420 bytes; the longest policy name (200 characters) keeps it under 700.
 */
export const MAX_ANNOUNCEMENT_BYTES = 1024

/** A forced version's reason: a sentence for the audit trail, not a document. */
export const MAX_FORCE_REASON_CHARS = 500

/**
 * How far one envelope may move a name's version past the one a node holds. A chain moves by
 * one; a forced or root-signed version may jump, but never so far that a name could be pushed
 * to the end of the integers and made unpublishable (docs/versions.md).
 */
export const MAX_VERSION_JUMP = 1000
