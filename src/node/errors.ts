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
