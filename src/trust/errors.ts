import { EnvelopeError } from '../envelope/errors.js'

export class UntrustedSignerError extends EnvelopeError {
  static override name = 'UntrustedSignerError'
  override name = 'UntrustedSignerError'
  readonly reason = 'untrusted'
}

export class RevokedSignerError extends EnvelopeError {
  static override name = 'RevokedSignerError'
  override name = 'RevokedSignerError'
  readonly reason = 'revoked'
}

export class OutOfScopeError extends EnvelopeError {
  static override name = 'OutOfScopeError'
  override name = 'OutOfScopeError'
  readonly reason = 'out-of-scope'
}

/** Only a root key may sign the trust policy: admins can never widen their own powers or replace the roots. */
export class NotRootError extends EnvelopeError {
  static override name = 'NotRootError'
  override name = 'NotRootError'
  readonly reason = 'not-root'
}
