// Pure: the run's result (what results.json holds and the report shows) from its record.

import { convergenceResults, isUpAtEnd, publishResult } from './analysis.js'
import { summarize } from './metrics.js'
import { meanLatency } from './random.js'
import { healthResult, rolloutResult } from './rollout-result.js'
import type { Scenario } from './scenario.js'
import type { CheckResult, NodeResult, RunRecord, SimResult } from './result.js'

export interface ResultMeta {
  scenario: Pick<Scenario, 'name' | 'description' | 'file' | 'engine' | 'topology' | 'network'>
  seed: number
  nodes: number
  startedAt: string
  setupMs: number
  checks: CheckResult[]
  engine: SimResult['engine']
  memory?: SimResult['memory']
  /** Ctrl-C or SIGTERM ended the run before its timeline and checks did: it cannot pass. */
  interrupted?: boolean
}

export function describeNetwork (n: Scenario['network']): string {
  const l = n.latency
  const lat = l.dist === 'constant'
    ? `${l.ms} ms`
    : l.dist === 'uniform' ? `uniform ${l.min}–${l.max} ms` : l.dist === 'normal' ? `normal ${l.mean} ± ${l.stddev} ms` : `lognormal, median ${l.median} ms`
  const mean = l.dist === 'constant' ? '' : ` (mean ${Math.round(meanLatency(l))} ms)`
  return `one-way latency ${lat}${mean}, ${Math.round(n.loss * 1000) / 10}% segment loss${n.loss > 0 ? ` (RTO ${n.rto} ms)` : ''}`
}

export function describeTopologyShort (t: Scenario['topology']): string {
  return t.kind === 'random' ? `random, ${t.peers} bootstrap peers` : t.kind === 'ring' ? 'ring' : `${t.clusters} clusters, ${t.bridges} bridge(s)`
}

export function analyse (record: RunRecord, meta: ResultMeta): SimResult {
  // What each node ended up holding, from its deliveries in order: one pass over all of them.
  const held = new Map<number, NodeResult['policies']>()
  for (const d of record.deliveries) {
    let policies = held.get(d.node)
    if (policies === undefined) held.set(d.node, policies = {})
    const via = policies[d.name]?.version === d.version && policies[d.name]?.hash === d.hash ? policies[d.name]?.via : d.via
    policies[d.name] = { version: d.version, hash: d.hash, ...(via !== undefined ? { via } : {}) }
  }
  const nodes: NodeResult[] = record.nodes.map((n) => {
    const policies = held.get(n.index) ?? {}
    return {
      index: n.index,
      name: n.name,
      tags: n.tags,
      ...(n.peerId !== undefined ? { peerId: n.peerId } : {}),
      up: isUpAtEnd(n),
      restarts: Math.max(0, n.up.length - 1),
      traffic: n.traffic,
      policies
    }
  })
  const starts = summarize(record.nodes.flatMap((n) => n.startMs))
  const failures = [
    ...record.applies.filter((a) => a.failed > 0).map((a) => `${record.nodes[a.node]?.name ?? a.node}: ${a.name} v${a.version} failed: ${a.errors?.map((e) => `${e.resource}: ${e.error}`).join('; ') ?? 'failed'}`),
    ...record.rejections.map((r) => `${record.nodes[r.node]?.name ?? r.node}: refused an envelope (${r.reason}, via ${r.via}): ${r.error}`),
    ...record.errors
  ]
  return {
    format: 1,
    scenario: {
      name: meta.scenario.name,
      ...(meta.scenario.description !== undefined ? { description: meta.scenario.description.trim() } : {}),
      file: meta.scenario.file,
      engine: meta.scenario.engine,
      seed: meta.seed,
      nodes: meta.nodes,
      topology: describeTopologyShort(meta.scenario.topology),
      network: describeNetwork(meta.scenario.network)
    },
    engine: meta.engine,
    startedAt: meta.startedAt,
    setupMs: meta.setupMs,
    durationMs: record.end,
    ...(starts !== undefined ? { agentStart: { meanMs: Math.round(starts.mean), p90Ms: starts.p90, maxMs: starts.max } } : {}),
    ...(meta.memory !== undefined ? { memory: meta.memory } : {}),
    publishes: record.publishes.map((p) => {
      const health = healthResult(record, p)
      const rollout = rolloutResult(record, p)
      return { ...publishResult(record, p), ...(health !== undefined ? { health } : {}), ...(rollout !== undefined ? { rollout } : {}) }
    }),
    convergence: convergenceResults(record),
    nodes,
    markers: record.markers,
    checks: meta.checks,
    failures,
    ...((record.warnings ?? []).length > 0 ? { warnings: record.warnings } : {}),
    ...(meta.interrupted === true ? { interrupted: true } : {}),
    passed: meta.interrupted !== true && meta.checks.every((c) => c.status === 'pass')
  }
}
