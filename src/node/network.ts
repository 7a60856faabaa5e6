import { createNet, type GrapevineLibp2p, type MetricsRegister, type PrivateKey } from '../net/libp2p.js'
import type { StateStore } from '../store/index.js'
import type { AntiEntropyInit, SyncSource } from '../sync/index.js'
import type { PolicyBook } from './book.js'
import type { Peers } from './peers.js'
import { chainSince } from './journal.js'
import type { AgentOptions } from './options.js'
import { announceTopic, policyTopic, receiptTopic } from './constants.js'
import { INTERNAL_REASON, type Intake, type Taken } from './intake.js'
import { RateLimiter } from './rate-limit.js'
import { envelopeId } from '../envelope/index.js'
import { ConnectionGuard } from './connection-guard.js'
import { peerIdOfAddr } from './peers.js'

/** Connections an agent keeps at most (libp2p's cap): its target of 8, the peers that dial it, and room for admin commands. */
export const DEFAULT_MAX_CONNECTIONS = 64

/**
 * Envelopes one peer's sync deliveries may have refused (untrusted, out of scope, not valid)
 * before it is cut off: 8 at once, then one every 7.5 s. An honest peer whose trust policy
 * differs from this node's delivers each envelope this node refuses once (syncSource remembers
 * refused ids and does not ask for them again under the same trust version); a peer that
 * streams large untrusted envelopes is dropped after 8 and kept out for SYNC_ABUSE_BLOCK_MS.
 */
export const SYNC_REFUSALS = { capacity: 8, perSecond: 8 / 60, maxKeys: 4096 }
export const SYNC_ABUSE_BLOCK_MS = 5 * 60_000
/** Refused envelope ids remembered so they are not asked for again (oldest forgotten first). */
export const MAX_DECLINED = 4096

export interface AgentNetHooks {
  isBlocked: (peer: string) => boolean
  /** Peers known before this run (remembered, --bootstrap): the ConnectionGuard keeps room for them. */
  known?: Iterable<string>
  now?: () => number
  metricsRegister: MetricsRegister
  sync: Omit<AntiEntropyInit, 'interval'>
}

/**
 * The agent's libp2p node, created but not started: the caller installs its validators and
 * protocol handlers first, so nothing reaches the node before it can judge it.
 */
export async function createAgentNet (opts: AgentOptions, mesh: string, privateKey: PrivateKey, hooks: AgentNetHooks): Promise<GrapevineLibp2p> {
  const bootstrapIds = (opts.bootstrap ?? []).flatMap((a) => { const id = peerIdOfAddr(a); return id !== undefined ? [id] : [] })
  const guard = new ConnectionGuard({ maxConnections: DEFAULT_MAX_CONNECTIONS, known: [...(hooks.known ?? []), ...bootstrapIds], now: hooks.now ?? Date.now })
  const net = await createNet({
    privateKey,
    start: false,
    listen: opts.listen ?? ['/ip4/0.0.0.0/tcp/0'],
    bootstrap: opts.bootstrap,
    mdns: opts.mdns,
    swarmKey: opts.swarmKey,
    transport: opts.transport,
    memoryLatency: opts.memoryLatency,
    shapeLink: opts.shapeLink,
    inboundLimits: opts.inboundLimits,
    // Invalid envelopes, announcements, receipts and beacons cost their sender (net/libp2p.ts TOPIC_SCORE).
    scoredTopics: [policyTopic(mesh), announceTopic(mesh), receiptTopic(mesh)],
    isBlocked: hooks.isBlocked,
    maxConnections: DEFAULT_MAX_CONNECTIONS,
    denyInbound: (peer) => guard.denyInbound(peer),
    gossip: {
      metricsRegister: hooks.metricsRegister,
      metricsTopicStrToLabel: new Map([[policyTopic(mesh), 'policies'], [announceTopic(mesh), 'announcements'], [receiptTopic(mesh), 'receipts']])
    },
    sync: { ...hooks.sync, interval: opts.syncInterval, ...(opts.setTimer !== undefined ? { setTimer: opts.setTimer } : {}) }
  })
  guard.attach(net)
  return net
}

/** Whether the intake refused an envelope as not acceptable from anyone (not merely older, held, or a fault of this node). */
export function refused (taken: Taken): boolean {
  return taken.outcome !== 'accepted' && taken.envelope === undefined && !['older', 'duplicate', INTERNAL_REASON].includes(taken.reason ?? INTERNAL_REASON)
}

/**
 * The node's side of anti-entropy: what it holds, the chain between versions, the intake every
 * envelope takes, peer exchange. A peer whose deliveries are refused past SYNC_REFUSALS is
 * blocked, which hangs up on it: its stream is read no further.
 */
export function syncSource (c: { book: Pick<PolicyBook, 'digest' | 'get' | 'servable' | 'trustVersion' | 'droppedAsUntrusted'>, store: Pick<StateStore, 'archivedVersions' | 'loadArchived'>, intake: Pick<Intake, 'take'>, peers: Pick<Peers, 'hints' | 'learn' | 'block'>, now?: () => number }): SyncSource {
  const refusals = new RateLimiter(SYNC_REFUSALS, c.now ?? Date.now)
  // Envelope ids refused under the trust version in force: not asked for again until it changes.
  const declined = new Map<string, number | undefined>()
  return {
    digest: () => c.book.digest(),
    envelope: (name) => c.book.get(name)?.bytes,
    chain: async (name, since) => await chainSince(c.store, c.book.get(name), since),
    declined: (entry) => (declined.has(entry.id) && declined.get(entry.id) === c.book.trustVersion) || c.book.droppedAsUntrusted(entry),
    ingest: async (bytes, from, via) => {
      const taken = c.intake.take(bytes, via, from)
      if (refused(taken)) {
        if (declined.size >= MAX_DECLINED) declined.delete(declined.keys().next().value as string)
        declined.set(envelopeId(bytes), c.book.trustVersion)
        if (!refusals.take(from)) await c.peers.block([from], { forMs: SYNC_ABUSE_BLOCK_MS })
      }
      return taken.outcome
    },
    peerHints: () => c.peers.hints(),
    onPeerHints: (hints) => { c.peers.learn(hints) },
    fetch: async (req) => c.book.servable(req)
  }
}
