/**
 * Errors about secrets. None quotes a secret's value: their messages reach receipts, logs and
 * the publisher's terminal (docs/secrets.md, "Where plaintext may appear").
 */

/** This node may not read a policy's secrets: it is not listed, or listed with a key it no longer has. Its outcome is `sealed`. */
export class NotARecipientError extends Error {
  static override name = 'NotARecipientError'
  override name = 'NotARecipientError'
}

/** Sealed secrets that do not open for a listed recipient: altered, or listed without being sealed to it. */
export class SealedSecretsError extends Error {
  static override name = 'SealedSecretsError'
  override name = 'SealedSecretsError'
}

/** A secrets file (or stdin) that is not a flat map of names to values, or lacks a name a policy refers to. */
export class SecretsFileError extends Error {
  static override name = 'SecretsFileError'
  override name = 'SecretsFileError'
}

/** The recipients cannot be chosen as asked: an unknown node without a key, a bad recipients file, nobody at all. */
export class RecipientError extends Error {
  static override name = 'RecipientError'
  override name = 'RecipientError'
}

/** The node's encryption key file is unreadable or not an age identity. */
export class EncryptionKeyError extends Error {
  static override name = 'EncryptionKeyError'
  override name = 'EncryptionKeyError'
}
