// Pure: decides a scenario's checks from what has been recorded so far. A check is pending
// until it holds or its deadline passes; deadlines wait for events, they never assume speed.

import { convergedAt, isTargeted, isUpAt, newer, onlineTargets } from './analysis.js'
import type { ScenarioCheck } from './scenario.js'
import type { CheckResult, RecordNode, RecordPublish, RunRecord } from './result.js'
import { healthResult, rolloutOf, rolloutResult } from './rollout-result.js'

export interface CheckContext {
  /** Time now, ms since time zero; the record holds everything observed up to it. */
  now: number
  /** Multiplies every `within`: give a slow or loaded machine more room without editing scenarios. */
  scale: number
  /** The run is over: what is still pending has failed. */
  final: boolean
  /** Timeline event ids in order, to resolve `publish:` and `after:` references. */
  timeline: Array<{ id: string, do: string }>
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`

export function checkText (c: ScenarioCheck): string {
  switch (c.check) {
    case 'delivered': return `${c.percent}% of targeted nodes applied ${c.publish ?? 'every publish'} within ${secs(c.within)}`
    case 'converged': return `every running node on the newest version within ${secs(c.within)} after ${c.after ?? 'the last event'}`
    case 'caught-up': return `every restarted or added node caught up within ${secs(c.within)}`
    case 'no-failures': return 'no failed apply, refused envelope or engine error'
    case 'conflict-recorded': return `the losing publisher of a same-version conflict recorded it within ${secs(c.within)}`
    case 'blast-radius': return `at most ${typeof c.max === 'number' ? `${c.max} node${c.max === 1 ? '' : 's'}` : `${c.max} of the targeted nodes`} ever applied ${c.publish}`
    case 'rollout': return `the rollout of ${c.publish} is ${c.state} within ${secs(c.within)}`
  }
}

export function evaluateChecks (record: RunRecord, checks: readonly ScenarioCheck[], ctx: CheckContext): CheckResult[] {
  return checks.map((c) => {
    const r = evaluate(record, c, ctx)
    const status = r.status === 'pending' && ctx.final ? 'fail' : r.status
    return { check: c.check, text: checkText(c), status, detail: r.status === 'pending' && ctx.final ? `${r.detail} (the run ended first)` : r.detail }
  })
}

type Verdict = Pick<CheckResult, 'status' | 'detail'>

function evaluate (record: RunRecord, c: ScenarioCheck, ctx: CheckContext): Verdict {
  switch (c.check) {
    case 'delivered': return delivered(record, c, ctx)
    case 'converged': return converged(record, c, ctx)
    case 'caught-up': return caughtUp(record, c.within * ctx.scale, ctx)
    case 'no-failures': return noFailures(record, ctx.final)
    case 'conflict-recorded': return conflictRecorded(record, c.within * ctx.scale, ctx)
    case 'blast-radius': return blastRadius(record, c, ctx)
    case 'rollout': return rolloutState(record, c, ctx)
  }
}

function worst (verdicts: Verdict[], empty: Verdict): Verdict {
  if (verdicts.length === 0) return empty
  const failed = verdicts.filter((v) => v.status === 'fail')
  if (failed.length > 0) return { status: 'fail', detail: failed.map((v) => v.detail).join('; ') }
  const pending = verdicts.filter((v) => v.status === 'pending')
  if (pending.length > 0) return { status: 'pending', detail: pending.map((v) => v.detail).join('; ') }
  return { status: 'pass', detail: verdicts.map((v) => v.detail).join('; ') }
}

function delivered (record: RunRecord, c: Extract<ScenarioCheck, { check: 'delivered' }>, ctx: CheckContext): Verdict {
  const within = c.within * ctx.scale
  const ids = c.publish !== undefined ? [c.publish] : ctx.timeline.filter((e) => e.do === 'publish').map((e) => e.id)
  return worst(ids.map((id): Verdict => {
    const p = record.publishes.find((x) => x.id === id)
    if (p === undefined) return { status: 'pending', detail: `${id} not published yet` }
    const { latencies, targeted } = onlineTargets(record, p)
    const need = Math.max(1, Math.ceil((c.percent / 100) * targeted - 1e-9))
    const inTime = latencies.filter((l) => l <= within).length
    const label = `${id} (${p.name} v${p.version})`
    if (targeted === 0) return { status: 'pass', detail: `${label}: no targeted node was running` }
    if (inTime >= need) return { status: 'pass', detail: `${label}: ${inTime}/${targeted} applied within ${secs(within)}` }
    if (ctx.now >= p.at + within) {
      return { status: 'fail', detail: `${label}: ${inTime}/${targeted} applied within ${secs(within)}, needed ${need}` }
    }
    return { status: 'pending', detail: `${label}: ${inTime}/${targeted} so far` }
  }), { status: 'pass', detail: 'no publishes' })
}

function converged (record: RunRecord, c: Extract<ScenarioCheck, { check: 'converged' }>, ctx: CheckContext): Verdict {
  const within = c.within * ctx.scale
  const id = c.after ?? ctx.timeline[ctx.timeline.length - 1]?.id
  const marker = id === undefined ? { at: 0, id: 'the start' } : record.markers.find((m) => m.id === id)
  if (marker === undefined) return { status: 'pending', detail: `${id as string} has not happened yet` }
  const t = convergedAt(record, marker.at)
  if (t !== undefined && t - marker.at <= within) return { status: 'pass', detail: `one version everywhere ${secs(t - marker.at)} after ${marker.id}` }
  if (ctx.now >= marker.at + within) {
    return { status: 'fail', detail: `not every running node held the newest version ${secs(within)} after ${marker.id}${lagging(record, ctx.now)}` }
  }
  return { status: 'pending', detail: `waiting for one version after ${marker.id}` }
}

/** Names the nodes that do not hold the newest envelopes now, for a failure message. */
function lagging (record: RunRecord, now: number): string {
  const newest = new Map<string, RecordPublish>()
  for (const p of record.publishes) if (p.at <= now && newer(p, newest.get(p.name))) newest.set(p.name, p)
  const behind: string[] = []
  for (const node of record.nodes) {
    if (!isUpAt(node, now)) continue
    for (const [name, want] of newest) {
      if (!holds(record, node, name, want, now)) { behind.push(`${node.name} (${name})`); break }
    }
  }
  return behind.length === 0 ? '' : `; behind: ${behind.slice(0, 8).join(', ')}${behind.length > 8 ? ` and ${behind.length - 8} more` : ''}`
}

/** The node's last accepted envelope of `name` by `t` is `want` or newer. */
function holds (record: RunRecord, node: RecordNode, name: string, want: { version: number, hash: string }, t: number): boolean {
  let have: { version: number, hash: string } | undefined
  for (const d of record.deliveries) if (d.node === node.index && d.name === name && d.at <= t) have = d
  return have !== undefined && (have.version > want.version || (have.version === want.version && have.hash === want.hash))
}

function caughtUp (record: RunRecord, within: number, ctx: CheckContext): Verdict {
  const verdicts: Verdict[] = []
  let slowest = 0
  let count = 0
  for (const node of record.nodes) {
    for (const [s, e] of node.up) {
      if (s <= 0) continue
      const deadline = s + within
      const due = record.publishes.filter((p) => p.at <= s)
      const newest = new Map<string, RecordPublish>()
      for (const p of due) if (newer(p, newest.get(p.name))) newest.set(p.name, p)
      let latest = s
      let ok = true
      for (const [name, want] of newest) {
        const got = record.deliveries.find((d) => d.node === node.index && d.name === name && d.at >= s && d.at <= deadline &&
          (d.version > want.version || (d.version === want.version && d.hash === want.hash)))
        if (got === undefined) { ok = false; break }
        latest = Math.max(latest, got.at)
      }
      if (ok) { count++; slowest = Math.max(slowest, latest - s); continue }
      if (e !== undefined && e < deadline) continue // stopped again before its deadline: not judged
      if (ctx.now >= deadline) verdicts.push({ status: 'fail', detail: `${node.name} (started at ${secs(s)}) did not catch up within ${secs(within)}` })
      else verdicts.push({ status: 'pending', detail: `${node.name} catching up` })
    }
  }
  const v = worst(verdicts, { status: 'pass', detail: '' })
  if (v.status !== 'pass') return v
  return { status: 'pass', detail: count === 0 ? 'no node joined or restarted' : `${count} (re)started node${count === 1 ? '' : 's'} caught up, the slowest in ${secs(slowest)}` }
}

function noFailures (record: RunRecord, final: boolean): Verdict {
  const failed = record.applies.filter((a) => a.failed > 0)
  const problems = [
    ...(failed.length > 0 ? [`${failed.length} failed apply(s), first ${record.nodes[failed[0]?.node as number]?.name ?? '?'}: ${failed[0]?.errors?.[0]?.error ?? 'failed'}`] : []),
    ...(record.rejections.length > 0 ? [`${record.rejections.length} refused envelope(s), first: ${record.rejections[0]?.reason} (${record.rejections[0]?.error})`] : []),
    ...record.errors.slice(0, 3)
  ]
  if (problems.length > 0) return { status: 'fail', detail: problems.join('; ') }
  return final ? { status: 'pass', detail: 'none' } : { status: 'pending', detail: 'none so far' }
}

function conflictRecorded (record: RunRecord, within: number, ctx: CheckContext): Verdict {
  const losers = record.publishes.filter((p) => p.from >= 0 && record.publishes.some((o) => o.name === p.name && o.version === p.version && o.hash > p.hash))
  if (losers.length === 0) {
    return ctx.final || record.publishes.length > 0 && ctx.timeline.filter((e) => e.do === 'publish').every((e) => record.publishes.some((p) => p.id === e.id))
      ? { status: 'fail', detail: 'no two publishes share a name and version' }
      : { status: 'pending', detail: 'waiting for the publishes' }
  }
  return worst(losers.map((p): Verdict => {
    const node = record.nodes[p.from] as RecordNode
    const c = record.conflicts.find((x) => x.node === p.from && x.kind === 'version' && x.name === p.name && x.version === p.version && x.at <= p.at + within)
    if (c !== undefined) return { status: 'pass', detail: `${node.name} recorded that its ${p.name} v${p.version} lost, ${secs(Math.max(0, c.at - p.at))} after publishing` }
    if (ctx.now >= p.at + within) return { status: 'fail', detail: `${node.name} published the losing ${p.name} v${p.version} but recorded no conflict within ${secs(within)}` }
    return { status: 'pending', detail: `waiting for ${node.name} to see the winner` }
  }), { status: 'pass', detail: '' })
}

/** Decided at the end of the run: a node may apply the version until then. Fails early once it is over. */
function blastRadius (record: RunRecord, c: Extract<ScenarioCheck, { check: 'blast-radius' }>, ctx: CheckContext): Verdict {
  const p = record.publishes.find((x) => x.id === c.publish)
  if (p === undefined) return { status: 'pending', detail: `${c.publish} not published yet` }
  const h = healthResult(record, p)
  const reach = h?.blastRadius ?? new Set(record.applies.filter((a) => a.name === p.name && a.version === p.version && a.hash === p.hash).map((a) => a.node)).size
  const targeted = record.nodes.filter((n) => isTargeted(p, n)).length
  const max = typeof c.max === 'number' ? c.max : Math.floor((Number(c.max.slice(0, -1)) / 100) * targeted + 1e-9)
  const detail = `${c.publish} (${p.name} v${p.version}) reached ${reach} node${reach === 1 ? '' : 's'}, at most ${max} allowed`
  if (reach > max) return { status: 'fail', detail }
  return ctx.final ? { status: 'pass', detail } : { status: 'pending', detail: `${detail} so far` }
}

function rolloutState (record: RunRecord, c: Extract<ScenarioCheck, { check: 'rollout' }>, ctx: CheckContext): Verdict {
  const within = c.within * ctx.scale
  const p = record.publishes.find((x) => x.id === c.publish)
  if (p === undefined || rolloutOf(record, p) === undefined) return { status: 'pending', detail: `${c.publish}'s rollout has not started` }
  const r = rolloutResult(record, p)
  const step = r?.steps.find((s) => s.state === c.state)
  const now = r === undefined ? 'not started' : `${r.state} at stage ${r.stage + 1}/${r.stages.length}${r.reason !== undefined ? ` (${r.reason})` : ''}`
  if (step !== undefined && step.at - p.at <= within) return { status: 'pass', detail: `${c.publish}: ${c.state} ${secs(step.at - p.at)} after the publish${r?.reason !== undefined ? `: ${r.reason}` : ''}` }
  // done and aborted are final; a halted rollout can still be aborted, never done.
  const over = r !== undefined && (r.state === 'done' || r.state === 'aborted' || (r.state === 'halted' && c.state === 'done'))
  if (step !== undefined || over || ctx.now >= p.at + within) return { status: 'fail', detail: `${c.publish}: not ${c.state} within ${secs(within)}; ${now}` }
  return { status: 'pending', detail: `${c.publish}: ${now}` }
}
