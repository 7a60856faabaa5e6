import { describe, expect, it } from 'vitest'
import type { Connection } from '@libp2p/interface'
import { ConnectionGuard, RESERVED_CONNECTIONS, UNVOUCHED_GRACE_MS, VOUCHED_TAG } from '../../src/node/connection-guard.js'

interface FakeConn { remotePeer: { toString: () => string }, direction: 'inbound' | 'outbound', timeline: { open: number }, aborted?: boolean, abort: () => void }

function conn (peer: string, open: number, direction: 'inbound' | 'outbound' = 'inbound'): FakeConn {
  const c: FakeConn = { remotePeer: { toString: () => peer }, direction, timeline: { open }, abort: () => { c.aborted = true } }
  return c
}

function setup (opts: { max?: number, known?: string[], now?: number } = {}) {
  const conns: FakeConn[] = []
  let opened: ((evt: CustomEvent<Connection>) => void) | undefined
  const tagged: string[] = []
  const guard = new ConnectionGuard({ maxConnections: opts.max ?? 20, known: opts.known ?? [], now: () => opts.now ?? 100_000 })
  guard.attach({
    getConnections: () => conns.filter((c) => c.aborted !== true) as unknown as Connection[],
    addEventListener: (_t, fn) => { opened = fn },
    peerStore: { merge: async (peer, data) => { if (data.tags[VOUCHED_TAG] !== undefined) tagged.push(peer.toString()) } }
  })
  return { guard, conns, tagged, open: (c: FakeConn) => { conns.push(c); opened?.(new CustomEvent('connection:open', { detail: c as unknown as Connection })) } }
}

describe('ConnectionGuard', () => {
  const share = 20 - RESERVED_CONNECTIONS

  it('lets unvouched peers in up to their share', () => {
    const { guard, conns } = setup()
    for (let i = 0; i < share - 1; i++) conns.push(conn(`sybil${i}`, 100_000))
    expect(guard.denyInbound('newcomer')).toBe(false)
  })

  it('keeps the reserved room for vouched peers: known at start, and those this node dialled', () => {
    const { guard, conns, open, tagged } = setup({ known: ['old-friend'] })
    for (let i = 0; i < share; i++) conns.push(conn(`sybil${i}`, 100_000))
    open(conn('dialled', 100_000, 'outbound'))
    open(conn('old-friend', 100_000))
    open(conn('stranger', 100_000))
    // Tagged for libp2p's pruner, which closes low-valued peers first when over its cap.
    expect(tagged).toEqual(['dialled', 'old-friend'])
    expect(guard.denyInbound('old-friend')).toBe(false)
    expect(guard.denyInbound('dialled')).toBe(false)
    expect(guard.isVouched('dialled')).toBe(true)
    // The flood's connections are all fresh: nothing to prune, the unvouched newcomer waits.
    expect(guard.denyInbound('newcomer')).toBe(true)
  })

  it('when unvouched peers hold their share, closes the newest of them past its grace to let a newcomer in (before: refused at 64)', () => {
    const now = 100_000
    const { guard, conns } = setup({ now })
    conns.push(conn('long-standing', 0))
    for (let i = 1; i < share - 1; i++) conns.push(conn(`sybil${i}`, now - UNVOUCHED_GRACE_MS - 1000 + i))
    conns.push(conn('fresh', now - 10))
    expect(guard.denyInbound('admin-publish')).toBe(false)
    expect(conns.filter((c) => c.aborted === true).map((c) => c.remotePeer.toString())).toEqual([`sybil${share - 2}`])
  })
})
