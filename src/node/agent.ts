import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr, peerIdFromString, type GrapevineLibp2p, type PeerId, type PrivateKey } from '../net/libp2p.js'
import { nodeSigningKey, peerIdOf } from '../net/identity.js'
import { StateStore, type HistoryEntry } from '../store/index.js'
import type { VerifiedEnvelope } from '../envelope/index.js'
import { TrustStore } from '../trust/index.js'
import type { NodeFacts } from '../policy/index.js'
import type { DigestEntry, IngestOutcome, SyncRound } from '../sync/index.js'
import { serveQueries } from '../query/index.js'
import { DEFAULT_BEACON_INTERVAL_MS, type FleetView } from '../receipt/index.js'
import { countFetch, countSyncRound, createMetrics, type AgentMetrics } from './metrics.js'
import { ADMISSION_BLOCK_MS, AGENT_LOCK_FILE, DEFAULT_BAKE_CHECK_INTERVAL_MS, DEFAULT_MESH, DEFAULT_REAPPLY_INTERVAL_MS, DEFAULT_TARGET_PEERS } from './constants.js'
import { silentLogger, type Logger } from './logger.js'
import { createClock, type Clock } from './clock.js'
import type { Via } from './rules.js'
import { checkAgentOptions, type AgentOptions, type AgentEvents } from './options.js'
import { acquirePidLock } from '../apply/lock.js'
import { PolicyBook, type ConflictRecord } from './book.js'
import { Journal, restoreBook } from './journal.js'
import { Intake, type Taken } from './intake.js'
import { createAgentNet, syncSource } from './network.js'
import { loadIdentity } from '../net/identity.js'
import { Fetcher } from './announce.js'
import { GossipTopics } from './gossip.js'
import { ApplyQueue } from './apply-queue.js'
import { Reports } from './reports.js'
import { Peers } from './peers.js'
import { buildStatus, readTraffic, type AgentStatus, type AgentTraffic } from './status.js'
import { AdmissionNotEnforcedError, AgentStoppedError, StateDirLockedError } from './errors.js'
import { loadAdmission } from './admission.js'
import { admissionStatus, type AdmissionCertificate } from '../admission/index.js'
import { canonicalBytes } from '../envelope/index.js'
import { AdmissionGate } from './admission-gate.js'
import { RecentRefusals } from './refusals.js'
import { loadOrCreateEncryptionKey, rotateEncryptionKey, type EncryptionKey } from '../secrets/index.js'
import { FactGatherer, type GatheredFacts } from '../facts/index.js'


export type { Via } from './rules.js'
export type { AgentOptions, AgentEvents } from './options.js'
export type { ConflictRecord, ForkRecord, UntrustedRecord } from './book.js'
export type { AgentStatus, AgentTraffic, PolicyState } from './status.js'

/**
 * A Grapevine node: a libp2p peer that validates and stores signed policies, keeps them in
 * sync with its neighbours, and applies the newest version of each policy that targets it.
 * This class only builds its parts, wires them, and starts and stops them in order; each part
 * is a small class over the components it uses (book, journal, intake, gossip topics, fetcher,
 * apply queue, reports, peers).
 */
export class Agent extends EventEmitter<AgentEvents> {
  readonly metrics: AgentMetrics
  readonly facts: NodeFacts
  readonly clock: Clock
  private readonly log: Logger
  private readonly stopping = new AbortController()
  private readonly book: PolicyBook
  private readonly journal: Journal
  private readonly intake: Intake
  private readonly peers: Peers
  private readonly queue: ApplyQueue
  private net!: GrapevineLibp2p
  private topics!: GossipTopics
  private reports!: Reports
  private gate!: AdmissionGate
  private unlock?: () => Promise<void>
  private readonly refusals: RecentRefusals
  private rekeying: Promise<unknown> = Promise.resolve()
  /** The warnings of the latest gathering, so an unchanged bad fact file is logged once, not at every apply. */
  private factWarnings = ''

  private constructor (private readonly opts: AgentOptions, private readonly store: StateStore, private readonly privateKey: PrivateKey, private encryptionKey: EncryptionKey, readonly admission?: AdmissionCertificate, private readonly gatherer?: FactGatherer, gathered?: GatheredFacts) {
    super()
    this.log = opts.logger ?? silentLogger
    this.clock = createClock({ now: opts.now, random: opts.random, setTimer: opts.setTimer, onError: (err) => { this.log.error({ err: err.message }, 'periodic task failed') } })
    this.metrics = createMetrics({ defaultMetrics: opts.processMetrics })
    const facts = opts.facts ?? gathered?.facts
    this.facts = { id: peerIdOf(privateKey).toString(), name: opts.name ?? hostname(), tags: opts.tags ?? {}, ...(facts !== undefined ? { facts } : {}) }
    if (gathered !== undefined) this.noteFactWarnings(gathered)
    const { log, clock, metrics } = this
    this.book = new PolicyBook(new TrustStore(opts.trust), clock.now)
    this.refusals = new RecentRefusals(clock.now)
    this.journal = new Journal({ store, log, now: clock.now, after: clock.after, signal: this.stopping.signal, failures: metrics.stateWriteFailures })
    this.peers = new Peers({ selfId: this.facts.id, targetPeers: opts.targetPeers ?? DEFAULT_TARGET_PEERS, store, journal: this.journal, clock, log, gauge: metrics.peers })
    // What most parts share; each part's components interface names the little it uses.
    const shared = { book: this.book, journal: this.journal, store, metrics, log, now: clock.now }
    this.intake = new Intake({
      ...shared,
      events: {
        accepted: (envelope, via, from) => {
          if (from !== undefined && (via === 'gossip' || via === 'sync')) this.reports.rememberUpstream(envelope, from)
          this.emit('accepted', { envelope, via, from })
          this.queue.schedule(envelope.name)
        },
        rejected: (refusal) => {
          this.refusals.add(refusal)
          this.emit('rejected', refusal)
        },
        conflict: (record) => { this.conflict(record) },
        forward: (envelope) => {
          this.topics.send(envelope).catch((err) => { this.log.debug({ name: envelope.name, err: (err as Error).message }, 'forwarding a synced envelope failed') })
        },
        untrusted: (records) => { void this.intake.fallBack(records) },
        catchUp: (peer, envelope) => {
          void this.intake.catchUp(envelope, peer, async (p) => {
            await this.net.services.sync.syncWith(peerIdFromString(p)).catch((err) => { this.log.debug({ peer: p, err: (err as Error).message }, 'catch-up sync failed') })
          })
        },
        fork: (record) => { this.emit('fork', record) }
      }
    })
    this.queue = new ApplyQueue({
      ...shared,
      facts: this.facts,
      root: opts.root,
      ...(opts.serviceRuntime !== undefined ? { serviceRuntime: opts.serviceRuntime } : {}),
      signal: this.stopping.signal,
      saving: (envelope) => this.intake.saving(envelope),
      encryptionKey: () => this.encryptionKey,
      ...(gatherer !== undefined ? { refreshFacts: async () => { await this.refreshFacts(gatherer) } } : {}),
      events: {
        applied: (envelope, report, outcome) => {
          this.emit('applied', { envelope, report })
          this.reports.sendReceipt(envelope, outcome, report)
        },
        // A trust policy is in force once held: its receipt tells a waiting publisher so.
        held: (envelope) => { this.reports.sendReceipt(envelope, 'applied') },
        notTargeted: (envelope) => {
          this.emit('not-targeted', { envelope })
          this.reports.sendReceipt(envelope, 'not-targeted')
        },
        retired: (envelope) => { this.reports.sendReceipt(envelope, 'retired') },
        sealed: (envelope, why) => {
          this.emit('sealed', { envelope, why })
          this.reports.sendReceipt(envelope, 'sealed', undefined, why)
        },
        conflict: (record) => { this.conflict(record) }
      }
    })
  }

  static async start (opts: AgentOptions): Promise<Agent> {
    checkAgentOptions(opts)
    const store = await StateStore.open(opts.stateDir, opts.stateWriter)
    const unlock = await acquirePidLock(join(opts.stateDir, AGENT_LOCK_FILE), (pid) => new StateDirLockedError(opts.stateDir, pid))
    try {
      await mkdir(opts.root, { recursive: true })
      const { key: privateKey } = await loadIdentity(store)
      // Made on first start: its public half goes in every report, for publishers to seal secrets to.
      const encryptionKey = await loadOrCreateEncryptionKey(opts.stateDir)
      // Facts first: the first apply's targets and templates, and the first beacon, read them.
      const gatherer = opts.facts === undefined ? new FactGatherer({ factsDir: opts.factsDir }) : undefined
      const gathered = await gatherer?.refresh()
      const agent = new Agent(opts, store, privateKey, encryptionKey, await loadAdmission(opts.stateDir, opts.admission, peerIdOf(privateKey).toString()), gatherer, gathered)
      agent.unlock = unlock
      await agent.boot()
      return agent
    } catch (err) {
      await unlock()
      throw err
    }
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

  /** What this node knows of the fleet, from the receipts and beacons it relays. */
  get fleet (): FleetView {
    return this.reports.fleet
  }

  /** Loads state, builds the network unstarted, installs every handler, then starts it. */
  private async boot (): Promise<void> {
    const { opts, book, metrics, clock, log } = this
    const untrusted = await restoreBook(this.store, book, log, clock.now)
    for (const record of untrusted) book.distrust(record)
    metrics.policies.set(book.size)
    this.queue.applied = await this.store.loadApplied()
    this.queue.restoreSealed(await this.store.loadSealed())
    await this.peers.load()
    // Bootstrap peers are dialled once at start. Keep them as candidates too, so a node whose
    // bootstrap was down at that moment (or dropped before peer exchange) still joins later.
    this.peers.add(opts.bootstrap ?? [])
    if (opts.admittedOnly === true && !book.trust.admissionEnforced) throw new AdmissionNotEnforcedError(`--admitted-only needs a trust policy that lists enrollers; this node's (version ${book.trustVersion ?? 'none'}) lists none, so every peer would count (docs/admission.md, "The transition rule")`)

    const net = this.net = await createAgentNet(opts, this.mesh, this.privateKey, {
      isBlocked: (peer) => this.peers.isBlocked(peer),
      // Known before this run (remembered, --bootstrap): the connection guard keeps room for them.
      known: this.peers.list().map((p) => p.id),
      now: clock.now,
      metricsRegister: metrics.gossipRegister,
      sync: {
        random: clock.random,
        source: syncSource({ book, store: this.store, intake: this.intake, peers: this.peers, now: clock.now }),
        onFetch: (round) => { countFetch(metrics, round); this.emit('fetch', round) },
        onRound: (round) => { countSyncRound(metrics, round); this.emit('sync', round) }
      }
    })
    const signal = this.stopping.signal
    this.topics = new GossipTopics({
      pubsub: net.services.pubsub,
      mesh: this.mesh,
      announceThreshold: opts.announceThreshold,
      ingest: (bytes, from) => this.intake.take(bytes, 'gossip', from).outcome,
      announcement: async (bytes, from) => await fetcher.validate(bytes, from),
      report: async (bytes, from) => await this.reports.takeGossiped(bytes, from),
      onListener: () => { this.reports.announceJoin() }
    })
    const fetcher = new Fetcher({ book, intake: this.intake, net, random: clock.random, metrics, log, signal })
    this.reports = new Reports({
      facts: this.facts,
      signingKey: nodeSigningKey(this.privateKey),
      admission: this.admission,
      recipient: () => this.encryptionKey.recipient,
      judge: (peer, cert) => admissionStatus(cert, peer, book.trust, clock.now()),
      clock,
      metrics,
      log,
      net,
      signal,
      gossip: async (bytes) => await this.topics.sendReport(bytes),
      held: () => book.values(),
      untrusted: () => book.untrusted,
      // A fork open on a name is what the fleet must see first.
      outcomeOf: (env) => book.forks.some((f) => f.name === env.name) ? 'fork' : this.queue.outcomeOf(env),
      onReport: (report) => { this.emit('report', report) }
    })

    this.gate = new AdmissionGate({
      net, log, clock, signal, enforce: opts.admittedOnly === true, graceMs: opts.admissionGraceMs,
      certificate: this.admission !== undefined ? canonicalBytes(this.admission) : undefined,
      judge: (cert, peer) => admissionStatus(cert, peer, book.trust, clock.now()),
      refuse: async (peer) => { await this.peers.block([peer], { forMs: ADMISSION_BLOCK_MS }) }
    })
    this.topics.install()
    await this.gate.start()
    await this.reports.start()
    await serveQueries(net, {
      fleet: () => this.reports.fleet.list(),
      envelope: async (name, version) => await this.archivedEnvelope(name, version)
    })

    await net.start()
    this.topics.subscribe()
    log.info({ peerId: this.facts.id, addrs: this.multiaddrs, mesh: this.mesh, policies: book.size, recipient: this.encryptionKey.recipient, facts: factLine(this.facts.facts), ...(opts.serviceRuntime === 'sandbox' ? { serviceRuntime: 'sandbox (services\' running state is recorded under the root, not managed)' } : {}) }, 'agent started')
    this.journal.history({ event: 'started', detail: { peerId: this.facts.id } })

    this.peers.start(net)
    clock.repeat(opts.reapplyInterval ?? DEFAULT_REAPPLY_INTERVAL_MS, () => { this.queue.scheduleAll() })
    clock.repeat(opts.bakeCheckInterval ?? DEFAULT_BAKE_CHECK_INTERVAL_MS, () => { this.queue.scheduleBaking() })
    clock.repeat(opts.beaconInterval ?? DEFAULT_BEACON_INTERVAL_MS, async () => { await this.reports.beacon() })
    this.queue.scheduleAll()
    await this.intake.fallBack(untrusted)
  }

  /** Gathers the facts that change (memory, addresses, facts.d) again; a failure keeps the facts held. */
  private async refreshFacts (gatherer: FactGatherer): Promise<void> {
    try {
      const gathered = await gatherer.refresh()
      this.facts.facts = gathered.facts
      this.noteFactWarnings(gathered)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'facts not gathered again; the earlier ones stay')
    }
  }

  private noteFactWarnings (gathered: GatheredFacts): void {
    const key = gathered.warnings.join('\n')
    if (key === this.factWarnings) return
    this.factWarnings = key
    for (const warning of gathered.warnings) this.log.warn({ warning }, 'custom fact skipped')
  }

  private conflict (record: ConflictRecord): void {
    this.metrics.conflicts.set(this.book.conflicts.length)
    this.emit('conflict', record)
  }

  digest (): DigestEntry[] {
    return this.book.digest()
  }

  /** The envelope currently held for a policy name. */
  envelope (name: string): VerifiedEnvelope | undefined {
    return this.book.get(name)
  }

  /** Offers an envelope, however it came; never throws: the outcome says whether the sender misbehaved. */
  async ingest (bytes: Uint8Array, via: Via, from?: string): Promise<IngestOutcome> {
    return this.intake.take(bytes, via, from).outcome
  }

  /**
   * Publishes a signed envelope from this node: take it locally, then gossip it, or above the
   * announce threshold gossip its announcement and serve the body to the peers that fetch it.
   */
  async publish (bytes: Uint8Array, via: Via = 'local'): Promise<Taken & { recipients: number }> {
    if (this.stopping.signal.aborted) throw new AgentStoppedError('the agent has stopped; nothing was published')
    // Verified once: the same envelope serves the reply whether it was taken or not.
    const taken = this.intake.take(bytes, via)
    const { outcome, envelope } = taken
    if (outcome !== 'accepted' || envelope === undefined) return { ...taken, recipients: 0 }
    return { outcome, envelope, recipients: await this.topics.send(envelope) }
  }

  /** This node's encryption key's public half (age1…): what publishers seal its secrets to. */
  get recipient (): string {
    return this.encryptionKey.recipient
  }

  /**
   * Replaces this node's encryption key (`grapevine rekey`): used at once, announced by a beacon,
   * and every held policy with sealed secrets is applied again. Those sealed to the old key now
   * report `sealed` until a version is sealed to the new one (grapevine reseal).
   */
  async rekey (): Promise<{ previous?: string, recipient: string }> {
    // One at a time: two interleaved rotations could leave the agent on a key the file no longer holds.
    const run = this.rekeying.then(async () => await this.rekeyNow())
    this.rekeying = run.catch(() => {})
    return await run
  }

  private async rekeyNow (): Promise<{ previous?: string, recipient: string }> {
    if (this.stopping.signal.aborted) throw new AgentStoppedError('the agent has stopped; its key was not changed')
    const { previous, key } = await rotateEncryptionKey(this.opts.stateDir)
    this.encryptionKey = key
    this.log.info({ previous, recipient: key.recipient }, 'encryption key replaced')
    this.queue.scheduleSealed()
    await this.reports.beacon()
    return { ...(previous !== undefined ? { previous } : {}), recipient: key.recipient }
  }

  /** Signs and gossips a presence beacon; resolves to the peers it went to. */
  async beacon (): Promise<number> {
    return await this.reports.beacon()
  }

  /** A version of a policy: the one held, or an old one kept for rollback. */
  async archivedEnvelope (name: string, version: number): Promise<Uint8Array | undefined> {
    if (!Number.isSafeInteger(version) || version < 1) return undefined
    const current = this.book.get(name)
    if (current?.version === version) return current.bytes
    return await this.store.loadArchived(name, version)
  }

  status (): AgentStatus {
    return buildStatus({
      node: { ...this.facts, addrs: this.multiaddrs, mesh: this.mesh, root: this.opts.root, recipient: this.encryptionKey.recipient },
      peers: this.net.getPeers().map((p) => ({ id: p.toString(), addrs: this.net.getConnections(p).map((c) => c.remoteAddr.toString()) })),
      held: this.book.values(),
      applied: this.queue.applied,
      targets: (e) => this.queue.targets(e),
      heldBack: (e) => this.queue.heldBack(e),
      sealed: (e) => this.queue.sealedWhy(e),
      conflicts: this.book.conflicts,
      untrusted: this.book.untrusted,
      forks: this.book.forks,
      roots: this.book.trust.rootKeys,
      trustVersion: this.book.trustVersion,
      applying: this.queue.busy,
      refused: this.refusals.list(),
      stateWriteFailing: this.journal.failing
    })
  }

  /** Traffic so far, from this node's own counters: what simulations and benchmarks report. */
  async traffic (): Promise<AgentTraffic> {
    return await readTraffic(this.metrics)
  }

  async readHistory (limit?: number): Promise<HistoryEntry[]> {
    return await this.journal.readHistory(limit)
  }

  /** Resolves once queued applies and state writes are done (tests, orderly shutdown). */
  async idle (): Promise<void> {
    do {
      await this.queue.idle()
      await this.journal.idle()
      // An apply that waited for its envelope to be stored is scheduled once the write is done.
      await new Promise((resolve) => setImmediate(resolve))
    } while (this.queue.busy)
  }

  /** Keeps these peers (multiaddrs ending in /p2p/<id>) as dial candidates, as --bootstrap does; returns the addresses refused. */
  addPeers (addrs: string[]): string[] {
    return this.peers.add(addrs)
  }

  /** Refuses and drops connections to these peers: how tests and simulations cut the mesh. */
  async block (peers: Iterable<string>): Promise<void> {
    await this.peers.block(peers)
  }

  unblock (peers?: Iterable<string>): void {
    this.peers.unblock(peers)
  }

  /** Dials a peer now and runs a sync with it. */
  async connect (addr: string): Promise<void> {
    if (this.stopping.signal.aborted) throw new AgentStoppedError(`the agent has stopped; not dialling ${addr}`)
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
    this.clock.stop()
    this.peers.stop()
    this.topics.stop()
    await this.gate.stop()
    await this.queue.idle().catch((err) => { this.log.error({ err: (err as Error).message }, 'apply queue failed while stopping') })
    await this.net.stop()
    this.journal.history({ event: 'stopped' })
    await this.journal.idle()
    await this.unlock?.()
    this.log.info({ peerId: this.facts.id }, 'agent stopped')
  }
}

/** The few facts the start line names: what the node says it is. */
function factLine (facts: Record<string, unknown> | undefined): string | undefined {
  if (facts === undefined) return undefined
  const os = facts.os as { name?: string, release?: { full?: string } } | undefined
  return [os?.name, os?.release?.full, facts.architecture, facts.init].filter((v) => v !== undefined).join(' ')
}
