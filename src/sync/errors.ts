/** The remote sent something that is not a valid sync frame; the peer is disconnected. */
export class SyncProtocolError extends Error {
  static override name = 'SyncProtocolError'
  override name = 'SyncProtocolError'
}

export class SyncTimeoutError extends Error {
  static override name = 'SyncTimeoutError'
  override name = 'SyncTimeoutError'
}
