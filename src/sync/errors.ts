/** The remote sent something that is not a valid sync frame; the peer is disconnected. */
export class SyncProtocolError extends Error {
  static override name = 'SyncProtocolError'
  override name = 'SyncProtocolError'
}

export class SyncTimeoutError extends Error {
  static override name = 'SyncTimeoutError'
  override name = 'SyncTimeoutError'
}

/**
 * The stream closed before the exchange finished. Not proof of a hostile peer: an agent that
 * stops, or one whose protocol stream limit is reached while it is overloaded, ends streams
 * this way. The round fails; the connection stays.
 */
export class SyncStreamEndedError extends Error {
  static override name = 'SyncStreamEndedError'
  override name = 'SyncStreamEndedError'
}
