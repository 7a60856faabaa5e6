import { describe, expect, it } from 'vitest'
import type { VerifiedEnvelope } from '../../src/envelope/index.js'
import type { AppliedRecord } from '../../src/store/index.js'
import { createMetrics, type AgentMetrics } from '../../src/node/metrics.js'
import { buildStatus, readTraffic, type AgentTraffic, type StatusSources } from '../../src/node/status.js'
import type { ConflictRecord } from '../../src/node/book.js'
import { configPolicy, makeKeys, policy, trustPolicy } from '../helpers/envelope.js'
import { verified } from './fakes.js'

const keys = makeKeys()
const b = verified(configPolicy('site/b'), { key: keys.root, version: 2 })
const a = verified(configPolicy('site/a', [], { target: { tags: { role: 'db' } } }), { key: keys.root })
const trust = verified(trustPolicy([]), { key: keys.root, version: 4 })
const retired = verified(policy({ kind: 'retired', name: 'site/c' }), { key: keys.root, version: 9 })
const applied: AppliedRecord = { name: 'site/b', version: 2, hash: b.hash, outcome: 'changes', at: '2025-01-02T03:04:05.000Z', changed: 1, failed: 0, durationMs: 12 }
const conflict: ConflictRecord = { kind: 'path', name: 'site/b', path: '/motd', policies: ['site/a', 'site/b'], at: '2025-01-02T03:04:05.000Z' }

function sources (over: Partial<StatusSources> = {}): StatusSources {
  const s: StatusSources = {
    node: { id: 'node-1', name: 'web1', tags: { role: 'web' }, addrs: ['/ip4/127.0.0.1/tcp/1'], mesh: 'default', root: '/' },
    peers: [{ id: 'peer-1', addrs: ['/ip4/10.0.0.1/tcp/4001'] }],
    held: [retired, b, trust, a],
    applied: { 'site/b': applied },
    targets: (e: VerifiedEnvelope) => e.policy.kind === 'policy' && e.name !== 'site/a',
    conflicts: [conflict],
    untrusted: [],
    forks: [],
    roots: [keys.root.id],
    trustVersion: 4,
    applying: true,
    ...over
  }
  return s
}

describe('buildStatus', () => {
  it('lists every held policy by name, with its header, kind, whether it targets this node and its last apply', () => {
    const status = buildStatus(sources())
    expect(status.policies.map((p) => [p.name, p.kind, p.version, p.targeted, p.lastApply])).toEqual([
      ['grapevine/trust', 'trust', 4, false, undefined],
      ['site/a', 'policy', 1, false, undefined],
      ['site/b', 'policy', 2, true, applied],
      ['site/c', 'retired', 9, false, undefined]
    ])
    expect(status.policies[2]).toEqual({ name: 'site/b', version: 2, hash: b.hash, signer: keys.root.id, issuedAt: b.issuedAt, id: b.id, kind: 'policy', targeted: true, lastApply: applied })
    expect('lastApply' in (status.policies[1] as object)).toBe(false)
  })

  it('passes the node, peers, conflicts, untrusted policies and apply state through as they are', () => {
    const s = sources({ untrusted: [{ name: 'web/nginx', version: 4, hash: 'sha256:x', signer: keys.webAdmin.id, reason: 'revoked', error: 'revoked', at: '' }] })
    const status = buildStatus(s)
    expect(status.untrusted).toBe(s.untrusted)
    expect(status.node).toBe(s.node)
    expect(status.peers).toBe(s.peers)
    expect(status.conflicts).toBe(s.conflicts)
    expect(status.applying).toBe(true)
    expect(buildStatus(sources({ applying: false })).applying).toBe(false)
  })

  it.each<[string, number | undefined, { roots: string[], policyVersion?: number }]>([
    ['with a trust policy', 4, { roots: [keys.root.id], policyVersion: 4 }],
    ['roots only', undefined, { roots: [keys.root.id] }]
  ])('says what it trusts: %s', (_, trustVersion, expected) => {
    expect(buildStatus(sources({ trustVersion })).trust).toStrictEqual(expected)
  })

  it('shows a node holding nothing', () => {
    expect(buildStatus(sources({ held: [], applied: {}, conflicts: [], applying: false }))).toMatchObject({ policies: [], conflicts: [], applying: false })
  })
})

describe('readTraffic', () => {
  /** Gossipsub registers its metrics when it starts; these are the ones traffic reads, as it registers them. */
  function startGossipsub (metrics: AgentMetrics) {
    const r = metrics.gossipRegister
    return {
      rpcSent: r.gauge({ name: 'gossipsub_rpc_sent_bytes_total', help: 'RPC sent' }),
      rpcRecv: r.gauge({ name: 'gossipsub_rpc_recv_bytes_total', help: 'RPC recv' }),
      received: r.gauge<{ topic: string }>({ name: 'gossipsub_msg_received_prevalidation_total', help: 'received', labelNames: ['topic'] }),
      duplicates: r.gauge<{ topic: string }>({ name: 'gossipsub_pre_validation_duplicate_total', help: 'duplicates', labelNames: ['topic'] })
    }
  }

  it('is all zero on a node that has done nothing, before gossipsub has started', async () => {
    const traffic = await readTraffic(createMetrics())
    expect(Object.values(traffic).every((v) => v === 0)).toBe(true)
    expect(Object.keys(traffic)).toHaveLength(10)
  })

  it('reads each counter, by direction and topic', async () => {
    const metrics = createMetrics()
    const g = startGossipsub(metrics)
    // Each field gets its own value; other topics and directions add noise that must not count.
    const table = {
      gossipBytesSent: [() => { g.rpcSent.inc(1000) }, 1000],
      gossipBytesReceived: [() => { g.rpcRecv.inc(2000); g.rpcRecv.inc(1) }, 2001],
      policyMessages: [() => { g.received.inc({ topic: 'policies' }, 3) }, 3],
      policyDuplicates: [() => { g.duplicates.inc({ topic: 'policies' }, 4) }, 4],
      announceMessages: [() => { g.received.inc({ topic: 'announcements' }, 5) }, 5],
      announceDuplicates: [() => { g.duplicates.inc({ topic: 'announcements' }, 6) }, 6],
      syncBytesSent: [() => { metrics.syncBytes.inc({ direction: 'sent' }, 70) }, 70],
      syncBytesReceived: [() => { metrics.syncBytes.inc({ direction: 'received' }, 80) }, 80],
      fetchBytesSent: [() => { metrics.fetchBytes.inc({ direction: 'sent' }, 90) }, 90],
      fetchBytesReceived: [() => { metrics.fetchBytes.inc({ direction: 'received' }, 100); metrics.fetchBytes.inc({ direction: 'received' }, 10) }, 110]
    } satisfies Record<keyof AgentTraffic, [feed: () => void, expected: number]>
    for (const [feed] of Object.values(table)) feed()
    g.received.inc({ topic: 'receipts' }, 1000)
    g.duplicates.inc({ topic: 'receipts' }, 1000)
    expect(await readTraffic(metrics)).toEqual(Object.fromEntries(Object.entries(table).map(([k, [, v]]) => [k, v])))
  })
})
