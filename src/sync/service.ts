import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { pushable } from 'it-pushable'
import { raceSignal } from 'race-signal'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { ComponentLogger, Logger, PeerId, Startable, Stream, Connection } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import {
  DEFAULT_SYNC_INTERVAL_MS, EXCHANGE_TIMEOUT_MS, FETCH_TIMEOUT_MS, MAX_FRAME_BYTES, MAX_FRAMES_PER_STREAM, MAX_INBOUND_STREAMS,
  MAX_PEERS_PER_FRAME, READ_TIMEOUT_MS, SYNC_PROTOCOL
} from './constants.js'
import { decodeFrame, encodeFrame, type DigestEntry, type Frame, type PeerHint } from './frames.js'
import { namesToFetch } from './digest.js'
import { SyncProtocolError, SyncStreamEndedError, SyncTimeoutError } from './errors.js'
import { scopedSignal } from './signals.js'
import { TRUST_POLICY_NAME } from '../policy/index.js'
import type { VersionedRef } from '../envelope/index.js'
import { systemSetTimer, type SetTimer } from '../node/clock.js'
import { syncDelay } from '../node/rules.js'

/** What an envelope did when offered to the node. `rejected` means the sender misbehaved. */
export type IngestOutcome = 'accepted' | 'ignored' | 'rejected'

/** The node's side of sync: its digest, its envelopes, and the same ingest path gossip uses. */
export interface SyncSource {
  digest: () => DigestEntry[]
  envelope: (name: string) => Uint8Array | undefined
  ingest: (bytes: Uint8Array, from: string, via: 'sync') => Promise<IngestOutcome>
  /** Peers to offer others, so a node that only knew a dead bootstrap node can still find the mesh. */
  peerHints?: () => PeerHint[]
  onPeerHints?: (hints: PeerHint[], from: string) => void
  /**
   * The envelopes to send for a wanted name, oldest first: the versions after `since` (what the
   * peer holds) up to the one held here, where they link up, else only the one held. Absent:
   * only the one held.
   */
  chain?: (name: string, since?: DigestEntry) => Promise<Uint8Array[]>
  /** False for a publisher that only learns versions and offers its own envelope. */
  wantsEnvelopes?: boolean
  /**
   * True for an envelope (by the peer's digest entry) this node already refused and would refuse
   * again: not asked for, so a peer whose trust differs does not deliver it every round.
   */
  declined?: (entry: DigestEntry) => boolean
  /** Announce-and-fetch: the exact envelope asked for, if held (current or archived); absent means none are served. */
  fetch?: (req: FetchRequest) => Promise<Uint8Array | undefined>
}

/** One envelope, named by what its announcement signed. */
export interface FetchRequest {
  name: string
  version: number
  hash: string
}

/** One fetch exchange, either side: what it cost and how it ended. */
export interface FetchRound {
  peer: string
  initiator: boolean
  name: string
  version: number
  found: boolean
  bytesIn: number
  bytesOut: number
  error?: string
}

export interface SyncRound {
  peer: string
  initiator: boolean
  sent: number
  received: number
  accepted: number
  error?: string
  bytesIn?: number
  bytesOut?: number
  /** The remote's digest, as it was at the start of an exchange we initiated. */
  remoteDigest?: DigestEntry[]
}

export interface AntiEntropyInit {
  source: SyncSource
  /** Mean time between periodic rounds with one random peer; 0 disables them. */
  interval?: number
  readTimeout?: number
  /** Picks the periodic round's peer and jitters its delay; default Math.random. */
  random?: () => number
  /** Arms the periodic round's timer; default an unref'd setTimeout. Tests pass a fake. */
  setTimer?: SetTimer
  onRound?: (round: SyncRound) => void
  onFetch?: (round: FetchRound) => void
}

/** Only what the service uses (libp2p passes all its components), so that test fakes stay small. */
export interface AntiEntropyComponents {
  registrar: Pick<Registrar, 'handle' | 'unhandle' | 'register' | 'unregister'>
  connectionManager: Pick<ConnectionManager, 'openConnection' | 'getConnections' | 'closeConnections'>
  logger: ComponentLogger
}

export interface AntiEntropy extends Startable {
  /** One exchange with a connected peer; both sides end up holding the newer of each policy. */
  syncWith: (peer: PeerId, options?: { signal?: AbortSignal }) => Promise<SyncRound>
  /**
   * Asks a connected peer for one envelope (announce-and-fetch). Resolves to its bytes, unverified,
   * or undefined when the peer does not hold it; rejects on timeout or a protocol error.
   */
  fetch: (peer: PeerId, req: FetchRequest, options?: { signal?: AbortSignal }) => Promise<Uint8Array | undefined>
}

/** Orders names so the trust policy travels first: envelopes signed by new admins depend on it. */
function trustFirst (names: string[]): string[] {
  return [...names].sort((a, b) => Number(b === TRUST_POLICY_NAME) - Number(a === TRUST_POLICY_NAME))
}

class FrameChannel {
  private readonly frames: AsyncIterator<Uint8ArrayList | Uint8Array>
  private readonly out = pushable<Uint8Array>()
  private readonly writing: Promise<void>
  private count = 0
  bytesIn = 0
  bytesOut = 0

  constructor (private readonly stream: Stream, private readonly signal: AbortSignal, private readonly readTimeout: number) {
    this.frames = lp.decode(stream.source, { maxDataLength: MAX_FRAME_BYTES })[Symbol.asyncIterator]()
    this.writing = pipe(this.out, (src) => lp.encode(src), stream.sink)
    // finish() reports a failed write. A round that failed first never gets there, and an
    // unhandled rejection would end the whole agent: a peer that closes early must not do that.
    this.writing.catch(() => {})
  }

  write (frame: Frame): void {
    const bytes = encodeFrame(frame)
    this.bytesOut += bytes.byteLength
    this.out.push(bytes)
  }

  async read (): Promise<Frame> {
    if (++this.count > MAX_FRAMES_PER_STREAM) throw new SyncProtocolError(`more than ${MAX_FRAMES_PER_STREAM} frames in one exchange`)
    // Per frame, so its timer and listener go as soon as the frame is in.
    const scope = scopedSignal(this.readTimeout, this.signal)
    let result: IteratorResult<Uint8ArrayList | Uint8Array>
    try {
      result = await raceSignal(this.frames.next(), scope.signal)
    } catch (err) {
      if (scope.signal.aborted && !this.signal.aborted) throw new SyncTimeoutError(`no frame within ${this.readTimeout} ms`)
      if ((err as Error).name === 'InvalidDataLengthError' || (err as Error).name === 'InvalidMessageLengthError' || (err as Error).name === 'InvalidDataLengthLengthError') {
        throw new SyncProtocolError(`bad frame length: ${(err as Error).message}`)
      }
      throw err
    } finally {
      scope.done()
    }
    if (result.done === true) throw new SyncStreamEndedError('stream ended mid-exchange')
    const v = result.value
    const bytes = v instanceof Uint8Array ? v : v.subarray()
    this.bytesIn += bytes.byteLength
    return decodeFrame(bytes)
  }

  async expect<T extends Frame['type']> (type: T): Promise<Extract<Frame, { type: T }>> {
    const frame = await this.read()
    if (frame.type !== type) throw new SyncProtocolError(`expected a ${type} frame, got ${frame.type}`)
    return frame as Extract<Frame, { type: T }>
  }

  async finish (): Promise<void> {
    this.out.end()
    await raceSignal(this.writing, this.signal)
    await this.stream.close({ signal: this.signal })
  }
}

class AntiEntropyService implements AntiEntropy {
  private readonly log: Logger
  private readonly source: SyncSource
  private readonly interval: number
  private readonly readTimeout: number
  private readonly random: () => number
  private readonly setTimer: SetTimer
  private readonly onRound?: (round: SyncRound) => void
  private readonly onFetch?: (round: FetchRound) => void
  private topologyId?: string
  private cancelTimer: () => void = () => {}
  private shutdown = new AbortController()
  private running = false
  private readonly inFlight = new Map<string, Promise<SyncRound>>()

  constructor (private readonly components: AntiEntropyComponents, init: AntiEntropyInit) {
    this.log = components.logger.forComponent('grapevine:sync')
    this.source = init.source
    this.interval = init.interval ?? DEFAULT_SYNC_INTERVAL_MS
    this.readTimeout = init.readTimeout ?? READ_TIMEOUT_MS
    this.random = init.random ?? Math.random
    this.setTimer = init.setTimer ?? systemSetTimer
    this.onRound = init.onRound
    this.onFetch = init.onFetch
  }

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    this.running = true
    await this.components.registrar.handle(SYNC_PROTOCOL, ({ stream, connection }) => {
      this.respond(stream, connection).catch((err) => { this.log.error('inbound sync from %p failed: %e', connection.remotePeer, err) })
    }, { maxInboundStreams: MAX_INBOUND_STREAMS, maxOutboundStreams: MAX_INBOUND_STREAMS })
    // Catch up on every new connection: this is how a fresh or returning node gets current.
    this.topologyId = await this.components.registrar.register(SYNC_PROTOCOL, {
      onConnect: (peer) => {
        this.syncWith(peer).catch((err) => { this.log('sync on connect with %p failed: %e', peer, err) })
      }
    })
    this.schedule()
  }

  async stop (): Promise<void> {
    this.running = false
    this.cancelTimer()
    this.shutdown.abort()
    await this.components.registrar.unhandle(SYNC_PROTOCOL)
    if (this.topologyId !== undefined) this.components.registrar.unregister(this.topologyId)
  }

  private schedule (): void {
    if (!this.running || this.interval <= 0) return
    this.cancelTimer = this.setTimer(() => {
      void this.periodic().finally(() => { this.schedule() })
    }, syncDelay(this.interval, this.random))
  }

  private async periodic (): Promise<void> {
    const peers = this.components.connectionManager.getConnections().map((c) => c.remotePeer)
    if (peers.length === 0) return
    const peer = peers[Math.floor(this.random() * peers.length)] as PeerId
    try {
      await this.syncWith(peer)
    } catch (err) {
      this.log('periodic sync with %p failed: %e', peer, err)
    }
  }

  async syncWith (peer: PeerId, options: { signal?: AbortSignal } = {}): Promise<SyncRound> {
    const key = peer.toString()
    // One exchange per peer at a time: a caller that asks meanwhile shares the running one.
    const running = this.inFlight.get(key)
    if (running !== undefined) return await running
    const exchange = this.exchange(peer, key, options)
    this.inFlight.set(key, exchange)
    try {
      return await exchange
    } finally {
      this.inFlight.delete(key)
    }
  }

  private async exchange (peer: PeerId, key: string, options: { signal?: AbortSignal }): Promise<SyncRound> {
    const round: SyncRound = { peer: key, initiator: true, sent: 0, received: 0, accepted: 0 }
    const scope = scopedSignal(EXCHANGE_TIMEOUT_MS, this.shutdown.signal, options.signal)
    const signal = scope.signal
    let stream: Stream | undefined
    try {
      const conn = await this.components.connectionManager.openConnection(peer, { signal })
      const opened = await conn.newStream(SYNC_PROTOCOL, { signal })
      stream = opened
      const ch = new FrameChannel(opened, signal, this.readTimeout)
      ch.write({ type: 'digest', entries: this.source.digest() })
      const remote = await ch.expect('digest')
      const theirWant = await ch.expect('want')
      round.sent += await this.sendWanted(ch, theirWant.names, remote.entries)
      round.remoteDigest = remote.entries
      const myWant = this.wants(remote.entries)
      ch.write({ type: 'want', names: trustFirst(myWant) })
      ch.write({ type: 'peers', peers: (this.source.peerHints?.() ?? []).slice(0, MAX_PEERS_PER_FRAME) })
      await this.receiveUntilDone(ch, key, round)
      await ch.finish()
      round.bytesIn = ch.bytesIn
      round.bytesOut = ch.bytesOut
      return round
    } catch (err) {
      round.error = (err as Error).message
      await this.fail(stream, peer, err)
      throw err
    } finally {
      scope.done()
      this.onRound?.(round)
    }
  }

  private async respond (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer
    const round: SyncRound = { peer: peer.toString(), initiator: false, sent: 0, received: 0, accepted: 0 }
    const scope = scopedSignal(EXCHANGE_TIMEOUT_MS, this.shutdown.signal)
    const signal = scope.signal
    // A fetch is not an anti-entropy round: it is reported through onFetch instead.
    let fetch = false
    try {
      const ch = new FrameChannel(stream, signal, this.readTimeout)
      const first = await ch.read()
      if (first.type === 'fetch') {
        fetch = true
        await this.serveFetch(ch, first, round.peer)
        return
      }
      if (first.type !== 'digest') throw new SyncProtocolError(`expected a digest or fetch frame, got ${first.type}`)
      const remote = first
      ch.write({ type: 'digest', entries: this.source.digest() })
      ch.write({ type: 'want', names: trustFirst(this.wants(remote.entries)) })
      // Their envelopes for our want arrive before their own want.
      let frame = await ch.read()
      while (frame.type === 'envelope') {
        await this.ingest(frame.bytes, round)
        frame = await ch.read()
      }
      if (frame.type !== 'want') throw new SyncProtocolError(`expected a want frame, got ${frame.type}`)
      round.sent += await this.sendWanted(ch, frame.names, remote.entries)
      const hints = await ch.expect('peers')
      if (hints.peers.length > 0) this.source.onPeerHints?.(hints.peers, round.peer)
      ch.write({ type: 'peers', peers: (this.source.peerHints?.() ?? []).slice(0, MAX_PEERS_PER_FRAME) })
      ch.write({ type: 'done' })
      await ch.finish()
      round.bytesIn = ch.bytesIn
      round.bytesOut = ch.bytesOut
    } catch (err) {
      round.error = (err as Error).message
      await this.fail(stream, peer, err)
    } finally {
      scope.done()
      if (!fetch) this.onRound?.(round)
    }
  }

  /** The responder's side of a fetch: the envelope, or `missing`. One request per stream. */
  private async serveFetch (ch: FrameChannel, req: Extract<Frame, { type: 'fetch' }>, peer: string): Promise<void> {
    const fetched: FetchRound = { peer, initiator: false, name: req.name, version: req.version, found: false, bytesIn: 0, bytesOut: 0 }
    try {
      const bytes = await this.source.fetch?.({ name: req.name, version: req.version, hash: req.hash })
      fetched.found = bytes !== undefined
      ch.write(bytes !== undefined ? { type: 'envelope', bytes } : { type: 'missing' })
      await ch.finish()
    } finally {
      fetched.bytesIn = ch.bytesIn
      fetched.bytesOut = ch.bytesOut
      this.onFetch?.(fetched)
    }
  }

  async fetch (peer: PeerId, req: FetchRequest, options: { signal?: AbortSignal } = {}): Promise<Uint8Array | undefined> {
    const fetched: FetchRound = { peer: peer.toString(), initiator: true, name: req.name, version: req.version, found: false, bytesIn: 0, bytesOut: 0 }
    const scope = scopedSignal(FETCH_TIMEOUT_MS, this.shutdown.signal, options.signal)
    const signal = scope.signal
    let stream: Stream | undefined
    let ch: FrameChannel | undefined
    try {
      const conn = await this.components.connectionManager.openConnection(peer, { signal })
      stream = await conn.newStream(SYNC_PROTOCOL, { signal })
      ch = new FrameChannel(stream, signal, Math.min(this.readTimeout, FETCH_TIMEOUT_MS))
      ch.write({ type: 'fetch', name: req.name, version: req.version, hash: req.hash })
      const reply = await ch.read()
      if (reply.type !== 'envelope' && reply.type !== 'missing') throw new SyncProtocolError(`expected an envelope or missing frame, got ${reply.type}`)
      await ch.finish()
      fetched.found = reply.type === 'envelope'
      return reply.type === 'envelope' ? reply.bytes : undefined
    } catch (err) {
      fetched.error = (err as Error).message
      await this.fail(stream, peer, err)
      throw err
    } finally {
      scope.done()
      fetched.bytesIn = ch?.bytesIn ?? 0
      fetched.bytesOut = ch?.bytesOut ?? 0
      this.onFetch?.(fetched)
    }
  }

  private async receiveUntilDone (ch: FrameChannel, peer: string, round: SyncRound): Promise<void> {
    for (;;) {
      const frame = await ch.read()
      if (frame.type === 'done') return
      if (frame.type === 'peers') {
        if (frame.peers.length > 0) this.source.onPeerHints?.(frame.peers, peer)
        continue
      }
      if (frame.type !== 'envelope') throw new SyncProtocolError(`unexpected ${frame.type} frame`)
      await this.ingest(frame.bytes, round, peer)
    }
  }

  private async ingest (bytes: Uint8Array, round: SyncRound, peer = round.peer): Promise<void> {
    round.received++
    const outcome = await this.source.ingest(bytes, peer, 'sync')
    if (outcome === 'accepted') round.accepted++
    if (outcome === 'rejected') throw new SyncProtocolError('peer sent an envelope that fails verification')
  }

  /**
   * Sends what the peer asked for, trust policy first. Where the source can, each name comes
   * with the versions between the peer's and its own (SyncSource.chain), oldest first, so the
   * peer can take them along the chain.
   */
  private async sendWanted (ch: FrameChannel, names: string[], theirs: DigestEntry[]): Promise<number> {
    const held = new Map(theirs.map((e) => [e.name, e]))
    let sent = 0
    for (const name of trustFirst(names)) {
      const since = held.get(name)
      const envelopes = this.source.chain !== undefined ? await this.source.chain(name, since) : [this.source.envelope(name)]
      for (const bytes of envelopes) {
        if (bytes === undefined) continue
        ch.write({ type: 'envelope', bytes })
        sent++
      }
    }
    return sent
  }


  private wants (remote: DigestEntry[]): string[] {
    if (this.source.wantsEnvelopes === false) return []
    const declined = this.source.declined
    const offered = declined === undefined ? remote : remote.filter((e) => !declined(e))
    return namesToFetch(new Map<string, VersionedRef>(this.source.digest().map((e) => [e.name, e])), offered)
  }

  /** Never leave a stream half-open; a peer that spoke garbage is disconnected. */
  private async fail (stream: Stream | undefined, peer: PeerId, err: unknown): Promise<void> {
    stream?.abort(err as Error)
    if (err instanceof SyncProtocolError) {
      this.log.error('disconnecting %p: %s', peer, (err as Error).message)
      await this.components.connectionManager.closeConnections(peer).catch(() => {})
    }
  }
}

/** libp2p service factory: `services: { sync: antiEntropy({ source }) }`. */
export function antiEntropy (init: AntiEntropyInit): (components: AntiEntropyComponents) => AntiEntropy {
  return (components) => new AntiEntropyService(components, init)
}
