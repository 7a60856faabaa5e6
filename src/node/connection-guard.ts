import type { Connection } from '@libp2p/interface'

/**
 * Connections kept for peers this node has reason to trust (vouched: known before this run,
 * given as --bootstrap, or dialled by this node) and for its own dials: unvouched peers (anyone
 * who dials in with a fresh key) share the rest. Sixty-one made-up identities filled all 64
 * connections of an agent and locked an admin's `publish --bootstrap` out.
 */
export const RESERVED_CONNECTIONS = 16

/** An unvouched peer connected this recently is not pruned to make room: an admin's publish gets its few seconds. */
export const UNVOUCHED_GRACE_MS = 10_000

export interface ConnectionGuardComponents {
  /** libp2p's connection cap; unvouched peers get it less RESERVED_CONNECTIONS. */
  maxConnections: number
  /** Peers vouched for from the start: remembered from earlier runs, --bootstrap. */
  known: Iterable<string>
  now: () => number
  log?: (msg: string, peer: string) => void
}

/** The peer-store tag on vouched peers: libp2p's pruner, when over its cap, closes low-valued peers first. */
export const VOUCHED_TAG = 'grapevine-vouched'

export interface GuardedNet {
  getConnections: () => Connection[]
  addEventListener: (type: 'connection:open', fn: (evt: CustomEvent<Connection>) => void) => void
  peerStore: { merge: (peer: Connection['remotePeer'], data: { tags: Record<string, { value: number }> }) => Promise<unknown> }
}

/**
 * Decides inbound connections once their peer is known (the connection gater, after the
 * handshake, before any protocol runs). A vouched peer is let in up to libp2p's cap. An
 * unvouched one is let in while unvouched peers hold fewer than their share; when they hold
 * it all, the newest unvouched connection past its grace is closed to make room (long-standing
 * neighbours stay; a flood's connections go before them), and with none past its grace the
 * newcomer is refused.
 */
export class ConnectionGuard {
  private readonly vouched: Set<string>
  private net?: GuardedNet

  constructor (private readonly c: ConnectionGuardComponents) {
    this.vouched = new Set(c.known)
  }

  attach (net: GuardedNet): void {
    this.net = net
    net.addEventListener('connection:open', (evt) => {
      const peer = evt.detail.remotePeer
      // A peer this node chose to dial is one it has reason to keep.
      if (evt.detail.direction === 'outbound') this.vouch(peer.toString())
      // Over libp2p's cap (this node's own dials), its pruner closes untagged peers first.
      if (this.vouched.has(peer.toString())) net.peerStore.merge(peer, { tags: { [VOUCHED_TAG]: { value: 100 } } }).catch(() => {})
    })
  }

  vouch (peer: string): void {
    this.vouched.add(peer)
  }

  isVouched (peer: string): boolean {
    return this.vouched.has(peer)
  }

  /** True to refuse an inbound connection from `peer`; may close another unvouched connection to let it in. */
  denyInbound (peer: string): boolean {
    if (this.net === undefined || this.vouched.has(peer)) return false
    const share = Math.max(1, this.c.maxConnections - RESERVED_CONNECTIONS)
    const unvouched = this.net.getConnections().filter((conn) => !this.vouched.has(conn.remotePeer.toString()))
    if (new Set(unvouched.map((conn) => conn.remotePeer.toString())).size < share) return false
    const now = this.c.now()
    const victim = unvouched
      .filter((conn) => now - conn.timeline.open >= UNVOUCHED_GRACE_MS)
      .sort((a, b) => b.timeline.open - a.timeline.open)[0]
    if (victim === undefined) {
      this.c.log?.('refusing %s: unvouched peers hold their share of connections', peer)
      return true
    }
    this.c.log?.('closing %s to make room for a new peer', victim.remotePeer.toString())
    victim.abort(new Error('pruned: unvouched peers hold their share of connections'))
    return false
  }
}
