/** Default mesh name; topics and meshes are separated by it, so two fleets can share a network. */
export const DEFAULT_MESH = 'default'

/**
 * Periodic re-apply to repair drift. Puppet's agent runs every 30 min; we re-check every 5 min
 * because a no-op apply of 1,000 files costs well under a second.
 */
export const DEFAULT_REAPPLY_INTERVAL_MS = 5 * 60_000

/**
 * Connections the agent keeps by dialling remembered and exchanged peers (libp2p 2 no longer
 * auto-dials). Gossipsub's mesh degree D is 6, so 8 gives it room to choose.
 */
export const DEFAULT_TARGET_PEERS = 8

/** How often the agent tops up its connections and saves its peer list. */
export const PEER_MAINTENANCE_INTERVAL_MS = 10_000

export const DEFAULT_API_HOST = '127.0.0.1'

/** HTTP request bodies (publish) are bounded like envelopes from the wire. */
export const MAX_API_BODY_BYTES = 4 * 1024 * 1024

export function policyTopic (mesh: string): string {
  return `/grapevine/${mesh}/policies/1`
}

export function receiptTopic (mesh: string): string {
  return `/grapevine/${mesh}/receipts/1`
}
