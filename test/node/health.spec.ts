import { afterEach, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { startMesh, waitFor, type TestMesh } from './fixtures.js'
import { startApi, type ApiServer } from '../../src/node/api.js'
import { PeerlessWatch, nodeHealth, type PeerEvents } from '../../src/node/health.js'
import { generateSigningKey } from '../../src/envelope/index.js'
import { peerIdOf } from '../../src/net/identity.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Logger } from '../../src/node/logger.js'

// Issue 15, "Bad flags go unnoticed": a node that reaches nobody says so, in its log and in /health.

let mesh: TestMesh | undefined
let api: ApiServer | undefined
afterEach(async () => {
  await api?.close()
  await mesh?.stop()
  mesh = undefined
  api = undefined
})

/** libp2p's peer events, by hand. */
function fakeNet (): PeerEvents & { peers: number, emit: (type: 'peer:connect' | 'peer:disconnect') => void } {
  const listeners = new Map<string, Set<() => void>>()
  const net = {
    peers: 0,
    getPeers: () => Array.from({ length: net.peers }),
    addEventListener: (type: string, l: () => void) => { listeners.set(type, (listeners.get(type) ?? new Set()).add(l)) },
    removeEventListener: (type: string, l: () => void) => { listeners.get(type)?.delete(l) },
    emit: (type: string) => { for (const l of listeners.get(type) ?? []) l() }
  }
  return net
}

describe('PeerlessWatch', () => {
  it('is degraded only once the node has had no peer for longer than the grace, counted from the last disconnect', () => {
    const net = fakeNet()
    let t = 1_000_000
    const watch = new PeerlessWatch(net, () => t, 60_000)
    expect(watch.health().status).toBe('ok')
    t += 60_000
    expect(watch.health().status).toBe('ok')
    t += 1_000
    expect(watch.health()).toEqual({ status: 'degraded', problems: [expect.stringContaining('no peers for 61 s')] })
    net.peers = 1
    net.emit('peer:connect')
    t += 600_000
    expect(watch.health().status).toBe('ok')
    // Alone again: the grace starts at the disconnect, not at start.
    net.peers = 0
    net.emit('peer:disconnect')
    t += 59_000
    expect(watch.health().status).toBe('ok')
    t += 2_000
    expect(watch.health().status).toBe('degraded')
    watch.stop()
    net.peers = 1
    net.emit('peer:connect')
    // Stopped: events no longer reach it, but a peer present when asked still counts.
    expect(watch.health().status).toBe('ok')
  })
})

describe('GET /health', () => {
  it('says degraded, with the reason, for a node with no peer past the grace, and ok once a peer connects', async () => {
    let t = Date.parse('2026-01-01T00:00:00Z')
    mesh = await startMesh(1, { now: () => t })
    const a = mesh.agents[0]!
    api = await startApi(a, { stateDir: join(mesh.dir, 'node-0', 'state'), socket: false, tcp: { host: '127.0.0.1', port: 0 }, peerlessGraceMs: 60_000 })
    const health = async (): Promise<{ ok: boolean, status: string, problems: string[], peers: number }> => await (await fetch(`${api?.url ?? ''}/health`)).json() as never
    expect(await health()).toMatchObject({ ok: true, status: 'ok', problems: [], peers: 0 })
    t += 61_000
    expect(await health()).toMatchObject({ ok: false, status: 'degraded', peers: 0, problems: [expect.stringContaining('no peers for 61 s')] })
    await mesh.add({ bootstrapFrom: [0] })
    await waitFor(async () => (await health()).status === 'ok', 'a peer to end the degraded state')
  })
})

describe('dial failures', () => {
  it('a --bootstrap peer that cannot be reached is a warning with its address and the error, once, not silence', async () => {
    const warnings: Array<{ fields: Record<string, unknown>, msg?: string }> = []
    const debug: string[] = []
    const logger: Logger = {
      debug: (_, msg) => { debug.push(msg ?? '') },
      info: () => {},
      warn: (fields, msg) => { warnings.push({ fields: fields as Record<string, unknown>, msg }) },
      error: () => {}
    }
    // A valid peer id at an address where nothing listens.
    const nobody = peerIdOf(await generateKeyPair('Ed25519')).toString()
    const addr = `/ip4/127.0.0.1/tcp/9/p2p/${nobody}`
    mesh = await startMesh(0)
    const a = await mesh.add({ bootstrap: [addr], logger, trust: [generateSigningKey().id] })
    await waitFor(() => warnings.some((w) => w.msg?.startsWith('cannot reach peer') === true), 'the dial failure to be logged')
    const w = warnings.find((x) => x.msg?.startsWith('cannot reach peer') === true)
    expect(w?.fields).toMatchObject({ peer: nobody, addrs: [addr] })
    expect(String(w?.fields.err)).not.toBe('')
    expect(a.status().peers).toEqual([])
  })
})

describe('nodeHealth', () => {
  const failing = { what: 'envelope site/motd v2', error: 'ENOSPC: no space left on device, write', since: '2026-12-05T00:00:00.000Z', attempts: 3 }

  it('is degraded while a state write is retried (issue 15: a full --state disk), saying what and since when', () => {
    const health = nodeHealth({ status: 'ok', problems: [] }, failing)
    expect(health.status).toBe('degraded')
    expect(health.problems).toHaveLength(1)
    expect(health.problems[0]).toContain('envelope site/motd v2')
    expect(health.problems[0]).toContain('since 2026-12-05T00:00:00.000Z (3 attempts, last: ENOSPC: no space left on device, write)')
  })

  it('keeps the peer watch\'s verdict, and is ok with neither problem', () => {
    expect(nodeHealth({ status: 'ok', problems: [] })).toEqual({ status: 'ok', problems: [] })
    const alone = { status: 'degraded' as const, problems: ['no peers for 200 s'] }
    expect(nodeHealth(alone)).toEqual(alone)
    expect(nodeHealth(alone, failing).problems).toHaveLength(2)
  })
})
