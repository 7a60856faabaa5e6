// Named errors of the agent and its local protocols; callers branch on `err.name`.

/** An operation on an agent that has been stopped. */
export class AgentStoppedError extends Error {
  static override name = 'AgentStoppedError'
  override name = 'AgentStoppedError'
}

/** A routed receipt that does not verify, or is no receipt: the stream is dropped. */
export class InvalidRoutedReceiptError extends Error {
  static override name = 'InvalidRoutedReceiptError'
  override name = 'InvalidRoutedReceiptError'
}

/** More receipts on one stream than MAX_RECEIPTS_PER_STREAM. */
export class TooManyReceiptsError extends Error {
  static override name = 'TooManyReceiptsError'
  override name = 'TooManyReceiptsError'
}

/** A receipts stream that did not finish within its deadline. */
export class ReceiptStreamTimeoutError extends Error {
  static override name = 'ReceiptStreamTimeoutError'
  override name = 'ReceiptStreamTimeoutError'
}

/** `--admitted-only` on a node whose trust policy lists no enrollers: every peer would count, so the option would mean nothing. */
export class AdmissionNotEnforcedError extends Error {
  static override name = 'AdmissionNotEnforcedError'
  override name = 'AdmissionNotEnforcedError'
}

/** What a peer sent on the admission protocol was not one bounded frame within the deadline. */
export class AdmissionStreamError extends Error {
  static override name = 'AdmissionStreamError'
  override name = 'AdmissionStreamError'
}
