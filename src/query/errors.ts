/** A peer sent a query that is not one (not JSON, an unknown op, a bad field, or none at all); the stream is aborted. */
export class InvalidQueryError extends Error {
  static override name = 'InvalidQueryError'
  override name = 'InvalidQueryError'
}

/** A peer answered with more frames than a query may have (MAX_RESPONSE_FRAMES); the stream is aborted. */
export class TooManyResponseFramesError extends Error {
  static override name = 'TooManyResponseFramesError'
  override name = 'TooManyResponseFramesError'
}

/** A peer's answer is not what was asked for (the fleet view is not a list of nodes). */
export class InvalidQueryResponseError extends Error {
  static override name = 'InvalidQueryResponseError'
  override name = 'InvalidQueryResponseError'
}

/** A query stream still open at its deadline (QUERY_TIMEOUT_MS): a peer dripping bytes does not hold it. */
export class QueryTimeoutError extends Error {
  static override name = 'QueryTimeoutError'
  override name = 'QueryTimeoutError'
}
