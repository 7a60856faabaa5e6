/** Every reason a certificate does not admit a node; `reason` is what fleet views show. */
export class AdmissionError extends Error {
  static override name = 'AdmissionError'
  override name = 'AdmissionError'
  readonly reason: string = 'invalid'
}

/** Too large, not UTF-8 JSON, or not the certificate's shape. */
export class InvalidAdmissionError extends AdmissionError {
  static override name = 'InvalidAdmissionError'
  override name = 'InvalidAdmissionError'
  override readonly reason = 'invalid'
}

/** The signature does not verify for the enroller key the certificate names: forged or tampered. */
export class AdmissionSignatureError extends AdmissionError {
  static override name = 'AdmissionSignatureError'
  override name = 'AdmissionSignatureError'
  override readonly reason = 'bad-signature'
}

/** A valid certificate, but for another node: certificates are not transferable. */
export class AdmissionWrongPeerError extends AdmissionError {
  static override name = 'AdmissionWrongPeerError'
  override name = 'AdmissionWrongPeerError'
  override readonly reason = 'wrong-peer'
}

/** Signed by a key that is neither a root nor an enroller of the trust policy (or a revoked key). */
export class UnknownEnrollerError extends AdmissionError {
  static override name = 'UnknownEnrollerError'
  override name = 'UnknownEnrollerError'
  override readonly reason = 'unknown-enroller'
}

/** The trust policy lists this peer id under `revokedNodes`. */
export class RevokedNodeError extends AdmissionError {
  static override name = 'RevokedNodeError'
  override name = 'RevokedNodeError'
  override readonly reason = 'revoked'
}

export class AdmissionExpiredError extends AdmissionError {
  static override name = 'AdmissionExpiredError'
  override name = 'AdmissionExpiredError'
  override readonly reason = 'expired'
}
