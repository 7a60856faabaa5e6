import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import { mkdir } from 'node:fs/promises'
import {
  createNet, generateIdentity, multiaddr, nodeSigningKey, peerIdFromString, privateKeyFromProtobuf, privateKeyToProtobuf,
  TopicValidatorResult, type GrapevineLibp2p, type LinkShaper, type NetOptions, type PeerId
} from '../net/libp2p.js'
import { StateStore, type AppliedRecord, type HistoryEntry, type KnownPeer } from '../store/index.js'
import {
  validateEnvelope, selectEnvelope, EnvelopeError, decodeAnnouncement, verifyAnnouncement, encodeAnnouncement, assertAnnounced, matchesAnnouncement,
  type Announcement, type VerifiedEnvelope, type Conflict, type SigningKey
} from '../envelope/index.js'
import {
  FleetView, signReport, boundFailures, DEFAULT_BEACON_INTERVAL_MS, MAX_PRESENCE_POLICIES,
  type NodeReport, type Receipt, type ReceiptOutcome
} from '../receipt/index.js'
import { serveQueries } from './query.js'
import { ReceiptSender, serveReceipts, verifyNodeReport } from './receipts.js'
import { TrustStore } from '../trust/index.js'
import { matchesTarget, managedKey, TRUST_POLICY_NAME, type NodeFacts, type ConfigPolicy } from '../policy/index.js'
import { applyPolicy, type ApplyReport } from '../apply/index.js'
import type { DigestEntry, FetchRequest, FetchRound, IngestOutcome, PeerHint, SyncRound } from '../sync/index.js'
import { createMetrics, gossipMetricsRegister, type AgentMetrics } from './metrics.js'
import {
  DEFAULT_MESH, DEFAULT_REAPPLY_INTERVAL_MS, DEFAULT_TARGET_PEERS, MAX_FETCH_PEERS, PEER_MAINTENANCE_INTERVAL_MS, RELAY_SYNCED_WITHIN_MS,
  announceTopic, policyTopic, receiptTopic
} from './constants.js'
import type { Logger } from './logger.js'
import { silentLogger } from './logger.js'
import { announces } from './rules.js'

export interface AgentOptions {
  stateDir: string
  /** Managed paths are prefixed with this directory; `/` on a real server. */
  root: string
  listen?: string[]
  bootstrap?: string[]
  /** Root public key ids trusted to sign the trust policy (and anything else). */
  trust: string[]
  tags?: Record<string, string>
  /** Human name used in templates and reports; defaults to the host name. */
  name?: string
  mdns?: boolean
  swarmKey?: Uint8Array
  mesh?: string
  transport?: 'tcp' | 'memory'
  memoryLatency?: number
  /** Simulations: delay this node's outbound bytes (latency, loss as retransmission delay). */
  shapeLink?: LinkShaper
  /** Simulations: libp2p's per-host inbound connection limits (many agents share one address). */
  inboundLimits?: NetOptions['inboundLimits']
  reapplyInterval?: number
  syncInterval?: number
  /** Mean time between presence beacons; 0 disables them. */
  beaconInterval?: number
  targetPeers?: number
  /**
   * Envelopes over this many bytes are announced (signed header) and fetched by each node,
   * instead of gossiped whole; 0 or Infinity gossips every envelope whole. Default 16 KiB.
   */
  announceThreshold?: number
  logger?: Logger
  now?: () => number
  random?: () => number
  /** Collect process-wide metrics too (CPU, memory); off in simulations hosting many agents. */
  processMetrics?: boolean
}

export type Via = 'gossip' | 'sync' | 'local' | 'api' | 'disk'

/**
 * This node's traffic counters. Gossip bytes are every gossipsub RPC (policies, announcements,
 * receipts, control); fetch bytes are the announced envelopes fetched over the sync protocol.
 */
export interface AgentTraffic {
  gossipBytesSent: number
  gossipBytesReceived: number
  policyDuplicates: number
  policyMessages: number
  syncBytesSent: number
  syncBytesReceived: number
  fetchBytesSent: number
  fetchBytesReceived: number
  announceMessages: number
  announceDuplicates: number
}

export interface PolicyState {
  name: string
  version: number
  hash: string
  signer: string
  issuedAt: string
  id: string
  kind: string
  targeted: boolean
  lastApply?: AppliedRecord
}

export interface ConflictRecord {
  kind: 'version' | 'path'
  name: string
  at: string
  version?: number
  winner?: string
  loser?: string
  path?: string
  policies?: string[]
}

export interface AgentStatus {
  node: NodeFacts & { addrs: string[], mesh: string, root: string }
  peers: Array<{ id: string, addrs: string[] }>
  policies: PolicyState[]
  conflicts: ConflictRecord[]
  trust: { roots: string[], policyVersion?: number }
  applying: boolean
}

export interface AgentEvents {
  accepted: [{ envelope: VerifiedEnvelope, via: Via, from?: string }]
  rejected: [{ reason: string, via: Via, from?: string, error: string }]
  applied: [{ envelope: VerifiedEnvelope, report: ApplyReport }]
  'not-targeted': [{ envelope: VerifiedEnvelope }]
  sync: [SyncRound]
  fetch: [FetchRound]
  conflict: [ConflictRecord]
  report: [NodeReport]
}

/** Beacons right after joining: before, during and after gossipsub's first heartbeats (1 s apart). */
const JOIN_BEACON_DELAYS_MS = [300, 2500, 8000]

/** Peer faults: only these make gossipsub penalise the sender and sync hang up. */
const PEER_FAULTS = new Set(['too-large', 'malformed', 'invalid', 'bad-signature', 'hash-mismatch'])

/**
 * A Grapevine node: a libp2p peer that validates and stores signed policies, keeps them in
 * sync with its neighbours, and applies the newest version of each policy that targets it.
 */
export class Agent extends EventEmitter<AgentEvents> {
  readonly metrics: AgentMetrics
  private readonly log: Logger
  private readonly now: () => number
  private readonly random: () => number
  private readonly trust: TrustStore
  private readonly index = new Map<string, VerifiedEnvelope>()
  private applied: Record<string, AppliedRecord> = {}
  private readonly conflicts = new Map<string, ConflictRecord>()
  private readonly dirty = new Set<string>()
  private applying?: Promise<void>
  private persistChain: Promise<void> = Promise.resolve()
  private readonly blocked = new Set<string>()
  private readonly hints = new Map<string, KnownPeer>()
  /** Announced envelopes being fetched, by what was announced: one fetch however many copies arrive. */
  private readonly fetching = new Map<string, Promise<TopicValidatorResult>>()
  private timers: Array<ReturnType<typeof setTimeout>> = []
  private stopping = new AbortController()
  private net!: GrapevineLibp2p
  private signingKey!: SigningKey
  /** What this node knows of the fleet, from the receipts and beacons it relays. */
  readonly fleet = new FleetView()
  /** The last receipt sent per policy, so quiet drift checks do not flood the mesh. */
  private readonly lastReceipt = new Map<string, string>()
  /** Where receipts for an envelope go: the peer this node first took it from (receipts.ts). */
  private readonly upstream = new Map<string, string>()
  private receiptSender!: ReceiptSender
  facts!: NodeFacts

  private constructor (private readonly opts: AgentOptions, private readonly store: StateStore) {
    super()
    this.log = opts.logger ?? silentLogger
    this.now = opts.now ?? Date.now
    this.random = opts.random ?? Math.random
    this.trust = new TrustStore(opts.trust)
    this.metrics = createMetrics({ defaultMetrics: opts.processMetrics })
  }

  static async start (opts: AgentOptions): Promise<Agent> {
    const store = await StateStore.open(opts.stateDir)
    await mkdir(opts.root, { recursive: true })
    const agent = new Agent(opts, store)
    await agent.boot()
    return agent
  }

  get mesh (): string {
    return this.opts.mesh ?? DEFAULT_MESH
  }

  get peerId (): PeerId {
    return this.net.peerId
  }

  get multiaddrs (): string[] {
    return this.net.getMultiaddrs().map((a) => a.toString())
  }

  get libp2p (): GrapevineLibp2p {
    return this.net
  }

  private async boot (): Promise<void> {
    const privateKey = await this.loadIdentity()
    await this.loadState()
    const remembered = await this.store.loadPeers()
    for (const p of remembered) this.hints.set(p.id, p)
    // Bootstrap peers are dialled once at start. Keep them as candidates too, so a node whose
    // bootstrap was down at that moment (or dropped before peer exchange) still joins later.
    this.addPeers(this.opts.bootstrap ?? [])

    this.net = await createNet({
      privateKey,
      listen: this.opts.listen ?? ['/ip4/0.0.0.0/tcp/0'],
      bootstrap: this.opts.bootstrap,
      mdns: this.opts.mdns,
      swarmKey: this.opts.swarmKey,
      transport: this.opts.transport,
      memoryLatency: this.opts.memoryLatency,
      shapeLink: this.opts.shapeLink,
      inboundLimits: this.opts.inboundLimits,
      scoredTopics: [policyTopic(this.mesh), announceTopic(this.mesh)],
      blocked: this.blocked,
      gossip: {
        metricsRegister: gossipMetricsRegister(this.metrics.registry),
        metricsTopicStrToLabel: new Map([[policyTopic(this.mesh), 'policies'], [announceTopic(this.mesh), 'announcements'], [receiptTopic(this.mesh), 'receipts']])
      },
      sync: {
        interval: this.opts.syncInterval,
        random: this.random,
        source: {
          digest: () => this.digest(),
          envelope: (name) => this.index.get(name)?.bytes,
          ingest: async (bytes, from, via) => await this.ingest(bytes, via, from),
          peerHints: () => this.peerHints(),
          onPeerHints: (hints) => { this.learnPeers(hints) },
          fetch: async (req) => this.servable(req)
        },
        onFetch: (round) => {
          this.metrics.fetches.inc({ role: round.initiator ? 'initiator' : 'responder', result: round.error !== undefined ? 'error' : round.found ? 'found' : 'missing' })
          this.metrics.fetchBytes.inc({ direction: 'sent' }, round.bytesOut)
          this.metrics.fetchBytes.inc({ direction: 'received' }, round.bytesIn)
          this.emit('fetch', round)
        },
        onRound: (round) => {
          this.metrics.syncRounds.inc({ role: round.initiator ? 'initiator' : 'responder', result: round.error === undefined ? 'ok' : 'error' })
          this.metrics.syncEnvelopes.inc({ direction: 'sent' }, round.sent)
          this.metrics.syncEnvelopes.inc({ direction: 'received' }, round.received)
          this.metrics.syncBytes.inc({ direction: 'sent' }, round.bytesOut ?? 0)
          this.metrics.syncBytes.inc({ direction: 'received' }, round.bytesIn ?? 0)
          this.emit('sync', round)
        }
      }
    })
    this.facts = { id: this.net.peerId.toString(), name: this.opts.name ?? hostname(), tags: this.opts.tags ?? {} }
    this.signingKey = nodeSigningKey(privateKey)

    const pubsub = this.net.services.pubsub
    const topic = policyTopic(this.mesh)
    pubsub.topicValidators.set(topic, async (peer, msg) => {
      const outcome = await this.ingest(msg.data, 'gossip', peer.toString())
      return outcome === 'accepted' ? TopicValidatorResult.Accept : outcome === 'rejected' ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    })
    pubsub.subscribe(topic)
    const announcements = announceTopic(this.mesh)
    pubsub.topicValidators.set(announcements, async (peer, msg) => await this.onAnnouncement(msg.data, peer))
    pubsub.subscribe(announcements)
    const receipts = receiptTopic(this.mesh)
    pubsub.topicValidators.set(receipts, (_peer, msg) => this.takeReport(msg.data) ? TopicValidatorResult.Accept : TopicValidatorResult.Reject)
    pubsub.subscribe(receipts)
    this.receiptSender = new ReceiptSender(this.net, {
      sent: (_peer, count) => { this.metrics.receipts.inc({ result: 'forwarded' }, count) },
      failed: (peer, count, err) => {
        // The receipts stay in this node's fleet view, and presence beacons carry the outcomes.
        this.metrics.receipts.inc({ result: 'kept' }, count)
        this.log.debug({ peer, count, err: err.message }, 'receipts not forwarded')
      }
    }, this.stopping.signal)
    await serveReceipts(this.net, (bytes, from) => this.takeRoutedReceipt(bytes, from))
    await serveQueries(this.net, {
      fleet: () => this.fleet.list(),
      envelope: async (name, version) => await this.archived(name, version)
    })

    this.net.addEventListener('peer:identify', (evt) => {
      const { peerId, listenAddrs } = evt.detail
      this.rememberPeer(peerId.toString(), listenAddrs.map((a) => a.toString()))
    })
    this.net.addEventListener('connection:open', () => { this.metrics.peers.set(this.net.getPeers().length) })
    this.net.addEventListener('connection:close', () => { this.metrics.peers.set(this.net.getPeers().length) })

    this.log.info({ peerId: this.facts.id, addrs: this.multiaddrs, mesh: this.mesh, policies: this.index.size }, 'agent started')
    await this.history({ event: 'started', detail: { peerId: this.facts.id } })

    // Rejoin through remembered peers even when no bootstrap address is given.
    void this.maintainPeers()
    this.every(PEER_MAINTENANCE_INTERVAL_MS, async () => { await this.maintainPeers() })
    this.every(this.opts.reapplyInterval ?? DEFAULT_REAPPLY_INTERVAL_MS, async () => { this.scheduleAll() })
    this.every(this.opts.beaconInterval ?? DEFAULT_BEACON_INTERVAL_MS, async () => { await this.beacon() })
    // Announce ourselves once someone can hear it. A message published before gossipsub's mesh
    // forms (first heartbeat) may not be relayed, so a joining node announces three times.
    pubsub.addEventListener('subscription-change', (evt) => {
      if (this.announced || !evt.detail.subscriptions.some((s) => s.topic === receipts && s.subscribe)) return
      this.announced = true
      for (const delay of JOIN_BEACON_DELAYS_MS) {
        const t = setTimeout(() => { void this.beacon() }, delay * (0.75 + this.random() / 2))
        t.unref()
        this.timers.push(t)
      }
    })
    this.scheduleAll()
  }

  private async loadIdentity (): Promise<Awaited<ReturnType<typeof generateIdentity>>> {
    const stored = await this.store.readIdentity()
    if (stored !== undefined) return privateKeyFromProtobuf(stored)
    const key = await generateIdentity()
    await this.store.writeIdentity(privateKeyToProtobuf(key))
    return key
  }

  /** Loads stored envelopes, trust policy first, re-verifying each: a corrupt file is quarantined, never trusted. */
  private async loadState (): Promise<void> {
    const stored = await this.store.loadEnvelopes()
    const trustFile = stored.find((s) => s.file === StateStore.envelopeFile(TRUST_POLICY_NAME))
    const ordered = trustFile !== undefined ? [trustFile, ...stored.filter((s) => s !== trustFile)] : stored
    for (const { file, bytes } of ordered) {
      try {
        const env = validateEnvelope(bytes, this.trust)
        this.index.set(env.name, env)
        if (env.policy.kind === 'trust') this.trust.update(env.policy)
      } catch (err) {
        const reason = err instanceof EnvelopeError ? err.reason : 'error'
        this.log.warn({ file, reason, err: (err as Error).message }, 'stored envelope no longer verifies')
        if (PEER_FAULTS.has(reason)) await this.store.quarantine(file)
      }
    }
    this.applied = await this.store.loadApplied()
    this.metrics.policies.set(this.index.size)
  }

  private every (interval: number, fn: () => Promise<void>): void {
    if (interval <= 0) return
    const tick = (): void => {
      const delay = interval * (0.75 + this.random() / 2)
      const t = setTimeout(() => {
        fn().catch((err) => { this.log.error({ err: (err as Error).message }, 'periodic task failed') }).finally(() => {
          if (!this.stopping.signal.aborted) tick()
        })
      }, delay)
      t.unref()
      this.timers.push(t)
    }
    tick()
  }

  digest (): DigestEntry[] {
    return [...this.index.values()].map((e) => ({ name: e.name, version: e.version, hash: e.hash, id: e.id }))
  }

  /** The envelope currently held for a policy name. */
  envelope (name: string): VerifiedEnvelope | undefined {
    return this.index.get(name)
  }

  /**
   * The one path every envelope takes, whatever brought it: validate (size, decode, schema,
   * signature, trust), apply the version rule, then persist and apply in the background.
   * Never throws: the outcome says whether the sender misbehaved.
   */
  async ingest (bytes: Uint8Array, via: Via, from?: string): Promise<IngestOutcome> {
    return this.take(bytes, via, from).outcome
  }

  /** ingest(), also returning the verified envelope when it was valid (accepted or not). */
  private take (bytes: Uint8Array, via: Via, from?: string, announced?: Announcement): { outcome: IngestOutcome, envelope?: VerifiedEnvelope } {
    let env: VerifiedEnvelope
    try {
      env = validateEnvelope(bytes, this.trust)
      // A fetched body must be the very envelope announced, not merely a valid one.
      if (announced !== undefined) assertAnnounced(env, announced)
    } catch (err) {
      const reason = err instanceof EnvelopeError ? err.reason : 'error'
      this.metrics.envelopesRejected.inc({ reason, via })
      this.log.warn({ reason, via, from, err: (err as Error).message }, 'envelope refused')
      this.emit('rejected', { reason, via, from, error: (err as Error).message })
      // Trust-dependent refusals from sync may be honest peers with newer trust; only gossip punishes them.
      return { outcome: PEER_FAULTS.has(reason) || via === 'gossip' ? 'rejected' : 'ignored' }
    }
    const current = this.index.get(env.name)
    const selection = selectEnvelope(current, env)
    if (selection.conflict !== undefined) this.recordVersionConflict(env.name, selection.conflict)
    if (!selection.accept) {
      this.metrics.envelopesIgnored.inc({ reason: selection.reason })
      return { outcome: 'ignored', envelope: env }
    }
    // Take it in memory first, so copies arriving meanwhile are duplicates.
    this.index.set(env.name, env)
    if (env.policy.kind === 'trust') this.trust.update(env.policy)
    this.metrics.envelopesAccepted.inc({ via })
    this.metrics.policies.set(this.index.size)
    this.log.info({ name: env.name, version: env.version, hash: env.hash, signer: env.signer, via, from }, 'envelope accepted')
    if (from !== undefined && (via === 'gossip' || via === 'sync')) this.rememberUpstream(env, from)
    // Gossip relays only what came by gossip. An update that came by sync (a healed partition, a
    // publisher whose gossip raced its first subscription exchange) is gossiped on from here,
    // so it spreads at gossip speed rather than one sync interval per hop. Old envelopes a
    // joining node catches up on are not: everyone else has them.
    if (via === 'sync' && (current !== undefined || this.now() - Date.parse(env.issuedAt) < RELAY_SYNCED_WITHIN_MS)) void this.gossip(env).catch(() => 0)
    this.persist(async () => {
      await this.store.saveEnvelope(env.name, env.bytes, env.version)
      await this.history({ event: 'accepted', name: env.name, version: env.version, hash: env.hash, signer: env.signer, via, from })
    })
    this.emit('accepted', { envelope: env, via, from })
    this.schedule(env.name)
    return { outcome: 'accepted', envelope: env }
  }

  /**
   * Publishes a signed envelope from this node: take it locally, then gossip it, or above the
   * announce threshold gossip its announcement and serve the body to the peers that fetch it.
   */
  async publish (bytes: Uint8Array, via: Via = 'local'): Promise<{ outcome: IngestOutcome, envelope?: VerifiedEnvelope, recipients: number }> {
    // Verified once: the same envelope serves the reply whether it was taken or not.
    const { outcome, envelope } = this.take(bytes, via)
    if (outcome !== 'accepted' || envelope === undefined) return { outcome, envelope, recipients: 0 }
    return { outcome, envelope, recipients: await this.gossip(envelope) }
  }

  /** Gossips an envelope whole, or above the announce threshold its announcement; returns the peers it went to. */
  private async gossip (env: VerifiedEnvelope): Promise<number> {
    const result = announces(env.bytes.byteLength, this.opts.announceThreshold)
      ? await this.net.services.pubsub.publish(announceTopic(this.mesh), encodeAnnouncement(env))
      : await this.net.services.pubsub.publish(policyTopic(this.mesh), env.bytes)
    return result.recipients.length
  }

  // ---- announce-and-fetch --------------------------------------------------

  /**
   * The gossip validator for announcements. Cheapest first: size and decode, the version rule
   * against what is held (a replay costs no crypto), signature and trust, then one fetch of the
   * body. Accept only once the body is held, so gossipsub relays the announcement only from
   * nodes that can serve it. Never throws.
   */
  private async onAnnouncement (bytes: Uint8Array, peer: PeerId): Promise<TopicValidatorResult> {
    const from = peer.toString()
    this.metrics.announcements.inc({ result: 'received' })
    let ann: Announcement
    try {
      ann = decodeAnnouncement(bytes)
      const current = this.index.get(ann.name)
      if (current !== undefined) {
        if (ann.version < current.version) return this.announcementIgnored('older')
        if (ann.version === current.version) {
          if (ann.hash === current.hash) return this.announcementIgnored('duplicate')
          if (ann.hash < current.hash) {
            // The loser of a same-version conflict: record it (once verified), as for a whole envelope.
            verifyAnnouncement(ann, this.trust)
            this.recordVersionConflict(ann.name, { version: ann.version, winner: current.hash, loser: ann.hash })
            return this.announcementIgnored('conflict-lost')
          }
        }
      }
      verifyAnnouncement(ann, this.trust)
    } catch (err) {
      const reason = err instanceof EnvelopeError ? err.reason : 'error'
      this.metrics.announcements.inc({ result: 'rejected' })
      this.metrics.envelopesRejected.inc({ reason, via: 'gossip' })
      this.log.warn({ reason, via: 'gossip', from, err: (err as Error).message }, 'announcement refused')
      this.emit('rejected', { reason, via: 'gossip', from, error: (err as Error).message })
      return TopicValidatorResult.Reject
    }
    const key = `${ann.name}\n${ann.version}\n${ann.hash}\n${ann.signature}`
    let pending = this.fetching.get(key)
    if (pending === undefined) {
      pending = this.fetchAnnounced(ann, from).finally(() => { this.fetching.delete(key) })
      this.fetching.set(key, pending)
    }
    return await pending
  }

  private announcementIgnored (reason: string): TopicValidatorResult {
    this.metrics.announcements.inc({ result: 'ignored' })
    this.metrics.envelopesIgnored.inc({ reason })
    return TopicValidatorResult.Ignore
  }

  /** Fetches an announced body from the announcer, else from other connected peers; Ignore if nobody serves it. */
  private async fetchAnnounced (ann: Announcement, from: string): Promise<TopicValidatorResult> {
    const req: FetchRequest = { name: ann.name, version: ann.version, hash: ann.hash }
    const others = this.net.getPeers().filter((p) => p.toString() !== from)
    // Random order, so a fleet does not all fall back on the same peer.
    others.sort(() => this.random() - 0.5)
    const candidates = [peerIdFromString(from), ...others].slice(0, MAX_FETCH_PEERS)
    for (const peer of candidates) {
      if (this.stopping.signal.aborted) break
      // Sync (or another path) may have brought it meanwhile.
      const held = this.index.get(ann.name)
      if (held !== undefined && matchesAnnouncement(held, ann)) return this.fetched()
      if (held !== undefined && held.version > ann.version) return this.announcementIgnored('older')
      let bytes: Uint8Array | undefined
      try {
        bytes = await this.net.services.sync.fetch(peer, req, { signal: this.stopping.signal })
      } catch (err) {
        this.log.debug({ name: ann.name, version: ann.version, peer: peer.toString(), err: (err as Error).message }, 'fetch failed')
        continue
      }
      if (bytes === undefined) continue
      const { outcome, envelope } = this.take(bytes, 'gossip', peer.toString(), ann)
      if (outcome === 'accepted') return this.fetched()
      if (outcome === 'ignored' && envelope !== undefined) {
        // Valid and announced, but not taken: held already (say by sync meanwhile), or superseded.
        const now = this.index.get(ann.name)
        return now !== undefined && matchesAnnouncement(now, ann) ? this.fetched() : this.announcementIgnored('superseded')
      }
      // It served something else than announced, or garbage: hang up on it, as sync does on a
      // peer whose envelope fails verification, and ask the next one.
      this.log.warn({ name: ann.name, version: ann.version, peer: peer.toString() }, 'peer served a body that is not the envelope announced; disconnecting')
      await this.net.hangUp(peer).catch(() => {})
    }
    const held = this.index.get(ann.name)
    if (held !== undefined && matchesAnnouncement(held, ann)) return this.fetched()
    this.metrics.announcements.inc({ result: 'fetch-failed' })
    this.log.warn({ name: ann.name, version: ann.version, from, asked: candidates.length }, 'no peer served an announced envelope; anti-entropy will bring it')
    return TopicValidatorResult.Ignore
  }

  private fetched (): TopicValidatorResult {
    this.metrics.announcements.inc({ result: 'fetched' })
    return TopicValidatorResult.Accept
  }

  /** What this node serves to a fetch: the envelope it holds, if it is exactly the one asked for. */
  private servable (req: FetchRequest): Uint8Array | undefined {
    const env = this.index.get(req.name)
    return env !== undefined && env.version === req.version && env.hash === req.hash ? env.bytes : undefined
  }

  private persist (fn: () => Promise<void>): void {
    this.persistChain = this.persistChain.then(fn).catch((err) => {
      this.log.error({ err: (err as Error).message }, 'writing state failed')
    })
  }

  private async history (entry: Omit<HistoryEntry, 'at'>): Promise<void> {
    await this.store.appendHistory({ at: new Date(this.now()).toISOString(), ...entry })
  }

  private recordVersionConflict (name: string, c: Conflict): void {
    const key = `version:${name}:${c.version}`
    if (this.conflicts.has(key)) return
    const record: ConflictRecord = { kind: 'version', name, version: c.version, winner: c.winner, loser: c.loser, at: new Date(this.now()).toISOString() }
    this.conflicts.set(key, record)
    this.metrics.conflicts.set(this.conflicts.size)
    this.log.warn(record, 'version conflict: two contents signed as one version')
    this.persist(async () => { await this.history({ event: 'conflict', name, version: c.version, detail: record }) })
    this.emit('conflict', record)
  }

  private targets (env: VerifiedEnvelope): env is VerifiedEnvelope & { policy: ConfigPolicy } {
    return env.policy.kind === 'policy' && matchesTarget(env.policy, this.facts)
  }

  private scheduleAll (): void {
    for (const env of this.index.values()) if (env.policy.kind !== 'trust') this.schedule(env.name)
  }

  /** One apply at a time; a newer version arriving meanwhile is applied next, intermediate ones skipped. */
  private schedule (name: string): void {
    if (this.facts === undefined) return
    this.dirty.add(name)
    if (this.applying !== undefined) return
    this.applying = (async () => {
      while (this.dirty.size > 0 && !this.stopping.signal.aborted) {
        const next = this.dirty.values().next().value as string
        this.dirty.delete(next)
        const env = this.index.get(next)
        if (env !== undefined) await this.applyOne(env)
      }
    })().finally(() => {
      this.applying = undefined
      // Other microtasks run between the loop's last look at `dirty` and this callback. An
      // envelope taken in between found `applying` still set, so it is dirty with no loop to
      // apply it: held, never applied until the next re-apply (5 min). Start one for it.
      const missed = this.dirty.values().next().value
      if (missed !== undefined && !this.stopping.signal.aborted) this.schedule(missed)
    })
  }

  private async applyOne (env: VerifiedEnvelope): Promise<void> {
    if (env.policy.kind === 'retired') {
      // Stop managing it: no more applies or drift repair. Its resources stay as they are.
      if (this.applied[env.name] !== undefined) {
        delete this.applied[env.name]
        this.persist(async () => { await this.store.saveApplied(this.applied) })
      }
      this.sendReceipt(env, 'retired')
      return
    }
    if (env.policy.kind !== 'policy') return
    if (!this.targets(env)) {
      this.emit('not-targeted', { envelope: env })
      this.sendReceipt(env, 'not-targeted')
      return
    }
    const skip = this.pathConflicts(env as VerifiedEnvelope & { policy: ConfigPolicy })
    let report: ApplyReport
    try {
      report = await applyPolicy(env.policy, {
        root: this.opts.root,
        stateDir: this.store.dir,
        facts: this.facts,
        signal: this.stopping.signal,
        now: this.now,
        skip
      })
    } catch (err) {
      this.log.error({ name: env.name, version: env.version, err: (err as Error).message }, 'apply crashed')
      report = crashReport(env.name, err as Error, this.now())
    }
    const failures = report.resources.filter((r) => r.status === 'failed')
    const record: AppliedRecord = {
      name: env.name,
      version: env.version,
      hash: env.hash,
      outcome: report.outcome,
      at: new Date(this.now()).toISOString(),
      changed: report.counts.changed,
      failed: report.counts.failed,
      durationMs: report.durationMs,
      ...(failures.length > 0 ? { errors: failures.map((f) => ({ resource: f.id, error: f.error?.message ?? 'failed' })) } : {})
    }
    this.applied[env.name] = record
    this.metrics.applies.inc({ outcome: report.outcome })
    this.metrics.applyDuration.observe(report.durationMs / 1000)
    const level = report.counts.failed > 0 ? 'warn' : 'info'
    this.log[level]({ name: env.name, version: env.version, outcome: report.outcome, changed: record.changed, failed: record.failed, durationMs: report.durationMs }, 'policy applied')
    // Only runs that changed something or failed make history; a quiet drift check does not.
    const eventful = report.counts.changed > 0 || report.counts.failed > 0 || this.lastHistoryVersion.get(env.name) !== env.version
    this.lastHistoryVersion.set(env.name, env.version)
    this.persist(async () => {
      await this.store.saveApplied(this.applied)
      if (eventful) await this.history({ event: 'applied', name: env.name, version: env.version, hash: env.hash, outcome: report.outcome, changed: record.changed, failed: record.failed, ...(record.errors !== undefined ? { detail: record.errors } : {}) })
    })
    this.emit('applied', { envelope: env, report })
    this.sendReceipt(env, receiptOutcome(report.counts.changed, report.counts.failed), report)
  }

  private readonly lastHistoryVersion = new Map<string, number>()
  private announced = false

  // ---- receipts and presence ---------------------------------------------

  /**
   * Validates a receipt or beacon from the receipts topic; only a report signed by the node it
   * names counts. Presence beacons travel there, and receipts from agents that predate routing.
   */
  private takeReport (bytes: Uint8Array): boolean {
    const report = verifyNodeReport(bytes)
    if (report === undefined) return false
    this.noteReport(report)
    return true
  }

  /** A receipt routed to this node by a peer that took the envelope from it: keep it and pass it on towards the publisher. */
  private takeRoutedReceipt (bytes: Uint8Array, from: string): boolean {
    const report = verifyNodeReport(bytes)
    if (report?.kind !== 'receipt') {
      this.metrics.receipts.inc({ result: 'rejected' })
      return false
    }
    this.metrics.receipts.inc({ result: 'received' })
    this.noteReport(report)
    this.routeReceipt(report, bytes, from)
    return true
  }

  /** Every report this node takes, sends or passes on goes into its fleet view. */
  private noteReport (report: NodeReport): void {
    this.fleet.add(report)
    this.emit('report', report)
  }

  /** Signs and gossips a presence beacon; returns how many peers it was sent to. */
  private async sendReport (report: NodeReport): Promise<number> {
    const bytes = signReport(report, this.signingKey)
    this.noteReport(report)
    try {
      return (await this.net.services.pubsub.publish(receiptTopic(this.mesh), bytes)).recipients.length
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'beacon not sent')
      return 0
    }
  }

  private rememberUpstream (env: VerifiedEnvelope, from: string): void {
    this.upstream.set(routeKey(env.name, env.version, env.hash), from)
    // Only recent publishes have receipts in flight; the oldest routes go first.
    if (this.upstream.size > MAX_RECEIPT_ROUTES) this.upstream.delete(this.upstream.keys().next().value as string)
  }

  /**
   * Hands a receipt to the peer this node took its envelope from. The node that published it
   * (no upstream), or one whose upstream has left (a `publish` without --wait), keeps it: its
   * fleet view has it, and every node's presence beacons carry its outcomes to the rest.
   */
  private routeReceipt (receipt: Receipt, bytes: Uint8Array, from?: string): void {
    const up = this.upstream.get(routeKey(receipt.policy, receipt.version, receipt.hash))
    if (up === undefined || up === from || this.net.getConnections(peerIdFromString(up)).length === 0) {
      this.metrics.receipts.inc({ result: 'kept' })
      return
    }
    this.receiptSender.send(up, bytes)
  }

  private sendReceipt (env: VerifiedEnvelope, outcome: ReceiptOutcome, report?: ApplyReport): void {
    const failures = (report?.resources ?? []).filter((r) => r.status === 'failed')
    const key = `${env.id}:${outcome}:${report?.counts.changed ?? 0}:${failures.length}`
    // Quiet drift checks (same version, nothing changed, nothing failed) are not news.
    if (this.lastReceipt.get(env.name) === key && (report === undefined || (report.counts.changed === 0 && failures.length === 0))) return
    this.lastReceipt.set(env.name, key)
    const receipt: Receipt = {
      format: 1,
      kind: 'receipt',
      node: this.facts.id,
      key: this.signingKey.id,
      name: this.facts.name,
      tags: this.facts.tags,
      at: new Date(this.now()).toISOString(),
      policy: env.name,
      version: env.version,
      hash: env.hash,
      outcome,
      changed: report?.counts.changed ?? 0,
      failures: boundFailures(failures.map((f) => ({ resource: f.id, error: f.error?.message ?? f.reason ?? 'failed' }))),
      failedCount: failures.length,
      durationMs: report?.durationMs ?? 0
    }
    const bytes = signReport(receipt, this.signingKey)
    this.noteReport(receipt)
    this.routeReceipt(receipt, bytes)
  }

  /** A presence beacon: who this node is and what it holds, so fleet views know the nodes that exist. */
  async beacon (): Promise<number> {
    if (this.stopping.signal.aborted) return 0
    const policies = [...this.index.values()].slice(0, MAX_PRESENCE_POLICIES).map((e): [string, number, string, string] => [
      e.name, e.version, e.hash, this.presenceOutcome(e)
    ])
    return await this.sendReport({ format: 1, kind: 'presence', node: this.facts.id, key: this.signingKey.id, name: this.facts.name, tags: this.facts.tags, at: new Date(this.now()).toISOString(), policies })
  }

  /** What a beacon says of one held envelope, in the receipts' words (applied, unchanged, failed, …). */
  private presenceOutcome (e: VerifiedEnvelope): string {
    const record = this.applied[e.name]
    if (record?.version === e.version) return receiptOutcome(record.changed, record.failed)
    if (e.policy.kind !== 'policy') return e.policy.kind
    return this.targets(e) ? 'pending' : 'not-targeted'
  }

  async archivedEnvelope (name: string, version: number): Promise<Uint8Array | undefined> {
    if (!Number.isSafeInteger(version) || version < 1) return undefined
    return await this.archived(name, version)
  }

  /** Old versions, kept for rollback. */
  private async archived (name: string, version: number): Promise<Uint8Array | undefined> {
    const current = this.index.get(name)
    if (current?.version === version) return current.bytes
    return await this.store.loadArchived(name, version)
  }

  /**
   * Two policies managing one path is a reported conflict, never a flip-flop: the policy whose
   * name sorts first keeps the path on every node (deterministic, no shared state needed), and
   * the other policy's resource fails with a conflict error.
   */
  private pathConflicts (env: VerifiedEnvelope & { policy: ConfigPolicy }): Map<string, string> {
    const skip = new Map<string, string>()
    const owners = new Map<string, string>()
    for (const other of this.index.values()) {
      if (other.name === env.name || other.name > env.name || !this.targets(other)) continue
      for (const r of other.policy.resources) {
        const key = managedKey(r)
        if (key !== undefined && !owners.has(key)) owners.set(key, other.name)
      }
    }
    for (const r of env.policy.resources) {
      const key = managedKey(r)
      const owner = key === undefined ? undefined : owners.get(key)
      if (owner === undefined) continue
      const path = (key as string).slice('path:'.length)
      skip.set(r.id, `${path} is also managed by policy "${owner}", which keeps it (the name that sorts first wins)`)
      const ckey = `path:${path}`
      if (!this.conflicts.has(ckey)) {
        const record: ConflictRecord = { kind: 'path', name: env.name, path, policies: [owner, env.name], at: new Date(this.now()).toISOString() }
        this.conflicts.set(ckey, record)
        this.metrics.conflicts.set(this.conflicts.size)
        this.emit('conflict', record)
      }
    }
    return skip
  }

  status (): AgentStatus {
    const trustEnv = this.index.get(TRUST_POLICY_NAME)
    return {
      node: { ...this.facts, addrs: this.multiaddrs, mesh: this.mesh, root: this.opts.root },
      peers: this.net.getPeers().map((p) => ({ id: p.toString(), addrs: this.net.getConnections(p).map((c) => c.remoteAddr.toString()) })),
      policies: [...this.index.values()].sort((a, b) => a.name.localeCompare(b.name)).map((e) => ({
        name: e.name,
        version: e.version,
        hash: e.hash,
        signer: e.signer,
        issuedAt: e.issuedAt,
        id: e.id,
        kind: e.policy.kind,
        targeted: this.targets(e),
        ...(this.applied[e.name] !== undefined ? { lastApply: this.applied[e.name] } : {})
      })),
      conflicts: [...this.conflicts.values()],
      trust: { roots: this.trust.rootKeys, ...(trustEnv !== undefined ? { policyVersion: trustEnv.version } : {}) },
      applying: this.applying !== undefined
    }
  }

  /** Traffic so far, from this node's own counters: what simulations and benchmarks report. */
  async traffic (): Promise<AgentTraffic> {
    const json = await this.metrics.registry.getMetricsAsJSON()
    const value = (metric: string, labels: Record<string, string> = {}): number => {
      const m = json.find((x) => x.name === metric) as { values?: Array<{ value: number, labels: Record<string, string | number> }> } | undefined
      return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0)
    }
    return {
      gossipBytesSent: value('grapevine_gossipsub_rpc_sent_bytes_total'),
      gossipBytesReceived: value('grapevine_gossipsub_rpc_recv_bytes_total'),
      policyDuplicates: value('grapevine_gossipsub_pre_validation_duplicate_total', { topic: 'policies' }),
      policyMessages: value('grapevine_gossipsub_msg_received_prevalidation_total', { topic: 'policies' }),
      syncBytesSent: value('grapevine_sync_bytes_total', { direction: 'sent' }),
      syncBytesReceived: value('grapevine_sync_bytes_total', { direction: 'received' }),
      fetchBytesSent: value('grapevine_fetch_bytes_total', { direction: 'sent' }),
      fetchBytesReceived: value('grapevine_fetch_bytes_total', { direction: 'received' }),
      announceMessages: value('grapevine_gossipsub_msg_received_prevalidation_total', { topic: 'announcements' }),
      announceDuplicates: value('grapevine_gossipsub_pre_validation_duplicate_total', { topic: 'announcements' })
    }
  }

  async readHistory (limit?: number): Promise<HistoryEntry[]> {
    await this.persistChain
    return await this.store.readHistory(limit)
  }

  /** Resolves once queued applies and state writes are done (tests, orderly shutdown). */
  async idle (): Promise<void> {
    while (this.applying !== undefined) await this.applying
    await this.persistChain
  }

  // ---- peers -------------------------------------------------------------

  private rememberPeer (id: string, addrs: string[]): void {
    if (addrs.length === 0 || id === this.facts?.id) return
    const isNew = !this.hints.has(id)
    this.hints.set(id, { id, addrs: addrs.slice(0, 8), lastSeen: new Date(this.now()).toISOString() })
    // Save a new peer soon (not just on the next maintenance tick), so a node killed right
    // after joining can still rejoin without its bootstrap address.
    if (isNew && this.peerSave === undefined) {
      this.peerSave = setTimeout(() => {
        this.peerSave = undefined
        this.persist(async () => { await this.store.savePeers(this.knownPeers()) })
      }, 500)
      this.peerSave.unref()
    }
  }

  private peerSave?: ReturnType<typeof setTimeout>

  private knownPeers (): KnownPeer[] {
    return [...this.hints.values()].sort((a, b) => b.lastSeen.localeCompare(a.lastSeen))
  }

  /**
   * Keeps these peers (multiaddrs ending in /p2p/<id>) as candidates, as --bootstrap does: peer
   * maintenance dials them while this node is below its target, so a peer that could not be
   * reached when first dialled (down, or too slow to answer) is tried again.
   */
  addPeers (addrs: string[]): void {
    for (const addr of addrs) {
      const id = bootstrapPeerId(addr)
      if (id !== undefined && id !== this.facts?.id && !this.hints.has(id)) this.hints.set(id, { id, addrs: [addr], lastSeen: new Date(0).toISOString() })
    }
  }

  private learnPeers (hints: PeerHint[]): void {
    for (const h of hints) if (!this.hints.has(h.id) && h.id !== this.facts?.id) this.hints.set(h.id, { ...h, lastSeen: new Date(0).toISOString() })
  }

  private peerHints (): PeerHint[] {
    const connected = new Set(this.net.getPeers().map((p) => p.toString()))
    return [...this.hints.values()].filter((h) => connected.has(h.id)).map((h) => ({ id: h.id, addrs: h.addrs }))
  }

  /** Tops connections up to the target from remembered and exchanged peers, and saves the list. */
  private async maintainPeers (): Promise<void> {
    if (this.stopping.signal.aborted) return
    const connected = new Set(this.net.getPeers().map((p) => p.toString()))
    const target = this.opts.targetPeers ?? DEFAULT_TARGET_PEERS
    const candidates = [...this.hints.values()].filter((h) => !connected.has(h.id) && !this.blocked.has(h.id))
    // Random order, so a fleet does not all dial the same peers.
    candidates.sort(() => this.random() - 0.5)
    const dials = candidates.slice(0, Math.max(0, target - connected.size)).map(async (h) => {
      try {
        await this.net.dial(h.addrs.map((a) => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${h.id}`)), { signal: AbortSignal.timeout(5000) })
      } catch {
        // unreachable peers are simply tried again later
      }
    })
    await Promise.all(dials)
    await this.store.savePeers(this.knownPeers()).catch(() => {})
  }

  /** Refuses and drops connections to these peers: how tests and simulations cut the mesh. */
  async block (peers: Iterable<string>): Promise<void> {
    for (const p of peers) {
      this.blocked.add(p)
      await this.net.hangUp(peerIdFromString(p)).catch(() => {})
    }
  }

  unblock (peers?: Iterable<string>): void {
    if (peers === undefined) this.blocked.clear()
    else for (const p of peers) this.blocked.delete(p)
  }

  /** Dials a peer now and runs a sync with it. */
  async connect (addr: string): Promise<void> {
    const conn = await this.net.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) })
    await this.net.services.sync.syncWith(conn.remotePeer)
  }

  async syncNow (): Promise<SyncRound[]> {
    const rounds = await Promise.allSettled(this.net.getPeers().map(async (p) => await this.net.services.sync.syncWith(p)))
    return rounds.flatMap((r) => r.status === 'fulfilled' ? [r.value] : [])
  }

  async stop (): Promise<void> {
    if (this.stopping.signal.aborted) return
    this.stopping.abort()
    for (const t of this.timers) clearTimeout(t)
    clearTimeout(this.peerSave)
    await this.idle().catch(() => {})
    await this.net.stop()
    await this.history({ event: 'stopped' }).catch(() => {})
    this.log.info({ peerId: this.facts.id }, 'agent stopped')
  }
}

/** A receipt's outcome from an apply's counts: one rule for receipts and beacons. */
function receiptOutcome (changed: number, failed: number): ReceiptOutcome {
  return failed > 0 ? 'failed' : changed > 0 ? 'applied' : 'unchanged'
}

/** The peer id of a bootstrap multiaddr (its /p2p/ part), if it names one. */
function bootstrapPeerId (addr: string): string | undefined {
  try {
    return multiaddr(addr).getPeerId() ?? undefined
  } catch {
    return undefined
  }
}

/** Receipt routes remembered; each publish needs one while its receipts travel. */
const MAX_RECEIPT_ROUTES = 1024

function routeKey (name: string, version: number, hash: string): string {
  return `${name}\n${version}\n${hash}`
}

/** An apply that threw (a bug or an unusable root) still yields a report, so it is seen, not swallowed. */
function crashReport (policy: string, err: Error, now: number): ApplyReport {
  return {
    policy,
    dryRun: false,
    startedAt: new Date(now).toISOString(),
    durationMs: 0,
    outcome: 'failures',
    counts: { total: 1, changed: 0, unchanged: 0, failed: 1, skipped: 0, unknown: 0 },
    resources: [{ id: '(policy)', type: 'exec', action: 'none', status: 'failed', error: { name: err.name, message: err.message }, durationMs: 0 }]
  }
}
