/** Base class: everything the validator can refuse, with a stable `reason` for metrics and logs. */
export abstract class EnvelopeError extends Error {
  abstract readonly reason: string
}

export class EnvelopeTooLargeError extends EnvelopeError {
  static override name = 'EnvelopeTooLargeError'
  override name = 'EnvelopeTooLargeError'
  readonly reason = 'too-large'
  constructor (readonly size: number, readonly limit: number) {
    super(`envelope is ${size} bytes, over the ${limit}-byte limit`)
  }
}

export class MalformedEnvelopeError extends EnvelopeError {
  static override name = 'MalformedEnvelopeError'
  override name = 'MalformedEnvelopeError'
  readonly reason = 'malformed'
}

export class InvalidEnvelopeError extends EnvelopeError {
  static override name = 'InvalidEnvelopeError'
  override name = 'InvalidEnvelopeError'
  readonly reason = 'invalid'
}

export class BadSignatureError extends EnvelopeError {
  static override name = 'BadSignatureError'
  override name = 'BadSignatureError'
  readonly reason = 'bad-signature'
}

export class ContentHashMismatchError extends EnvelopeError {
  static override name = 'ContentHashMismatchError'
  override name = 'ContentHashMismatchError'
  readonly reason = 'hash-mismatch'
}

export class InvalidKeyError extends Error {
  static override name = 'InvalidKeyError'
  override name = 'InvalidKeyError'
}

/** A fetched envelope is valid but not the one its announcement signed. */
export class AnnouncementMismatchError extends EnvelopeError {
  static override name = 'AnnouncementMismatchError'
  override name = 'AnnouncementMismatchError'
  readonly reason = 'not-announced'
}
