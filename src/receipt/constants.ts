/**
 * Receipts are small by design: one per node per publish travels to every node. 8 KiB for the
 * report itself (ten failures of 400 characters fit) plus 4 KiB for the admission certificate
 * it carries (MAX_ADMISSION_BYTES): a node's certificate must never make its receipt unsendable.
 */
export const MAX_RECEIPT_BYTES = 12 * 1024

/** Failing resources listed in one receipt; the rest are counted, and the node's history has all. */
export const MAX_RECEIPT_FAILURES = 10

/** Error text kept per failing resource: this many characters, and this many bytes once in JSON. */
export const MAX_RECEIPT_ERROR_CHARS = 400

/** Policies summarised in one presence beacon. */
export const MAX_PRESENCE_POLICIES = 64

/**
 * Bytes of facts a presence beacon carries (docs/facts.md): a summary (os, kernel, architecture,
 * host names, processors, memory, init, primary addresses: about 600 bytes) and what custom
 * facts fit beside it. With a certificate at its bound, what is left of MAX_RECEIPT_BYTES still
 * names policies; past it a beacon names fewer policies, never fewer facts.
 */
export const MAX_PRESENCE_FACTS_BYTES = 2048

/** Nesting of a beacon's facts, the facts map counting as one (custom facts are bounded the same way). */
export const MAX_PRESENCE_FACTS_DEPTH = 8

/**
 * Bytes of facts a fleet view holds over all its nodes; beyond this the least recently seen
 * node goes (one without a certificate that holds first), as for MAX_FLEET_POLICY_STATES.
 * 10,000 nodes with summaries at their bound are 20 MB; MAX_FLEET_NODES made-up ones would be 200 MB.
 */
export const MAX_FLEET_FACT_BYTES = 32 * 1024 * 1024

export const RECEIPT_SIGNING_CONTEXT = 'grapevine/receipt/v1\n'

/**
 * Presence beacons let `fleet` and `publish --wait` know which nodes exist. Every 5 min
 * (jittered) means 33 beacons/s mesh-wide at N = 10,000, about 10 KB/s per node: cheap.
 */
export const DEFAULT_BEACON_INTERVAL_MS = 5 * 60_000

/** Nodes a fleet view remembers; beyond this the least recently seen are dropped. */
export const MAX_FLEET_NODES = 100_000

/**
 * Policies a fleet view keeps per node; beyond this the one reported longest ago goes. Far above
 * what a fleet runs (beacons list 64), and a bound on what one node, real or made up, can make
 * every fleet view hold and every fleet query carry.
 */
export const MAX_FLEET_POLICIES_PER_NODE = 512

/**
 * Policy states a fleet view keeps over all its nodes; beyond this the least recently seen node
 * goes (one without a certificate that holds first). MAX_FLEET_NODES made-up nodes each
 * reporting MAX_PRESENCE_POLICIES would otherwise hold 6.4 million (well over a gigabyte);
 * 500,000 (about 125 MB) is 10,000 nodes running 50 policies each.
 */
export const MAX_FLEET_POLICY_STATES = 500_000
