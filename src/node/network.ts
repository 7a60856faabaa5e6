import { createNet, type GrapevineLibp2p, type MetricsRegister, type PrivateKey } from '../net/libp2p.js'
import { generateIdentity, privateKeyFromProtobuf, privateKeyToProtobuf } from '../net/identity.js'
import type { StateStore } from '../store/index.js'
import type { AntiEntropyInit, SyncSource } from '../sync/index.js'
import type { PolicyBook } from './book.js'
import type { Intake } from './intake.js'
import type { Peers } from './peers.js'
import { chainSince } from './journal.js'
import type { AgentOptions } from './options.js'
import { announceTopic, policyTopic, receiptTopic } from './constants.js'

/** The node's libp2p identity: the stored key, or a new one stored before first use. */
export async function loadIdentity (store: Pick<StateStore, 'readIdentity' | 'writeIdentity'>): Promise<PrivateKey> {
  const stored = await store.readIdentity()
  if (stored !== undefined) return privateKeyFromProtobuf(stored)
  const key = await generateIdentity()
  await store.writeIdentity(privateKeyToProtobuf(key))
  return key
}

export interface AgentNetHooks {
  isBlocked: (peer: string) => boolean
  metricsRegister: MetricsRegister
  sync: Omit<AntiEntropyInit, 'interval'>
}

/**
 * The agent's libp2p node, created but not started: the caller installs its validators and
 * protocol handlers first, so nothing reaches the node before it can judge it.
 */
export async function createAgentNet (opts: AgentOptions, mesh: string, privateKey: PrivateKey, hooks: AgentNetHooks): Promise<GrapevineLibp2p> {
  return await createNet({
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
    gossip: {
      metricsRegister: hooks.metricsRegister,
      metricsTopicStrToLabel: new Map([[policyTopic(mesh), 'policies'], [announceTopic(mesh), 'announcements'], [receiptTopic(mesh), 'receipts']])
    },
    sync: { ...hooks.sync, interval: opts.syncInterval, ...(opts.setTimer !== undefined ? { setTimer: opts.setTimer } : {}) }
  })
}

/** The node's side of anti-entropy: what it holds, the chain between versions, the intake every envelope takes, peer exchange. */
export function syncSource (c: { book: PolicyBook, store: Pick<StateStore, 'archivedVersions' | 'loadArchived'>, intake: Pick<Intake, 'take'>, peers: Pick<Peers, 'hints' | 'learn'> }): SyncSource {
  return {
    digest: () => c.book.digest(),
    envelope: (name) => c.book.get(name)?.bytes,
    chain: async (name, since) => await chainSince(c.store, c.book.get(name), since),
    ingest: async (bytes, from, via) => c.intake.take(bytes, via, from).outcome,
    peerHints: () => c.peers.hints(),
    onPeerHints: (hints) => { c.peers.learn(hints) },
    fetch: async (req) => c.book.servable(req)
  }
}
