import { describe, expect, it } from 'vitest'
import { convergedAt, nodeOutcomes, onlineTargets, publishResult } from '../../src/sim/analysis.js'
import { evaluateChecks } from '../../src/sim/checks.js'
import { analyse } from '../../src/sim/summary.js'
import { renderReport } from '../../src/sim/report.js'
import type { RecordNode, RecordPublish, RunRecord, Traffic } from '../../src/sim/result.js'
import type { ScenarioCheck } from '../../src/sim/scenario.js'

const ZERO: Traffic = { gossipBytesSent: 0, gossipBytesReceived: 0, syncBytesSent: 0, syncBytesReceived: 0, policyDuplicates: 0, policyMessages: 0 }

function node (index: number, up: Array<[number, number?]> = [[-1000]], tags: Record<string, string> = { role: 'web' }): RecordNode {
  return { index, name: `node-${index}`, tags, up, startMs: [100], traffic: ZERO }
}

function pub (over: Partial<RecordPublish> = {}): RecordPublish {
  return { id: 'p', name: 'a/b', version: 1, hash: 'sha256:b', from: 0, signer: 'root', at: 0, kind: 'policy', ...over }
}

/** A record in which each listed node accepted and applied the publish at the given times. */
function record (nodes: RecordNode[], p: RecordPublish, got: Record<number, number>, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    t0: 0,
    end: 10_000,
    nodes,
    publishes: [p],
    deliveries: Object.entries(got).map(([n, at]) => ({ node: Number(n), name: p.name, version: p.version, hash: p.hash, via: Number(n) === p.from ? 'local' : 'gossip', at: at - 5 })),
    applies: Object.entries(got).map(([n, at]) => ({ node: Number(n), name: p.name, version: p.version, hash: p.hash, at, outcome: 'changes', changed: 1, failed: 0 })),
    conflicts: [],
    rejections: [],
    markers: [{ id: p.id, do: 'publish', at: p.at, detail: '' }],
    errors: [],
    ...extra
  }
}

describe('nodeOutcomes', () => {
  it('classifies online, catch-up and missing nodes, and ignores nodes down at the end', () => {
    const nodes = [
      node(0), // publisher, applied at 10
      node(1), // online, applied at 300
      node(2, [[-1000, 100], [2000]]), // killed before applying, restarted at 2 s, applied 500 ms later
      node(3, [[4000]]), // joined after the publish
      node(4), // up throughout, never applied
      node(5, [[-1000, 50]]), // died and stayed down
      node(6, [[-1000]], { role: 'db' }) // not targeted
    ]
    const p = pub({ at: 0, target: { tags: { role: 'web' } } })
    const r = record(nodes, p, { 0: 10, 1: 300, 2: 2500, 3: 4100 })
    expect(nodeOutcomes(r, p).map((o) => [o.name, o.class, o.latency])).toEqual([
      ['node-0', 'online', 10],
      ['node-1', 'online', 300],
      ['node-2', 'catch-up', 500],
      ['node-3', 'catch-up', 100],
      ['node-4', 'missing', undefined]
    ])
    // The denominator is every targeted node up from the publish to the end, applied or not.
    expect(onlineTargets(r, p)).toEqual({ latencies: [10, 300], targeted: 3 })
  })

  it('counts a later version of the same policy as having it', () => {
    const p = pub({ version: 1 })
    const r = record([node(0), node(1)], p, { 0: 10 })
    r.applies.push({ node: 1, name: 'a/b', version: 2, hash: 'sha256:c', at: 900, outcome: 'changes', changed: 1, failed: 0 })
    expect(onlineTargets(r, p)).toEqual({ latencies: [10, 900], targeted: 2 })
  })

  it('uses acceptance, not apply, for a trust policy', () => {
    const p = pub({ kind: 'trust', name: 'grapevine/trust' })
    const r = record([node(0), node(1)], p, { 0: 10, 1: 60 })
    r.applies = []
    expect(onlineTargets(r, p)).toEqual({ latencies: [5, 55], targeted: 2 })
  })
})

describe('publishResult', () => {
  it('gives quantiles, how nodes got it, traffic and the conflict outcome', () => {
    const nodes = [node(0), node(1), node(2), node(3)]
    const p = pub({ id: 'mine', bytes: 1000, traffic: { window: [0, 1000], byNode: { 0: { ...ZERO, gossipBytesSent: 1000, syncBytesSent: 24 }, 1: { ...ZERO, gossipBytesSent: 500, gossipBytesReceived: 2000, policyDuplicates: 2 }, 2: { ...ZERO, syncBytesReceived: 1000, fetchBytesReceived: 500, policyDuplicates: 4 } } } })
    const rival = pub({ id: 'theirs', hash: 'sha256:a', from: 3 })
    const r = record(nodes, p, { 0: 10, 1: 100, 2: 200, 3: 400 })
    r.publishes.push(rival)
    r.deliveries[3] = { ...r.deliveries[3]!, via: 'sync' }
    const res = publishResult(r, p)
    expect(res.times).toEqual({ t50: 100, t90: 400, t99: 400, t100: 400 })
    expect(res.via).toEqual({ local: 1, gossip: 2, sync: 1 })
    expect(res.traffic).toEqual({
      windowMs: 1000,
      publisherBytes: 1024,
      totalBytes: 1524,
      duplicates: 6,
      duplicatesPerNode: 2,
      // Received by every node but the publisher (gossip + sync + fetch), also as × the envelope size.
      receivedPerNode: { mean: 1750, max: 2000, meanX: 1.75, maxX: 2 },
      fetchBytes: 500
    })
    expect(res.conflict).toEqual({ with: 'theirs', won: true })
    expect(res.coverage[0]).toEqual([0, 0])
    expect(res.coverage[res.coverage.length - 1]).toEqual([400, 1])
  })
})

describe('convergedAt', () => {
  const two = [node(0), node(1)]
  const table: Array<{ what: string, r: Partial<RunRecord>, from: number, want: number | undefined }> = [
    {
      what: 'the moment the last node takes the newest',
      r: { deliveries: [{ node: 0, name: 'a', version: 1, hash: 'x', via: 'local', at: 0 }, { node: 1, name: 'a', version: 1, hash: 'x', via: 'gossip', at: 70 }] },
      from: 0,
      want: 70
    },
    {
      what: 'at `from` itself when the mesh already agrees',
      r: { deliveries: [{ node: 0, name: 'a', version: 1, hash: 'x', via: 'local', at: 0 }, { node: 1, name: 'a', version: 1, hash: 'x', via: 'gossip', at: 70 }] },
      from: 500,
      want: 500
    },
    {
      what: 'never, when one node keeps an older version',
      r: { deliveries: [{ node: 0, name: 'a', version: 1, hash: 'x', via: 'local', at: 0 }] },
      from: 0,
      want: undefined
    },
    {
      what: 'not on a losing hash of the same version',
      r: {
        publishes: [pub({ name: 'a', hash: 'y', at: 0 }), pub({ name: 'a', hash: 'x', at: 0, from: 1 })],
        deliveries: [{ node: 0, name: 'a', version: 1, hash: 'x', via: 'local', at: 0 }, { node: 1, name: 'a', version: 1, hash: 'x', via: 'local', at: 0 }, { node: 0, name: 'a', version: 1, hash: 'y', via: 'gossip', at: 30 }, { node: 1, name: 'a', version: 1, hash: 'y', via: 'gossip', at: 90 }]
      },
      from: 0,
      want: 90
    },
    {
      what: 'without a node that is down',
      r: { nodes: [node(0), node(1, [[-1000, 10]])], deliveries: [{ node: 0, name: 'a', version: 1, hash: 'x', via: 'local', at: 0 }] },
      from: 0,
      want: 10
    }
  ]
  it.each(table)('$what', ({ r, from, want }) => {
    const base: RunRecord = { t0: 0, end: 1000, nodes: two, publishes: [pub({ name: 'a', hash: 'x', at: 0 })], deliveries: [], applies: [], conflicts: [], rejections: [], markers: [], errors: [] }
    expect(convergedAt({ ...base, ...r }, from)).toBe(want)
  })
})

describe('evaluateChecks', () => {
  const nodes = [node(0), node(1), node(2), node(3)]
  const p = pub({ id: 'v1' })
  const timeline = [{ id: 'v1', do: 'publish' }]
  const ctx = { now: 1000, scale: 1, final: false, timeline }
  const check = (c: ScenarioCheck, r: RunRecord, over: Partial<typeof ctx> = {}): [string, string] => {
    const [res] = evaluateChecks(r, [c], { ...ctx, ...over })
    return [res!.status, res!.detail]
  }

  it.each<{ what: string, got: Record<number, number>, now: number, want: string }>([
    { what: 'passes as soon as every node applied in time', got: { 0: 10, 1: 20, 2: 30, 3: 40 }, now: 100, want: 'pass' },
    { what: 'waits while there is time left', got: { 0: 10, 1: 20 }, now: 400, want: 'pending' },
    { what: 'fails at its deadline', got: { 0: 10, 1: 20 }, now: 500, want: 'fail' },
    { what: 'fails when a node applied too late', got: { 0: 10, 1: 20, 2: 30, 3: 900 }, now: 1000, want: 'fail' }
  ])('delivered $what', ({ got, now, want }) => {
    expect(check({ check: 'delivered', percent: 100, within: 500 }, record(nodes, p, got), { now })[0]).toBe(want)
  })

  it('delivered takes a percentage, and --deadline-scale stretches the deadline', () => {
    const r = record(nodes, p, { 0: 10, 1: 20, 2: 30, 3: 900 })
    expect(check({ check: 'delivered', percent: 75, within: 500 }, r)[0]).toBe('pass')
    expect(check({ check: 'delivered', percent: 100, within: 500 }, r, { scale: 2 })[0]).toBe('pass')
  })

  it('pending becomes fail when the run ends', () => {
    const [status, detail] = check({ check: 'delivered', percent: 100, within: 5000 }, record(nodes, p, { 0: 10 }), { final: true })
    expect(status).toBe('fail')
    expect(detail).toMatch(/the run ended first/)
  })

  it('converged names the nodes behind', () => {
    const [status, detail] = check({ check: 'converged', within: 500 }, record(nodes, p, { 0: 10, 1: 20 }), { now: 600 })
    expect(status).toBe('fail')
    expect(detail).toMatch(/behind: node-2 \(a\/b\), node-3 \(a\/b\)/)
  })

  it('no-failures fails on a failed apply and passes only at the end', () => {
    const r = record(nodes, p, { 0: 10 })
    expect(check({ check: 'no-failures' }, r)[0]).toBe('pending')
    expect(check({ check: 'no-failures' }, r, { final: true })[0]).toBe('pass')
    r.applies.push({ node: 2, name: 'a/b', version: 1, hash: 'sha256:b', at: 50, outcome: 'failures', changed: 0, failed: 1, errors: [{ resource: 'f', error: 'disk full' }] })
    expect(check({ check: 'no-failures' }, r)).toEqual(['fail', '1 failed apply(s), first node-2: disk full'])
  })

  it('caught-up judges each (re)start by its own deadline', () => {
    const late = [node(0), node(1, [[-1000, 100], [2000]])]
    const r = record(late, pub({ id: 'v1', at: 0 }), { 0: 10 })
    r.deliveries.push({ node: 1, name: 'a/b', version: 1, hash: 'sha256:b', via: 'disk', at: 2000 })
    expect(check({ check: 'caught-up', within: 1000 }, r, { now: 2100 })).toEqual(['pass', '1 (re)started node caught up, the slowest in 0.00 s'])
    const r2 = record(late, pub({ id: 'v1', at: 0 }), { 0: 10 })
    expect(check({ check: 'caught-up', within: 1000 }, r2, { now: 2100 })[0]).toBe('pending')
    expect(check({ check: 'caught-up', within: 1000 }, r2, { now: 3100 })[0]).toBe('fail')
  })

  it('conflict-recorded needs the loser\'s publisher to record it', () => {
    const a = pub({ id: 'alice', hash: 'sha256:a', from: 0 })
    const b = pub({ id: 'bob', hash: 'sha256:b', from: 1 })
    const r = record(nodes, a, {})
    r.publishes.push(b)
    expect(check({ check: 'conflict-recorded', within: 500 }, r, { now: 600 })[0]).toBe('fail')
    r.conflicts.push({ node: 0, name: 'a/b', version: 1, at: 200, kind: 'version' })
    expect(check({ check: 'conflict-recorded', within: 500 }, r, { now: 600 })[0]).toBe('pass')
  })
})

describe('analyse and renderReport', () => {
  it('produce a result and a self-contained HTML report from a record', () => {
    const nodes = [node(0), node(1), node(2, [[-1000, 500]])]
    const p = pub({ id: 'v1<script>' })
    const r = record(nodes, p, { 0: 10, 1: 20 })
    const result = analyse(r, {
      scenario: { name: 'unit', file: 'unit.yaml', engine: 'live', topology: { kind: 'ring' }, network: { latency: { dist: 'constant', ms: 5 }, loss: 0.1, rto: 200 } },
      seed: 1,
      nodes: 3,
      startedAt: '2026-01-01T00:00:00.000Z',
      setupMs: 100,
      checks: [{ check: 'no-failures', text: 'no failures', status: 'pass', detail: 'none' }],
      engine: { kind: 'live', workers: 2 }
    })
    expect(result.passed).toBe(true)
    expect(result.scenario.network).toBe('one-way latency 5 ms, 10% segment loss (RTO 200 ms)')
    expect(result.nodes.map((n) => n.up)).toEqual([true, true, false])
    const html = renderReport(result)
    expect(html).toMatch(/^<!doctype html>/)
    expect(html).toContain('<svg')
    expect(html).not.toContain('<script')
    expect(html).toContain('v1&lt;script&gt;')
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/)
  })
})
