// Pure: a publish's reach and health, and its staged rollout's stages over time, from the run
// record (applies and RecordRollout). Engine-neutral: the live engine fills the same record.

import { isTargeted, isUpAtEnd } from './analysis.js'
import type { HealthResult, RecordApply, RecordPublish, RecordRollout, RolloutResult, RolloutStageResult, RunRecord } from './result.js'

function healthy (a: RecordApply): boolean {
  return a.failed === 0 && a.outcome !== 'unhealthy' && a.outcome !== 'failed'
}

/** The applies of exactly this publish (name, version and content), in time order. */
function appliesOf (record: RunRecord, p: Pick<RecordPublish, 'name' | 'version' | 'hash'>): RecordApply[] {
  return record.applies.filter((a) => a.name === p.name && a.version === p.version && a.hash === p.hash).sort((a, b) => a.at - b.at)
}

export function rolloutOf (record: RunRecord, p: Pick<RecordPublish, 'id'>): RecordRollout | undefined {
  return record.rollouts?.find((r) => r.publish === p.id)
}

/**
 * Blast radius (nodes that ever applied this version), nodes whose latest report of it is
 * failed or unhealthy, and when every targeted node running at the end had reported it healthy.
 * Undefined for a publish that is neither staged nor reported unhealthy anywhere: nothing to say.
 */
export function healthResult (record: RunRecord, p: RecordPublish): HealthResult | undefined {
  if (p.kind !== 'policy') return undefined
  const applies = appliesOf(record, p)
  if (rolloutOf(record, p) === undefined && applies.every(healthy)) return undefined
  const latest = new Map<number, RecordApply>()
  // Per node, when its current run of healthy reports began (a failure in between restarts it).
  const healthySince = new Map<number, number>()
  for (const a of applies) {
    latest.set(a.node, a)
    if (!healthy(a)) healthySince.delete(a.node)
    else if (!healthySince.has(a.node)) healthySince.set(a.node, a.at)
  }
  const targeted = record.nodes.filter((n) => isTargeted(p, n))
  let unhealthy = 0
  for (const a of latest.values()) if (!healthy(a)) unhealthy++
  let last = p.at
  let all = targeted.length > 0
  for (const n of targeted) {
    if (!isUpAtEnd(n)) continue
    const since = healthySince.get(n.index)
    if (since === undefined) { all = false; break }
    last = Math.max(last, since)
  }
  return {
    blastRadius: latest.size,
    blastRadiusPercent: targeted.length === 0 ? 0 : (100 * latest.size) / targeted.length,
    unhealthy,
    ...(all ? { allHealthyMs: last - p.at } : {})
  }
}

/** The rollout's stages over time and how it ended, from the records its signers published. */
export function rolloutResult (record: RunRecord, p: RecordPublish): RolloutResult | undefined {
  const r = rolloutOf(record, p)
  if (r === undefined || r.steps.length === 0) return undefined
  const steps = [...r.steps].sort((a, b) => a.at - b.at || a.version - b.version)
  const final = steps[steps.length - 1] as RolloutResult['steps'][number]
  const all = r.stages[r.stages.length - 1]?.members ?? 0
  const stages = r.stages.map((s, index): RolloutStageResult => {
    const start = steps.findIndex((x) => x.stage === index && x.state === 'running')
    const base = { index, text: s.text, members: s.members, percent: all === 0 ? 0 : (100 * s.members) / all }
    if (start < 0) return base
    const end = steps.slice(start + 1).find((x) => x.stage !== index || x.state === 'done' || x.state === 'halted' || x.state === 'aborted')
    const passed = steps.some((x) => x.stage > index) || (final.state === 'done' && final.stage === index)
    const outcome: RolloutStageResult['outcome'] = passed
      ? 'passed'
      : final.state === 'halted' || final.state === 'aborted' ? final.state : final.state === 'paused' ? 'paused' : 'running'
    return { ...base, startedAt: (steps[start] as typeof final).at, ...(end !== undefined ? { endedAt: end.at } : {}), outcome }
  })
  const done = steps.find((x) => x.state === 'done')
  return {
    spec: r.spec,
    state: final.state,
    ...(final.reason !== undefined ? { reason: final.reason } : {}),
    rolledBack: final.rolledBack,
    stage: final.stage,
    ...(done !== undefined ? { doneMs: done.at - p.at } : {}),
    bakeMs: r.bakeMs,
    maxFailures: r.maxFailures,
    stageTimeoutMs: r.stageTimeoutMs,
    autoRollback: r.autoRollback,
    stages,
    steps
  }
}
