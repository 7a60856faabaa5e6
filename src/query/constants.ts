import { MAX_ENVELOPE_BYTES } from '../envelope/index.js'

/** One request frame, answered by frames until the responder closes. */
export const QUERY_PROTOCOL = '/grapevine/query/1.0.0'

/** A request is `{"op":"envelope","name":…,"version":…}` with a name of at most 200 characters: 4 KiB is ample. */
export const MAX_REQUEST_BYTES = 4096

/** A response frame holds one archived envelope or one chunk of the fleet view, plus JSON framing. */
export const MAX_RESPONSE_FRAME_BYTES = MAX_ENVELOPE_BYTES + 1024

/** Fleet nodes per response frame. */
export const FLEET_CHUNK = 500

/**
 * Bytes per fleet response frame, well under the frame bound: 500 nodes used to be assumed
 * small, until one node reporting 2,000 policy names made a frame the asker refused.
 */
export const FLEET_FRAME_BYTES = 1024 * 1024

/** Response frames per query: 200,000 fleet nodes, far beyond a mesh's size, and a bound on what a peer can make us read. */
export const MAX_RESPONSE_FRAMES = 400

/**
 * The fleet view is fetched a page at a time, each page its own query with its own deadline:
 * at most this many nodes and about this many bytes (a page ends after the node that passes
 * it), so a large view, or nodes reporting hundreds of long policy names, never needs one
 * stream to carry hundreds of megabytes within QUERY_TIMEOUT_MS.
 */
export const FLEET_PAGE_NODES = 2000
export const FLEET_PAGE_BYTES = 4 * 1024 * 1024

/** Pages one fleet query may take: 200,000 nodes. */
export const MAX_FLEET_PAGES = 100

/** A query that has not been answered (or a response not delivered) in this long is abandoned. */
export const QUERY_TIMEOUT_MS = 15_000

/** Concurrent inbound query streams per connection: admin commands ask one at a time. */
export const MAX_INBOUND_QUERY_STREAMS = 8
