// Pure: turns a RunRecord (what happened, when) into the figures a run reports. Both engines
// produce a RunRecord, so both get the same figures, checks and report.

import { matchesTarget } from '../policy/index.js'
import { selectEnvelope, type VersionedRef } from '../envelope/selector.js'
import { coverageCurve, percentile, quantiles } from './metrics.js'
import type { ConvergenceResult, NodeOutcome, PublishResult, RecordNode, RecordPublish, RunRecord, Traffic, Via } from './result.js'
import { MAX_CURVE_POINTS } from './constants.js'

export function isUpAt (node: RecordNode, t: number): boolean {
  return node.up.some(([s, e]) => s <= t && (e === undefined || t < e))
}

export function isUpAtEnd (node: RecordNode): boolean {
  const last = node.up[node.up.length - 1]
  return last !== undefined && last[1] === undefined
}

/** Up for the whole of [from, to]: no stop in between. */
function upThroughout (node: RecordNode, from: number, to: number): boolean {
  return node.up.some(([s, e]) => s <= from && (e === undefined || e > to))
}

function startBefore (node: RecordNode, t: number): number {
  let start = 0
  for (const [s] of node.up) if (s <= t) start = s
  return start
}

export function isTargeted (p: Pick<RecordPublish, 'kind' | 'target'>, node: Pick<RecordNode, 'name' | 'tags' | 'peerId'>): boolean {
  if (p.kind !== 'policy') return true
  return matchesTarget({ target: p.target }, { id: node.peerId ?? node.name, name: node.name, tags: node.tags })
}

/**
 * `a` wins over `b` by the version rule (selectEnvelope). A record names contents, not envelopes,
 * and one content is one state here, so each stands for its content: the same version and hash
 * is a duplicate, not newer.
 */
export function newer (a: { version: number, hash: string }, b: { version: number, hash: string } | undefined): boolean {
  const ref = (x: { version: number, hash: string }): VersionedRef => ({ version: x.version, hash: x.hash, id: x.hash })
  return selectEnvelope(b === undefined ? undefined : ref(b), ref(a)).accept
}

/**
 * How each node that is up at the end fared with one publish. A node counts as having it
 * from its first apply (config policies) or acceptance (trust, retired) of this version or a
 * later one of the same name.
 */
export function nodeOutcomes (record: RunRecord, p: RecordPublish): NodeOutcome[] {
  const out: NodeOutcome[] = []
  const firstVia = new Map<number, Via>()
  for (const d of record.deliveries) {
    if (d.name === p.name && d.version === p.version && d.hash === p.hash && !firstVia.has(d.node)) firstVia.set(d.node, d.via)
  }
  // Earliest apply (or, for trust and retirement, delivery) of this version or a later one, per
  // node: one pass, not one per node (a 100,000-node model run has millions of events).
  const earliest = new Map<number, number>()
  for (const e of p.kind === 'policy' ? record.applies : record.deliveries) {
    if (e.name !== p.name || e.version < p.version) continue
    const prev = earliest.get(e.node)
    if (prev === undefined || e.at < prev) earliest.set(e.node, e.at)
  }
  for (const node of record.nodes) {
    if (!isUpAtEnd(node) || !isTargeted(p, node)) continue
    const covered = earliest.get(node.index)
    const via = firstVia.get(node.index)
    const base = { node: node.index, name: node.name, ...(via !== undefined ? { via } : {}) }
    if (covered === undefined) {
      out.push({ ...base, class: 'missing' })
      continue
    }
    if (upThroughout(node, p.at, covered)) out.push({ ...base, class: 'online', latency: Math.max(0, covered - p.at), at: covered })
    else out.push({ ...base, class: 'catch-up', latency: Math.max(0, covered - startBefore(node, covered)), at: covered })
  }
  return out
}

/** Online targeted nodes: up from the publish to the end, applied or not. The quantiles' denominator. */
export function onlineTargets (record: RunRecord, p: RecordPublish, outcomes = nodeOutcomes(record, p)): { latencies: number[], targeted: number } {
  const latencies: number[] = []
  let targeted = 0
  for (const o of outcomes) {
    const node = record.nodes[o.node] as RecordNode
    if (o.class === 'online') { targeted++; latencies.push(o.latency as number) } else if (o.class === 'missing' && upThroughout(node, p.at, record.end)) targeted++
  }
  return { latencies, targeted }
}

function sumTraffic (byNode: Record<number, Traffic>): { bytes: number, duplicates: number } {
  let bytes = 0
  let duplicates = 0
  for (const t of Object.values(byNode)) {
    bytes += t.gossipBytesSent + t.syncBytesSent + (t.fetchBytesSent ?? 0)
    duplicates += t.policyDuplicates
  }
  return { bytes, duplicates }
}

export function publishResult (record: RunRecord, p: RecordPublish): PublishResult {
  const outcomes = nodeOutcomes(record, p)
  const { latencies, targeted } = onlineTargets(record, p, outcomes)
  const via: Partial<Record<Via, number>> = {}
  const seen = new Set<number>()
  for (const d of record.deliveries) {
    if (d.name !== p.name || d.version !== p.version || d.hash !== p.hash || seen.has(d.node)) continue
    seen.add(d.node)
    via[d.via] = (via[d.via] ?? 0) + 1
  }
  // Holding it: the first delivery of this version or a later one, on the same online nodes.
  const online = new Set(outcomes.filter((o) => o.class === 'online').map((o) => o.node))
  const heldAt = new Map<number, number>()
  for (const d of record.deliveries) {
    if (d.name === p.name && d.version >= p.version && online.has(d.node) && d.at >= p.at - 1 && !heldAt.has(d.node)) heldAt.set(d.node, Math.max(0, d.at - p.at))
  }
  const durations = record.applies.filter((a) => a.name === p.name && a.version === p.version && a.hash === p.hash && a.durationMs !== undefined).map((a) => a.durationMs as number)
  const rival = record.publishes.find((o) => o !== p && o.name === p.name && o.version === p.version && o.hash !== p.hash)
  const name = (i: number): string => record.nodes[i]?.name ?? `node-${i}`
  const failures = record.applies
    .filter((a) => a.name === p.name && a.version === p.version && a.failed > 0)
    .map((a) => ({ node: name(a.node), errors: a.errors ?? [] }))
  const forkedBy = [...new Set((record.forks ?? []).filter((f) => f.name === p.name && f.version === p.version).map((f) => name(f.node)))]
  const result: PublishResult = {
    id: p.id,
    name: p.name,
    version: p.version,
    hash: p.hash,
    from: p.from < 0 ? 'admin peer' : name(p.from),
    signer: p.signer,
    at: p.at,
    targeted,
    applied: latencies.length,
    times: quantiles(latencies, targeted),
    ...(p.kind === 'policy' ? { held: quantiles([...heldAt.values()], targeted) } : {}),
    ...(durations.length > 0 ? { applyMs: { p50: percentile(durations, 50) as number, max: Math.max(...durations) } } : {}),
    curve: coverageCurve(latencies, targeted, MAX_CURVE_POINTS),
    coverage: coverageCurve(outcomes.flatMap((o) => o.at !== undefined ? [o.at - p.at] : []), outcomes.length, MAX_CURVE_POINTS).map(([t, f]) => [t + p.at, f]),
    latencies: latencies.slice().sort((a, b) => a - b),
    catchUp: outcomes.filter((o) => o.class === 'catch-up').map((o) => ({ node: o.name, ms: o.latency as number })),
    missing: outcomes.filter((o) => o.class === 'missing').map((o) => o.name),
    via,
    failures,
    ...(rival !== undefined ? { conflict: { with: rival.id, won: newer(p, rival) } } : {}),
    ...(forkedBy.length > 0 ? { forkedBy } : {})
  }
  if (p.traffic !== undefined) {
    const { bytes, duplicates } = sumTraffic(p.traffic.byNode)
    const pub = p.from >= 0 ? p.traffic.byNode[p.from] : undefined
    const nodes = Math.max(1, Object.keys(p.traffic.byNode).length)
    result.traffic = {
      windowMs: p.traffic.window[1] - p.traffic.window[0],
      ...(pub !== undefined ? { publisherBytes: pub.gossipBytesSent + pub.syncBytesSent + (pub.fetchBytesSent ?? 0) } : {}),
      totalBytes: bytes,
      duplicates,
      duplicatesPerNode: duplicates / nodes
    }
    const received = Object.entries(p.traffic.byNode).filter(([k]) => Number(k) !== p.from)
      .map(([, t]) => t.gossipBytesReceived + t.syncBytesReceived + (t.fetchBytesReceived ?? 0))
    if (received.length > 0) {
      const mean = received.reduce((a, b) => a + b, 0) / received.length
      const max = Math.max(...received)
      result.traffic.receivedPerNode = { mean, max, ...(p.bytes !== undefined && p.bytes > 0 ? { meanX: mean / p.bytes, maxX: max / p.bytes } : {}) }
    }
    const fetched = Object.values(p.traffic.byNode).reduce((s, t) => s + (t.fetchBytesReceived ?? 0), 0)
    if (fetched > 0) result.traffic.fetchBytes = fetched
  }
  return result
}

/**
 * The first time at or after `from` when every running node holds the newest envelope
 * published so far of every policy name: the mesh speaks with one voice. Undefined if that
 * never happened before the end of the record.
 */
export function convergedAt (record: RunRecord, from: number): number | undefined {
  type Change = { at: number, order: number, apply: () => void }
  const held = new Map<number, Map<string, { version: number, hash: string }>>()
  const newest = new Map<string, { version: number, hash: string }>()
  const up = new Set<number>()
  const changes: Change[] = []
  for (const node of record.nodes) {
    held.set(node.index, new Map())
    for (const [s, e] of node.up) {
      changes.push({ at: s, order: 0, apply: () => { up.add(node.index) } })
      if (e !== undefined) changes.push({ at: e, order: 0, apply: () => { up.delete(node.index) } })
    }
  }
  for (const d of record.deliveries) {
    changes.push({ at: d.at, order: 1, apply: () => { held.get(d.node)?.set(d.name, { version: d.version, hash: d.hash }) } })
  }
  for (const p of record.publishes) {
    changes.push({ at: p.at, order: 2, apply: () => { if (newer(p, newest.get(p.name))) newest.set(p.name, { version: p.version, hash: p.hash }) } })
  }
  changes.sort((a, b) => a.at - b.at || a.order - b.order)
  const agreed = (): boolean => {
    if (newest.size === 0 || up.size === 0) return false
    for (const n of up) {
      const h = held.get(n) as Map<string, { version: number, hash: string }>
      for (const [name, want] of newest) {
        const have = h.get(name)
        if (have === undefined || have.version !== want.version || have.hash !== want.hash) return false
      }
    }
    return true
  }
  let i = 0
  // Everything up to and including `from` first: an event at `from` (a publish) counts.
  while (i < changes.length && (changes[i] as Change).at <= from) (changes[i++] as Change).apply()
  if (agreed()) return from
  while (i < changes.length) {
    const at = (changes[i] as Change).at
    while (i < changes.length && (changes[i] as Change).at === at) (changes[i++] as Change).apply()
    if (agreed()) return at
  }
  return undefined
}

/** Time from each heal, restart and join until the mesh held one version of everything again. */
export function convergenceResults (record: RunRecord): ConvergenceResult[] {
  return record.markers.filter((m) => m.do === 'heal' || m.do === 'restart' || m.do === 'add' || m.do === 'publish').map((m) => {
    const t = convergedAt(record, m.at)
    return { after: m.id, at: m.at, ...(t !== undefined ? { ms: t - m.at } : {}) }
  })
}
