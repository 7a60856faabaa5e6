/** Default mesh name; topics and meshes are separated by it, so two fleets can share a network. */
export const DEFAULT_MESH = 'default'

/**
 * Periodic re-apply to repair drift. Puppet's agent runs every 30 min; we re-check every 5 min
 * because a no-op apply of 1,000 files costs well under a second.
 */
export const DEFAULT_REAPPLY_INTERVAL_MS = 5 * 60_000

/**
 * While a node bakes in a running rollout stage, it re-applies this often, which re-runs the
 * policy's health checks: a node that turns unhealthy during the bake sends a receipt saying so
 * within this long, not at the next drift repair minutes later.
 */
export const DEFAULT_BAKE_CHECK_INTERVAL_MS = 10_000

/**
 * Connections the agent keeps by dialling remembered and exchanged peers (libp2p 2 no longer
 * auto-dials). Gossipsub's mesh degree D is 6, so 8 gives it room to choose.
 */
export const DEFAULT_TARGET_PEERS = 8

/** How often the agent tops up its connections and saves its peer list. */
export const PEER_MAINTENANCE_INTERVAL_MS = 10_000

/**
 * Chance that a maintenance tick of a node at its connection target swaps one connection for a
 * known but unconnected peer (rules.ts, `rotates`). Topping up alone never dials across a healed
 * partition: during the cut each side refills its connections from its own side. At 0.1 a node
 * rotates about once every 100 s (one dial and one hang-up; gossipsub re-grafts at its next
 * heartbeat), and a fleet of N nodes makes N/100 rotation dials a second, so a healed cut gets
 * its first link in about 100/N seconds divided by the share of dials that cross
 * (docs/scale.md, "Healing a partition").
 */
export const PEER_ROTATION_CHANCE = 0.1

export const DEFAULT_API_HOST = '127.0.0.1'

/** HTTP request bodies (publish) are bounded like envelopes from the wire. */
export const MAX_API_BODY_BYTES = 4 * 1024 * 1024

export function policyTopic (mesh: string): string {
  return `/grapevine/${mesh}/policies/1`
}

/**
 * Envelopes larger than this are announced (signed header, ~420 bytes) and fetched once by each
 * node instead of gossiped whole (docs/scale.md, "Large policies"). Each hop then pays a round
 * trip for the body; below ~16 KiB the ~5 duplicate copies gossip delivers cost less than that.
 */
export const DEFAULT_ANNOUNCE_THRESHOLD = 16 * 1024

/** Peers asked for an announced envelope before giving up and leaving it to anti-entropy: the announcer, then others. */
export const MAX_FETCH_PEERS = 4

/**
 * Announcements have a topic of their own, so agents that predate it never see (and never
 * penalise) them: they still get large policies by anti-entropy sync.
 */
export function announceTopic (mesh: string): string {
  return `/grapevine/${mesh}/announce/1`
}

/**
 * Gossip relays only what came by gossip; the agent also gossips on an envelope taken by sync
 * when it replaces an older version or was signed this recently (not what a joining node
 * catches up on: everyone else has that).
 */
export const RELAY_SYNCED_WITHIN_MS = 60 * 60_000

export function receiptTopic (mesh: string): string {
  return `/grapevine/${mesh}/receipts/1`
}

/**
 * With `--admitted-only`, how long a peer that failed the admission check stays blocked. Long
 * enough that a rogue cannot retry every few seconds; short enough that a node admitted a moment
 * later (certificate installed, trust policy with its enroller not yet gossiped) gets back in
 * without anyone restarting anything.
 */
export const ADMISSION_BLOCK_MS = 5 * 60_000

/** With `--admitted-only`, how often connected peers' certificates are judged again: revocations and expiries bite within this. */
export const ADMISSION_RECHECK_MS = 30_000

/**
 * Retries of a state write that must not be lost (an envelope before its apply): the first after
 * 1 s, doubling up to once a minute. A full disk is seldom freed within seconds, and a write a
 * minute costs nothing; a minute is also the longest an apply waits once space is freed.
 */
export const STATE_RETRY_FIRST_MS = 1_000
export const STATE_RETRY_MAX_MS = 60_000

/** The resource a receipt, status and history name for a policy's secrets: why they were not for this node, or did not open. */
export const SECRETS_RESOURCE = '(secrets)'

/** The state directory's lock (pid inside): one agent per state, or two would share a peer id and overwrite each other's state. `rekey` takes it to rotate the key file. */
export const AGENT_LOCK_FILE = 'agent.lock'
