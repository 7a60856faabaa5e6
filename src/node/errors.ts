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

/** An agent option that cannot work (a listen address that is no multiaddr, a negative interval): refused before anything starts. */
export class AgentOptionsError extends Error {
  static override name = 'AgentOptionsError'
  override name = 'AgentOptionsError'
  constructor (readonly option: string, message: string) {
    super(message)
  }
}

/** Another agent, still running, holds the state directory's lock: two agents on one state would share a peer id. */
export class StateDirLockedError extends Error {
  static override name = 'StateDirLockedError'
  override name = 'StateDirLockedError'
  constructor (readonly stateDir: string, readonly pid: number) {
    super(`the state directory ${stateDir} is in use by another agent (pid ${pid}); stop it, or give this one its own --state`)
  }
}
