/**
 * The agent's dissemination rules as pure functions. The live agent and the model engine
 * (src/sim/model) both decide by these, so the model stays a model of this code and not of a
 * second copy of it. The version rule itself is envelope/selector.ts.
 */
import { jittered, shuffle } from './clock.js'
import { DEFAULT_ANNOUNCE_THRESHOLD, MAX_FETCH_PEERS, PEER_ROTATION_CHANCE, RELAY_SYNCED_WITHIN_MS } from './constants.js'
import type { ReceiptOutcome } from '../receipt/index.js'

/** How an envelope reached a node: the one vocabulary of the agent, its history and the simulator. */
export type Via = 'gossip' | 'sync' | 'local' | 'api' | 'disk'

/** Whether an envelope of `size` bytes is announced (signed header, body fetched) rather than gossiped whole; a threshold of 0 or Infinity turns announcing off. */
export function announces (size: number, threshold: number = DEFAULT_ANNOUNCE_THRESHOLD): boolean {
  return threshold > 0 && Number.isFinite(threshold) && size > threshold
}

/**
 * Whether a node that has just accepted an envelope sends it on to its gossip peers.
 * - gossip: yes (gossipsub forwards what its validator accepted);
 * - local, api: yes, that is publishing;
 * - sync: only when it replaced an older version this node held, or was signed within
 *   RELAY_SYNCED_WITHIN_MS (a healed partition, a publisher whose gossip raced its first
 *   subscription exchange), so it spreads at gossip speed rather than one sync interval per
 *   hop. Old envelopes a joining node catches up on are not: everyone else has them;
 * - disk: never (loaded at start).
 */
export function forwards (via: Via, replacedOlder: boolean, ageMs: number): boolean {
  switch (via) {
    case 'gossip':
    case 'local':
    case 'api':
      return true
    case 'sync':
      return replacedOlder || ageMs < RELAY_SYNCED_WITHIN_MS
    case 'disk':
      return false
  }
}

/** A receipt's outcome from an apply's counts: one rule for receipts, beacons and the model. */
export function receiptOutcome (changed: number, failed: number): Extract<ReceiptOutcome, 'applied' | 'unchanged' | 'failed'> {
  return failed > 0 ? 'failed' : changed > 0 ? 'applied' : 'unchanged'
}

/**
 * Where a receipt goes: to the peer this node first took the envelope from, unless there is
 * none (this node published it), it is the peer the receipt just came from, or it is no longer
 * connected. Undefined means keep it: the fleet view holds it and presence beacons carry it.
 */
export function receiptRoute<P> (upstream: P | undefined, from: P | undefined, connected: (peer: P) => boolean): P | undefined {
  if (upstream === undefined || upstream === from || !connected(upstream)) return undefined
  return upstream
}

/** Whom to ask for an announced body, in order: the announcer, then other peers in random order, at most `max` in all. */
export function fetchCandidates<P> (announcer: P, others: readonly P[], random: () => number, max = MAX_FETCH_PEERS): P[] {
  return [announcer, ...shuffle(others.filter((p) => p !== announcer), random)].slice(0, Math.max(1, max))
}

/** Spread of periodic anti-entropy rounds: interval × U(0.5, 1.5), so a fleet started together does not sync in lockstep. */
export const SYNC_JITTER = 1

/** The delay before a node's next periodic sync round. */
export function syncDelay (interval: number, random: () => number): number {
  return jittered(interval, random, SYNC_JITTER)
}

/**
 * Peer rotation, how a cut mesh heals whatever its connection counts: during a partition each
 * side refills its connections from its own side, so after the heal no node is below its target
 * and topping up never dials across. Whether this maintenance tick dials one known but
 * unconnected peer (chosen uniformly) beyond the target: only at or above the target (below it,
 * the tick is topping up from the same random candidates), with `chance` per tick, so it is
 * jittered and at most one extra dial a tick. The new connection syncs, as every one does.
 */
export function rotates (connections: number, target: number, candidates: number, random: () => number, chance = PEER_ROTATION_CHANCE): boolean {
  return target > 0 && connections >= target && candidates > 0 && random() < chance
}

/**
 * After a rotation dial: the connection to hang up so the node goes back to its target, the one
 * held longest, never the one just dialled. Dropping the oldest keeps the newest, which after a
 * heal are the links across the old cut; ties go to the first listed. `held` lists the
 * connections it may drop (peers it knows as members, not an admin's passing client);
 * undefined when the node is not above its target.
 */
export function rotationDrop<P> (held: ReadonlyArray<{ peer: P, since: number }>, dialled: P, connections: number, target: number): P | undefined {
  if (connections <= target) return undefined
  let oldest: { peer: P, since: number } | undefined
  for (const h of held) if (h.peer !== dialled && (oldest === undefined || h.since < oldest.since)) oldest = h
  return oldest?.peer
}
