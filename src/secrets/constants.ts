/** The format of a policy's `sealed` secrets: an age file (age-encryption.org/v1), X25519 stanzas, base64. */
export const SEALED_FORMAT = 'age-x25519'

/** An age X25519 recipient: `age1` and 58 bech32 characters (a 32-byte public key). */
export const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/

/** An age X25519 identity, as age writes it. */
export const AGE_IDENTITY = /^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/

/** Secrets one policy may carry. */
export const MAX_SECRETS = 100

/**
 * Recipients one policy may be sealed to. Each adds about 250 bytes to the envelope (its stanza
 * and its entry in the list) and ~1.3 ms to the seal; the 2 MiB envelope bound comes first, near
 * 8,000 (docs/secrets.md, "Limits").
 */
export const MAX_SECRET_RECIPIENTS = 10_000

/** Bytes of one secret's value, and of the secrets file a publisher reads. */
export const MAX_SECRET_BYTES = 64 * 1024
export const MAX_SECRETS_FILE_BYTES = 1024 * 1024

/** The node's encryption key in its state directory (mode 0600). */
export const ENCRYPTION_KEY_FILE = 'encryption.key'

/** What a secret's value is replaced with wherever text leaves an apply (reports, receipts, logs). */
export const REDACTED = '(secret)'

/** Values shorter than this are not redacted from output: "1" would mangle every number. Secrets are longer. */
export const MIN_REDACTED_LENGTH = 4
