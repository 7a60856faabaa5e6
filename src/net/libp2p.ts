// Creates the node. With identity.ts (keys and peer ids), the only module that imports libp2p
// and its transports: moving to libp2p 3.x touches only src/net/.
import '../shim.js'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { memory } from '@libp2p/memory'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { bootstrap } from '@libp2p/bootstrap'
import { mdns } from '@libp2p/mdns'
import { preSharedKey } from '@libp2p/pnet'
import { gossipsub, type GossipsubOpts } from '@chainsafe/libp2p-gossipsub'
import { createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createHash } from 'node:crypto'
import type { PeerId, PrivateKey, PubSub, Message, ComponentLogger, Transport, Upgrader, MultiaddrConnection } from '@libp2p/interface'
import type { GossipsubEvents } from '@chainsafe/libp2p-gossipsub'
import { antiEntropy, type AntiEntropy, type AntiEntropyInit } from '../sync/index.js'

export { TopicValidatorResult } from '@libp2p/interface'
export type { Libp2p, PeerId, PrivateKey, Message, Multiaddr, PubSub }
export { multiaddr, peerIdFromString }

export type { MetricsRegister } from '@chainsafe/libp2p-gossipsub/metrics'

/**
 * Reshapes what a node sends on each connection (simulated latency and loss): given the bytes
 * written to one connection and its remote address, returns what reaches the socket, and when.
 */
export type LinkShaper = <T extends { byteLength: number }>(source: AsyncIterable<T>, remoteAddr: string) => AsyncIterable<T>

export type GrapevinePubSub = PubSub<GossipsubEvents>
export type GrapevineLibp2p = Libp2p<{ pubsub: GrapevinePubSub, identify: unknown, sync: AntiEntropy }>

export interface NetOptions {
  privateKey: PrivateKey
  /** Listen multiaddrs, e.g. /ip4/127.0.0.1/tcp/0 or /memory/node-3. */
  listen: string[]
  bootstrap?: string[]
  mdns?: boolean
  /** libp2p pnet pre-shared key file contents: only holders can connect. */
  swarmKey?: Uint8Array
  transport?: 'tcp' | 'memory'
  /** Added one-way latency (ms) on the memory transport, for simulations. */
  memoryLatency?: number
  /** Simulations: delay this node's outbound bytes per connection (TCP or memory). */
  shapeLink?: LinkShaper
  /** Topics whose invalid messages are penalised by gossipsub peer scoring. */
  scoredTopics: string[]
  sync: AntiEntropyInit
  /** Peers refused in both directions (the agent's peer manager decides): tests and simulations use it to cut the mesh. */
  isBlocked?: (peer: string) => boolean
  /** Inbound connections refused once their peer is known, before any protocol runs (the agent's ConnectionGuard). */
  denyInbound?: (peer: string) => boolean
  /** False: create the node without starting it, so the caller can install validators and handlers first. */
  start?: boolean
  gossip?: Partial<GossipsubOpts>
  /** Keep connections up to this many; libp2p 2 no longer auto-dials, the agent does. */
  maxConnections?: number
  /**
   * libp2p's inbound guards, per remote host: new connections per second (default 5) and
   * connections mid-handshake (default 10). Simulations raise them: all their peers share 127.0.0.1.
   */
  inboundLimits?: { perHostPerSecond: number, pending: number }
  logger?: ComponentLogger
}

/**
 * Gossip message id = sha256 of the exact envelope bytes (DESIGN decision 2). Envelopes
 * carry their own signatures, so gossipsub's per-message signing is switched off.
 */
function msgId (msg: Message): Uint8Array {
  return createHash('sha256').update(msg.data).digest()
}

/**
 * libp2p pings every connection and aborts the ones whose ping fails. Its default timeout is
 * 5 s (the adaptive timeout never adapts: the monitor does not report its timings back), so an
 * agent whose event loop stalls for 5 s (a large apply, an overloaded host, 200 agents on one
 * test machine) lost every connection at once and the mesh collapsed. A dead peer is still
 * dropped, within interval + timeout (45 s); a busy one is not.
 */
const CONNECTION_MONITOR = { pingInterval: 15_000, pingTimeout: { minTimeout: 30_000, maxTimeout: 30_000 } }

/**
 * Peer scoring on every topic whose messages are validated (policies, announcements, receipts).
 * What a peer can earn is small and what an invalid message costs is large, so a Rejected
 * message is never outweighed: gossipsub's defaults let time in mesh (P1, counted per
 * millisecond) reach +3,600 and first deliveries (P2) +2,000, so a fresh identity could send 7
 * invalid envelopes before its score moved below zero. Here P1 earns at most +10 after an hour
 * in the mesh, P2 at most +10, and each invalid message n costs 50·n²: one takes a peer below
 * the gossip threshold (−10: no gossip to or from it), two below the graylist threshold (−80:
 * everything it sends is dropped unread). The counter decays 10 % a second, so a peer that
 * stops recovers in about a minute. Delivery-rate penalties (P3, P3b) are off: policies are
 * rare and bursty, and a quiet mesh peer is not a faulty one.
 */
export const TOPIC_SCORE = {
  topicWeight: 1,
  timeInMeshWeight: 10 / 3600,
  timeInMeshQuantum: 1000,
  timeInMeshCap: 3600,
  firstMessageDeliveriesWeight: 1,
  firstMessageDeliveriesDecay: 0.5,
  firstMessageDeliveriesCap: 10,
  meshMessageDeliveriesWeight: 0,
  meshFailurePenaltyWeight: 0,
  invalidMessageDeliveriesWeight: -50,
  invalidMessageDeliveriesDecay: 0.9
} as const

export async function createNet (opts: NetOptions): Promise<GrapevineLibp2p> {
  const isBlocked = opts.isBlocked
  const denyInbound = opts.denyInbound ?? (() => false)
  const transport = opts.transport ?? 'tcp'
  const topics = Object.fromEntries(opts.scoredTopics.map((t) => [t, createTopicScoreParams(TOPIC_SCORE)]))
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen },
    transports: [shaped(transport === 'memory' ? memory({ latency: opts.memoryLatency }) : tcp(), opts.shapeLink)],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(opts.swarmKey !== undefined ? { connectionProtector: preSharedKey({ psk: opts.swarmKey }) } : {}),
    peerDiscovery: [
      ...((opts.bootstrap?.length ?? 0) > 0 ? [bootstrap({ list: opts.bootstrap as string[], timeout: 0 })] : []),
      ...(opts.mdns === true ? [mdns()] : [])
    ],
    connectionMonitor: CONNECTION_MONITOR,
    connectionManager: {
      maxConnections: opts.maxConnections ?? 64,
      ...(opts.inboundLimits !== undefined ? { inboundConnectionThreshold: opts.inboundLimits.perHostPerSecond, maxIncomingPendingConnections: opts.inboundLimits.pending } : {})
    },
    ...(opts.start === false ? { start: false } : {}),
    ...(isBlocked !== undefined
      ? {
          connectionGater: {
            denyDialPeer: (peer: PeerId) => isBlocked(peer.toString()),
            denyInboundEncryptedConnection: (peer: PeerId) => isBlocked(peer.toString()) || denyInbound(peer.toString()),
            denyOutboundEncryptedConnection: (peer: PeerId) => isBlocked(peer.toString()),
            // Loopback and memory addresses are how this project's meshes run; allow them.
            denyDialMultiaddr: () => false
          }
        }
      : { connectionGater: { denyDialMultiaddr: () => false, denyInboundEncryptedConnection: (peer: PeerId) => denyInbound(peer.toString()) } }),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
    services: {
      identify: identify(),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictNoSign',
        msgIdFn: msgId,
        emitSelf: false,
        floodPublish: true,
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        maxInboundDataLength: 4 * 1024 * 1024,
        scoreParams: {
          topics,
          // Gossipsub penalises many peers behind one IP (a Sybil guard). Peers on loopback are
          // this host's own agents (tests, simulations, several agents per machine): never Sybils.
          IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1'])
        },
        ...opts.gossip
      }) as unknown as (components: unknown) => GrapevinePubSub,
      sync: antiEntropy(opts.sync)
    }
  })
  return node as unknown as GrapevineLibp2p
}

/**
 * Wraps a transport so every connection's outbound bytes pass through `shape`, below
 * encryption and multiplexing: what a slow or lossy network does to a TCP stream.
 */
function shaped<C> (factory: (components: C) => Transport, shape: LinkShaper | undefined): (components: C) => Transport {
  if (shape === undefined) return factory
  const conn = (maConn: MultiaddrConnection): MultiaddrConnection => {
    const sink = maConn.sink.bind(maConn)
    maConn.sink = async (source) => {
      const shapedSource = shape(source, maConn.remoteAddr.toString())
      await sink((async function * () { yield * shapedSource })())
    }
    return maConn
  }
  const upgrader = (u: Upgrader): Upgrader => ({
    upgradeOutbound: async (maConn, o) => await u.upgradeOutbound(conn(maConn), o),
    upgradeInbound: async (maConn, o) => { await u.upgradeInbound(conn(maConn), o) },
    createInboundAbortSignal: (signal) => u.createInboundAbortSignal(signal),
    getStreamMuxers: () => u.getStreamMuxers(),
    getConnectionEncrypters: () => u.getConnectionEncrypters()
  })
  return (components) => {
    const t = factory(components)
    const dial = t.dial.bind(t)
    const createListener = t.createListener.bind(t)
    t.dial = async (ma, o) => await dial(ma, { ...o, upgrader: upgrader(o.upgrader) })
    t.createListener = (o) => createListener({ ...o, upgrader: upgrader(o.upgrader) })
    return t
  }
}
