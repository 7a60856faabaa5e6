import { PEER_MAINTENANCE_INTERVAL_MS } from '../node/constants.js'

/** Ethernet MTU 1500 minus IP and TCP headers: the segment a lost packet takes with it. */
export const DEFAULT_MSS_BYTES = 1460

/**
 * Linux's minimum TCP retransmission timeout. On short links the RTO sits at this floor, so a
 * lost segment costs about 200 ms, whatever the round-trip time.
 */
export const DEFAULT_RTO_MS = 200

/** Chunks a shaped link holds before its sender waits: a send buffer, not an unbounded queue. */
export const MAX_IN_FLIGHT = 1024

/** Repeat losses of one segment that still back off; beyond this TCP would give up anyway. */
export const MAX_BACKOFFS = 6

/** Each worker process hosts a share of the agents; two match this project's 2-core machines. */
export const DEFAULT_WORKERS = 2

/** Agents a worker starts at once: enough to overlap key generation with I/O, few enough to keep event loops responsive. */
export const START_CONCURRENCY = 4

/** Gossipsub heartbeats every node must have seen after the topology is wired before the clock starts (mesh GRAFTs happen on heartbeats). */
export const READY_HEARTBEATS = 2

/** A publish counts as done (for the report's traffic window) when every targeted node applied it, or after this long. */
export const PUBLISH_WINDOW_MS = 30_000

/** Hard cap on a run beyond its last event and its longest assertion deadline. */
export const RUN_GRACE_MS = 30_000

/** Default scenario seed when neither the file nor --seed gives one. */
export const DEFAULT_SEED = 1

/** Coverage points plotted per publish; enough for a smooth step curve at thousands of nodes. */
export const MAX_CURVE_POINTS = 400

/**
 * libp2p refuses more than 5 new inbound connections per second from one host, and more than
 * 10 mid-handshake. On one machine every peer is 127.0.0.1, so a simulated fleet would trip
 * them at once; on real hosts each agent has its own address. Raised far out of the way.
 */
export const SIM_INBOUND_LIMITS = { perHostPerSecond: 1_000_000, pending: 10_000 }

/** A dial on loopback that has not finished in this long has failed. */
export const DIAL_TIMEOUT_MS = 10_000

/**
 * Agents top up their connections (to 8) on their first peer-maintenance round, 7.5–12.5 s
 * after they start: a burst of dials and handshakes. By default the clock starts after it, so
 * the timeline measures a fleet in its steady state; `--settle 0` skips the wait (CI).
 */
export const SETTLE_MIN_MS = Math.round(PEER_MAINTENANCE_INTERVAL_MS * 1.25)

/** Connection counts must hold still this long to count as settled. */
export const SETTLE_STABLE_MS = 3_000

/** Never wait longer than this for the mesh to settle. */
export const SETTLE_MAX_MS = 30_000
