import { multiaddr, peerIdFromString, type GrapevineLibp2p } from '../net/libp2p.js'
import type { KnownPeer, StateStore } from '../store/index.js'
import type { PeerHint } from '../sync/index.js'
import { shuffle, type Clock } from './clock.js'
import type { Journal } from './journal.js'
import type { Logger } from './logger.js'
import { PEER_MAINTENANCE_INTERVAL_MS } from './constants.js'
import { rotates, rotationDrop } from './rules.js'

/** How long one maintenance dial may take before the peer is tried again at a later tick. */
export const MAINTENANCE_DIAL_TIMEOUT_MS = 5000
/** A new peer is saved this soon, so a node killed right after joining can still rejoin without its bootstrap address. */
export const NEW_PEER_SAVE_DELAY_MS = 500
/** Addresses kept per peer. */
export const MAX_ADDRS_PER_PEER = 8

/** The little of libp2p peer management needs. */
export type PeersNet = Pick<GrapevineLibp2p, 'getPeers' | 'dial' | 'hangUp' | 'addEventListener'>

export interface PeersComponents {
  selfId: string
  targetPeers: number
  store: Pick<StateStore, 'loadPeers' | 'savePeers'>
  journal: Pick<Journal, 'replace'>
  clock: Pick<Clock, 'now' | 'random' | 'after' | 'repeat'>
  log: Logger
  /** Connected peers, as a metric. */
  gauge: { set: (value: number) => void }
}

/**
 * The peers this node knows (remembered, exchanged by sync, given as --bootstrap), the
 * connections it keeps up to its target, and the peers it refuses. The connection gater asks
 * `isBlocked`; nothing else holds the blocked set.
 */
export class Peers {
  private readonly known = new Map<string, KnownPeer>()
  private readonly blocked = new Set<string>()
  /** Blocks that lift themselves (an admission refusal), with their cancel functions. */
  private readonly expiries = new Map<string, () => void>()
  /** When maintenance first saw each connected peer connected: rotation hangs up the longest held. */
  private readonly since = new Map<string, number>()
  private net?: PeersNet
  private saveQueued = false
  /** Peers whose last dial failed and was logged as a warning: the next failures are debug, so a dead peer is one warning, not one every tick. */
  private readonly unreachable = new Set<string>()
  private stopped = false

  constructor (private readonly c: PeersComponents) {}

  async load (): Promise<void> {
    for (const p of await this.c.store.loadPeers()) this.known.set(p.id, p)
  }

  /** Starts maintenance on a started network: one round now (rejoin through remembered peers), then every interval. */
  start (net: PeersNet): void {
    this.net = net
    net.addEventListener('peer:identify', (evt) => {
      const { peerId, listenAddrs } = evt.detail
      this.remember(peerId.toString(), listenAddrs.map((a) => a.toString()))
    })
    const count = (): void => { this.c.gauge.set(net.getPeers().length) }
    net.addEventListener('connection:open', count)
    net.addEventListener('connection:close', count)
    void this.maintain()
    this.c.clock.repeat(PEER_MAINTENANCE_INTERVAL_MS, async () => { await this.maintain() })
  }

  stop (): void {
    this.stopped = true
  }

  isBlocked (peer: string): boolean {
    return this.blocked.has(peer)
  }

  /**
   * Refuses and drops connections to these peers: how tests and simulations cut the mesh, and
   * how `--admitted-only` refuses a peer for `forMs`. A block without `forMs` is lifted only by unblock.
   */
  async block (peers: Iterable<string>, opts: { forMs?: number } = {}): Promise<void> {
    for (const p of peers) {
      const permanent = this.blocked.has(p) && !this.expiries.has(p)
      this.expiries.get(p)?.()
      this.expiries.delete(p)
      if (opts.forMs !== undefined && !permanent) {
        this.expiries.set(p, this.c.clock.after(opts.forMs, () => {
          this.expiries.delete(p)
          this.blocked.delete(p)
        }))
      }
      this.blocked.add(p)
      await this.net?.hangUp(peerIdFromString(p)).catch((err) => { this.c.log.debug({ peer: p, err: (err as Error).message }, 'hang-up failed') })
    }
  }

  unblock (peers?: Iterable<string>): void {
    for (const p of peers ?? [...this.blocked]) {
      this.expiries.get(p)?.()
      this.expiries.delete(p)
      this.blocked.delete(p)
    }
  }

  /** A peer identify told us about: remember its listen addresses. */
  remember (id: string, addrs: string[]): void {
    if (addrs.length === 0 || id === this.c.selfId) return
    const isNew = !this.known.has(id)
    this.known.set(id, { id, addrs: addrs.slice(0, MAX_ADDRS_PER_PEER), lastSeen: new Date(this.c.clock.now()).toISOString() })
    if (isNew && !this.saveQueued) {
      this.saveQueued = true
      this.c.clock.after(NEW_PEER_SAVE_DELAY_MS, () => {
        this.saveQueued = false
        this.c.journal.replace('peers', async () => { await this.c.store.savePeers(this.list()) })
      })
    }
  }

  /**
   * Keeps these peers (multiaddrs ending in /p2p/<id>) as candidates, as --bootstrap does: peer
   * maintenance dials them while this node is below its target, so a peer that could not be
   * reached when first dialled (down, or too slow to answer) is tried again. Returns the
   * addresses refused (no /p2p/ part, or not a multiaddr).
   */
  add (addrs: string[]): string[] {
    const refused: string[] = []
    for (const addr of addrs) {
      const id = peerIdOfAddr(addr)
      if (id === undefined) {
        refused.push(addr)
        this.c.log.warn({ addr }, 'not a peer address (expected a multiaddr ending in /p2p/<peer id>); ignored')
        continue
      }
      if (id !== this.c.selfId && !this.known.has(id)) this.known.set(id, { id, addrs: [addr], lastSeen: new Date(0).toISOString() })
    }
    return refused
  }

  /** Peers another node offered during sync. */
  learn (hints: PeerHint[]): void {
    for (const h of hints) if (!this.known.has(h.id) && h.id !== this.c.selfId) this.known.set(h.id, { ...h, lastSeen: new Date(0).toISOString() })
  }

  /** Connected peers to offer others, so a node that only knew a dead bootstrap node can still find the mesh. */
  hints (): PeerHint[] {
    const connected = this.connected()
    return [...this.known.values()].filter((h) => connected.has(h.id)).map((h) => ({ id: h.id, addrs: h.addrs }))
  }

  list (): KnownPeer[] {
    return [...this.known.values()].sort((a, b) => b.lastSeen.localeCompare(a.lastSeen))
  }

  /**
   * Tops connections up to the target from known peers, in random order (so a fleet does not all
   * dial the same ones), and saves the list. At the target, now and then swaps one connection for
   * a known but unconnected peer (rules.ts, `rotates`): how a healed partition finds its way back
   * together when both sides refilled their connections from their own side during the cut.
   */
  async maintain (): Promise<void> {
    const net = this.net
    if (net === undefined || this.stopped) return
    const connected = this.connected()
    this.note(connected)
    const candidates = shuffle([...this.known.values()].filter((h) => !connected.has(h.id) && !this.blocked.has(h.id)), this.c.clock.random)
    const missing = Math.max(0, this.c.targetPeers - connected.size)
    if (missing > 0) await Promise.all(candidates.slice(0, missing).map(async (h) => await this.dial(net, h)))
    else if (rotates(connected.size, this.c.targetPeers, candidates.length, this.c.clock.random)) await this.rotate(net, candidates[0] as KnownPeer)
    this.c.journal.replace('peers', async () => { await this.c.store.savePeers(this.list()) })
  }

  /** One rotation: dial `to`; once connected, hang up the known peer held longest if that leaves the node above its target. */
  private async rotate (net: PeersNet, to: KnownPeer): Promise<void> {
    if (!await this.dial(net, to)) return
    this.since.set(to.id, this.c.clock.now())
    const connected = this.connected()
    const held = [...this.since].filter(([id]) => connected.has(id) && this.known.has(id)).map(([peer, since]) => ({ peer, since }))
    const drop = rotationDrop(held, to.id, connected.size, this.c.targetPeers)
    if (drop === undefined) return
    this.c.log.debug({ peer: to.id, dropped: drop }, 'peer rotated')
    this.since.delete(drop)
    await net.hangUp(peerIdFromString(drop)).catch((err) => { this.c.log.debug({ peer: drop, err: (err as Error).message }, 'hang-up failed') })
  }

  /** True when the dial succeeded; an unreachable peer is tried again at a later tick. */
  private async dial (net: PeersNet, h: KnownPeer): Promise<boolean> {
    try {
      await net.dial(h.addrs.map((a) => multiaddr(a.includes('/p2p/') ? a : `${a}/p2p/${h.id}`)), { signal: AbortSignal.timeout(MAINTENANCE_DIAL_TIMEOUT_MS) })
      this.unreachable.delete(h.id)
      return true
    } catch (err) {
      // A bootstrap address that leads nowhere must show in the log, not only at debug.
      const fields = { peer: h.id, addrs: h.addrs, err: (err as Error).message }
      if (this.unreachable.has(h.id)) this.c.log.debug(fields, 'peer dial failed')
      else this.c.log.warn(fields, 'cannot reach peer (tried again at later maintenance ticks)')
      this.unreachable.add(h.id)
      return false
    }
  }

  /** Notes when each connection was first seen, and forgets those gone. */
  private note (connected: Set<string>): void {
    for (const id of this.since.keys()) if (!connected.has(id)) this.since.delete(id)
    for (const id of connected) if (!this.since.has(id)) this.since.set(id, this.c.clock.now())
  }

  private connected (): Set<string> {
    return new Set((this.net?.getPeers() ?? []).map((p) => p.toString()))
  }
}

/** The peer id of a multiaddr (its /p2p/ part), if it names one. */
export function peerIdOfAddr (addr: string): string | undefined {
  try {
    return multiaddr(addr).getPeerId() ?? undefined
  } catch {
    return undefined
  }
}
