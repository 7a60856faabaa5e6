import * as lp from 'it-length-prefixed'
import { pushable, type Pushable } from 'it-pushable'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { ComponentLogger, Connection, Logger, PeerId, Stream, StreamHandler, Topology } from '@libp2p/interface'
import { decodeFrame, encodeFrame, type AntiEntropyComponents, type Frame } from '../../src/sync/index.js'
import { Recorder, within } from '../helpers/recorder.js'

/**
 * In-memory fakes of what the sync service asks libp2p for (AntiEntropyComponents), so that
 * its tests run without a transport or a muxer. Time: FakeTime in test/node/fakes.ts.
 */

type Chunk = Uint8Array | Uint8ArrayList

/**
 * One end of an in-memory stream. What its sink consumes arrives at the other end's source;
 * abort() resets both ends, as a muxer's RESET does. `ended` says how this end finished.
 */
export class MemoryStream {
  readonly inbox: Pushable<Chunk> = pushable<Chunk>()
  readonly source: AsyncIterable<Chunk> = this.inbox
  other!: MemoryStream
  aborted?: Error
  closed = false
  readonly ended: Promise<'closed' | 'aborted'>
  private settle!: (how: 'closed' | 'aborted') => void
  private readonly reset: Promise<never>
  private resetWith!: (err: Error) => void

  constructor () {
    this.ended = new Promise((resolve) => { this.settle = resolve })
    this.reset = new Promise<never>((_resolve, reject) => { this.resetWith = reject })
    this.reset.catch(() => {})
  }

  static pair (): [MemoryStream, MemoryStream] {
    const a = new MemoryStream()
    const b = new MemoryStream()
    a.other = b
    b.other = a
    return [a, b]
  }

  readonly sink = async (source: AsyncIterable<Chunk> | Iterable<Chunk>): Promise<void> => {
    const it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]()
    for (;;) {
      const r = await Promise.race([it.next(), this.reset])
      if (r.done === true) break
      this.other.inbox.push(r.value)
    }
    this.other.inbox.end()
  }

  async close (): Promise<void> {
    this.closed = true
    this.inbox.end()
    this.settle('closed')
  }

  abort (err: Error): void {
    if (this.aborted !== undefined) return
    this.aborted = err
    this.resetWith(err)
    this.inbox.end(err)
    this.settle('aborted')
    this.other.remoteReset()
  }

  private remoteReset (): void {
    if (this.aborted !== undefined || this.closed) return
    const err = new Error('stream reset by the remote')
    this.resetWith(err)
    this.inbox.end(err)
  }

  /** This end as libp2p's Stream type: the service uses only source, sink, close and abort. */
  get asStream (): Stream {
    return this as unknown as Stream
  }
}

/** A raw peer's view of a sync stream: write frames (or any bytes), read frames, to script misbehaviour. */
export class RawPeer {
  private readonly out = pushable<Uint8Array>()
  private readonly frames: AsyncIterator<Uint8ArrayList>

  constructor (readonly end: MemoryStream) {
    void end.sink(this.out).catch(() => {})
    this.frames = lp.decode(end.source)[Symbol.asyncIterator]()
  }

  /** Bytes exactly as given, without a length prefix. */
  writeRaw (bytes: Uint8Array): void {
    this.out.push(bytes)
  }

  write (...frames: Frame[]): void {
    for (const f of frames) this.writeBytes(encodeFrame(f))
  }

  /** One length-prefixed frame of any content. */
  writeBytes (bytes: Uint8Array): void {
    this.out.push(lp.encode.single(bytes).subarray())
  }

  async read (): Promise<Frame> {
    const r = await within(this.frames.next(), 'a frame from the service')
    if (r.done === true) throw new Error('stream ended')
    return decodeFrame(r.value.subarray())
  }

  endWrite (): void {
    this.out.end()
  }
}

export interface FakeNode {
  peer: PeerId
  components: AntiEntropyComponents
  handlers: Map<string, StreamHandler>
  topologies: Map<string, Topology>
  /** Peers whose connections this node closed (closeConnections), as strings. */
  disconnected: Recorder<string>
  /** This node's end of every stream it dialled or accepted. */
  streams: Recorder<{ end: MemoryStream, remote: string, inbound: boolean }>
}

const silentLog: Logger = Object.assign((): void => {}, {
  error: (): void => {},
  trace: (): void => {},
  enabled: false,
  newScope: (): Logger => silentLog
})
const silentLogger: ComponentLogger = { forComponent: () => silentLog }

/** Nodes that can dial each other; `connect` makes a pair show in each other's getConnections(). */
export class MemoryNet {
  private readonly nodes = new Map<string, FakeNode>()
  private readonly links = new Map<string, Set<string>>()

  async node (): Promise<FakeNode> {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const key = peer.toString()
    const handlers = new Map<string, StreamHandler>()
    const topologies = new Map<string, Topology>()
    const disconnected = new Recorder<string>()
    const streams = new Recorder<{ end: MemoryStream, remote: string, inbound: boolean }>()
    this.links.set(key, new Set())
    const components: AntiEntropyComponents = {
      registrar: {
        handle: async (protocol, handler) => { handlers.set(protocol, handler) },
        unhandle: async (protocol) => { handlers.delete(protocol) },
        register: async (protocol, topology) => {
          topologies.set(protocol, topology)
          return protocol
        },
        unregister: (id) => { topologies.delete(id) }
      },
      connectionManager: {
        openConnection: async (to) => this.connection(key, String(to)),
        getConnections: () => [...this.links.get(key) ?? []].map((to) => this.connection(key, to)),
        closeConnections: async (to) => { disconnected.push(to.toString()) }
      },
      logger: silentLogger
    }
    const node: FakeNode = { peer, components, handlers, topologies, disconnected, streams }
    this.nodes.set(key, node)
    return node
  }

  connect (a: FakeNode, b: FakeNode): void {
    this.links.get(a.peer.toString())?.add(b.peer.toString())
    this.links.get(b.peer.toString())?.add(a.peer.toString())
  }

  /** A stream from `from` to `to` that `to` handles as it would a dialled one; returns `from`'s end. */
  dial (from: FakeNode, to: FakeNode, protocol: string): MemoryStream {
    const handler = to.handlers.get(protocol)
    if (handler === undefined) throw new Error(`${to.peer.toString()} does not handle ${protocol}`)
    const [mine, theirs] = MemoryStream.pair()
    from.streams.push({ end: mine, remote: to.peer.toString(), inbound: false })
    to.streams.push({ end: theirs, remote: from.peer.toString(), inbound: true })
    void handler({ stream: theirs.asStream, connection: { remotePeer: from.peer } as unknown as Connection })
    return mine
  }

  private connection (from: string, to: string): Connection {
    const local = this.nodes.get(from)
    const remote = this.nodes.get(to)
    if (local === undefined || remote === undefined) throw new Error(`no route to ${to}`)
    const conn = {
      remotePeer: remote.peer,
      newStream: async (protocol: string) => this.dial(local, remote, protocol).asStream
    }
    return conn as unknown as Connection
  }
}
