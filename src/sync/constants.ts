import { MAX_ENVELOPE_BYTES } from '../envelope/index.js'

export const SYNC_PROTOCOL = '/grapevine/sync/1.0.0'

/** A frame carries at most one envelope (plus its type byte), or a digest that fits the same bound. */
export const MAX_FRAME_BYTES = MAX_ENVELOPE_BYTES + 1024

/** Policies a mesh may carry; a digest longer than this is refused as garbage. */
export const MAX_DIGEST_ENTRIES = 10_000

/** Frames in one sync exchange: two digests, two wants, a peer list, a done, and the envelopes. */
export const MAX_FRAMES_PER_STREAM = 2 * MAX_DIGEST_ENTRIES + 8

/** Peers offered in one peer-exchange frame: enough to escape a dead bootstrap node, small enough to stay cheap. */
export const MAX_PEERS_PER_FRAME = 16

/** A peer that goes quiet this long mid-exchange is given up on. */
export const READ_TIMEOUT_MS = 10_000

/** A whole exchange is bounded too, so a slow-drip peer cannot hold a stream forever. */
export const EXCHANGE_TIMEOUT_MS = 60_000

/**
 * Periodic anti-entropy with one random peer. 30 s keeps background traffic to one small
 * digest per node per 30 s while healing lost messages well inside a minute.
 */
export const DEFAULT_SYNC_INTERVAL_MS = 30_000

/** Concurrent inbound sync streams per connection; one is enough, two tolerates overlap. */
export const MAX_INBOUND_STREAMS = 4

/** A fetch request is a name (≤ 200 characters), a version and a hash: 512 bytes is ample. */
export const MAX_FETCH_FRAME_BYTES = 512

/**
 * How long one peer has to answer a fetch (request, then up to a 2 MiB envelope). The same
 * bound as a sync read: an announcer that stalls this long is passed over for another peer.
 */
export const FETCH_TIMEOUT_MS = READ_TIMEOUT_MS
