// Staged rollouts in the model engine (issue 16): the shipped scenarios, small, on simulated
// time. What a node applies comes from enforcedVersion over its own peer id, what the evaluator
// decides from evaluateGate: these tests check the behaviour that results, not the timings.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadScenario, type Scenario } from '../../src/sim/scenario.js'
import { modelResult, simulate, type ModelRun } from '../../src/sim/model/index.js'
import { rank } from '../../src/rollout/index.js'
import type { PublishResult, RecordApply, SimResult } from '../../src/sim/result.js'
import { renderReport } from '../../src/sim/report.js'
import { REPO_ROOT } from '../helpers/cli.js'

const load = async (name: string): Promise<Scenario> => await loadScenario(join(REPO_ROOT, 'simulations', `${name}.yaml`))

function run (s: Scenario, seed = 1, until?: number): { run: ModelRun, result: SimResult } {
  const r = simulate(s, { seed, ...(until !== undefined ? { until } : {}) })
  return { run: r, result: modelResult(s, r, { seed }) }
}

function publish (result: SimResult, id: string): PublishResult {
  const p = result.publishes.find((x) => x.id === id)
  if (p === undefined) throw new Error(`no publish ${id}`)
  return p
}

function failing (result: SimResult): string[] {
  return result.checks.filter((c) => c.status !== 'pass').map((c) => `${c.check}: ${c.detail}`)
}

/** Nodes that applied this exact version, with their first apply. */
function appliedBy (run: ModelRun, p: PublishResult): Map<number, RecordApply> {
  const by = new Map<number, RecordApply>()
  for (const a of run.record.applies) if (a.name === p.name && a.version === p.version && a.hash === p.hash && !by.has(a.node)) by.set(a.node, a)
  return by
}

/** Without its rollout: the same change published plainly. */
function plain (s: Scenario, id: string): Scenario {
  return { ...s, expect: [], timeline: s.timeline.map((e) => e.do === 'publish' && e.id === id ? { ...e, rollout: undefined } : e) }
}

describe('model engine: a bad change, staged', () => {
  it('halts at the canary: a blast radius of 1 with "1,…" and max-failures 0, against every node for a plain publish', async () => {
    const s = await load('bad-change')
    const { run: r, result } = run(s)
    expect(failing(result)).toEqual([])
    const bad = publish(result, 'bad')
    expect(bad.rollout).toMatchObject({ state: 'halted', stage: 0, rolledBack: true })
    expect(bad.rollout?.reason).toMatch(/^stage 1\/4 \(1\): 1 failure\(s\), 0 allowed: model-1-\d+ unhealthy$/)
    expect(bad.health).toMatchObject({ blastRadius: 1, unhealthy: 1 })
    expect(bad.rollout?.stages.map((x) => x.outcome)).toEqual(['halted', undefined, undefined, undefined])
    // The one node that applied it is the lowest-ranked: the canary every node computes alike.
    const [canary] = [...appliedBy(r, bad).keys()]
    const ranks = result.nodes.map((n) => rank(`model-1-${n.index}`, bad.name, bad.version))
    expect(ranks[canary as number]).toBe([...ranks].sort()[0])
    // Auto-rollback: the canary applied release 1 again after the halt.
    const haltAt = bad.rollout?.steps.find((x) => x.state === 'halted')?.at as number
    expect(r.record.applies.some((a) => a.node === canary && a.name === bad.name && a.version === 1 && a.at > haltAt)).toBe(true)

    const { result: loose } = run(plain(s, 'bad'))
    const plainBad = publish(loose, 'bad')
    expect(plainBad.rollout).toBeUndefined()
    expect(plainBad.health).toMatchObject({ blastRadius: 24, unhealthy: 24, blastRadiusPercent: 100 })
  })

  it('the blast-radius check fails when more nodes applied it than allowed', async () => {
    const s = await load('bad-change')
    const { result } = run({ ...plain(s, 'bad'), expect: [{ check: 'blast-radius', publish: 'bad', max: '5%' }] })
    expect(failing(result)).toEqual(['blast-radius: bad (base/motd v2) reached 24 nodes, at most 1 allowed'])
  })
})

describe('model engine: a change that breaks 30% of the nodes, staged', () => {
  it('halts at the first stage that includes a broken node; earlier stages had none', async () => {
    const s = await load('bad-change-30')
    const { run: r, result } = run(s)
    expect(failing(result)).toEqual([])
    const bad = publish(result, 'bad')
    const halted = bad.rollout?.stage as number
    expect(bad.rollout?.state).toBe('halted')
    const sick = new Set(r.record.applies.filter((a) => a.version === 2 && a.outcome === 'unhealthy').map((a) => a.node))
    expect(sick.size).toBeGreaterThan(0)
    // Only the halted stage's nodes ran it (members that had not applied by the halt never do: it rolled back).
    expect(bad.health?.blastRadius).toBeLessThanOrEqual(bad.rollout?.stages[halted]?.members as number)
    expect(bad.health?.blastRadius).toBeGreaterThan(bad.rollout?.stages[halted - 1]?.members ?? 0)
    // Each earlier stage passed: its nodes applied before the stage after it started, none unhealthy.
    const before = bad.rollout?.stages[halted]?.startedAt as number
    const early = [...appliedBy(r, bad)].filter(([, a]) => a.at < before)
    expect(early.length).toBe(bad.rollout?.stages[halted - 1]?.members ?? 0)
    for (const [node] of early) expect(sick.has(node)).toBe(false)
  })
})

describe('rollout checks and the report', () => {
  it('a rollout check for done fails at once when the rollout halted, saying where and why', async () => {
    const s = await load('bad-change')
    const { result } = run({ ...s, expect: [{ check: 'rollout', publish: 'bad', state: 'done', within: 60_000 }] })
    expect(failing(result)).toEqual([expect.stringMatching(/^rollout: bad: not done within 60\.0 s; halted at stage 1\/4 \(stage 1\/4 \(1\): 1 failure\(s\), 0 allowed: model-1-\d+ unhealthy\)$/)])
  })

  it('the HTML report draws each stage of a staged publish over time', async () => {
    const s = await load('publisher-dies')
    const { result } = run(s)
    const html = renderReport(result)
    const section = html.slice(html.indexOf('<h2>Staged rollouts</h2>'), html.indexOf('<h2>Latency distribution</h2>'))
    expect(section).toContain('staged: base/motd v2, --rollout 1,5%,25%,100%')
    // One bar per stage reached (all four), the resume marked, the kill marked.
    expect(section.match(/<title>stage \d \(/g)).toHaveLength(4)
    expect(section).toContain('resume by ops-b')
    expect(section).toContain('publisher-dies')
    expect(renderReport(run(plain(s, 'staged')).result)).not.toContain('<h2>Staged rollouts</h2>')
    // A halted rollout's untouched nodes are not reported missing: they stay on release 1 by design.
    const halted = renderReport(run(await load('bad-change')).result)
    expect(halted).toContain('23 beyond the stage it was halted at')
    expect(halted).not.toContain('missing on')
  })
})

describe('model engine: a good change, staged', () => {
  it('completes: every node applies it, none before its stage started, every stage passed in order', async () => {
    const s = await load('good-change-staged')
    const { run: r, result } = run(s)
    expect(failing(result)).toEqual([])
    const good = publish(result, 'good')
    const rollout = good.rollout
    expect(rollout).toMatchObject({ state: 'done', stage: 3, rolledBack: false })
    expect(rollout?.stages.map((x) => [x.text, x.members, x.outcome])).toEqual([['1', 1, 'passed'], ['5%', 2, 'passed'], ['25%', 6, 'passed'], ['100%', 24, 'passed']])
    expect(rollout?.steps.map((x) => x.action)).toEqual(['start', 'advance', 'advance', 'advance', 'advance'])
    expect(good.health).toMatchObject({ blastRadius: 24, unhealthy: 0 })
    expect(good.health?.allHealthyMs).toBeGreaterThan(0)
    // Each stage bakes 2 s after its last node reported healthy: done takes at least the sum of the bakes.
    expect(rollout?.doneMs).toBeGreaterThanOrEqual(4 * 2000)
    // A node applies only once the stage that includes it has started (its rank, the record's cutoffs).
    const applied = appliedBy(r, good)
    expect(applied.size).toBe(24)
    const ranks = [...Array(24).keys()].map((i) => ({ i, r: rank(`model-1-${i}`, good.name, good.version) })).sort((a, b) => a.r < b.r ? -1 : 1)
    const stageOf = (i: number): number => {
      const pos = ranks.findIndex((x) => x.i === i)
      return (rollout?.stages ?? []).findIndex((x) => pos < x.members)
    }
    for (const [node, a] of applied) expect(a.at).toBeGreaterThanOrEqual(rollout?.stages[stageOf(node)]?.startedAt as number)
  })
})

describe('model engine: the publisher dies mid-rollout', () => {
  it('stays at its stage until another admin resumes it from another node, then completes', async () => {
    const s = await load('publisher-dies')
    const { result } = run(s)
    expect(failing(result)).toEqual([])
    const r = publish(result, 'staged').rollout
    const killAt = result.markers.find((m) => m.id === 'publisher-dies')?.at as number
    const resumeAt = result.markers.find((m) => m.id === 'takeover')?.at as number
    // Nothing signed between the kill and the takeover; the takeover resumed stage 2 where it stood.
    expect(r?.steps.filter((x) => x.at > killAt && x.at < resumeAt)).toEqual([])
    const resume = r?.steps.find((x) => x.action === 'resume')
    expect(resume).toMatchObject({ by: 23, signer: 'ops-b', stage: 1, state: 'running' })
    expect(r?.steps.filter((x) => x.at > resumeAt).every((x) => x.by === 23)).toBe(true)
    expect(r?.state).toBe('done')
  })

  it('without the resume, it stands still at stage 2 to the end: no node beyond it applies the version', async () => {
    const s = await load('publisher-dies')
    const still: Scenario = { ...s, expect: [], timeline: s.timeline.filter((e) => e.do !== 'resume') }
    const { run: r, result } = run(still, 1, 90_000)
    const p = publish(result, 'staged')
    expect(p.rollout).toMatchObject({ state: 'running', stage: 1 })
    expect(p.rollout?.stages.map((x) => x.outcome)).toEqual(['passed', 'running', undefined, undefined])
    // Stage 2 (5% of 24 nodes) holds 2 nodes: only they ever applied it.
    expect(appliedBy(r, p).size).toBe(p.rollout?.stages[1]?.members)
    expect(r.record.end).toBe(90_000)
  })
})

describe('model engine: a partition during a rollout', () => {
  it('nodes cut off follow the current stage after the heal, and the rollout completes', async () => {
    const s = await load('rollout-partition')
    const { run: r, result } = run(s)
    expect(failing(result)).toEqual([])
    const p = publish(result, 'staged')
    const heal = result.markers.find((m) => m.id === 'heal')?.at as number
    const split = result.markers.find((m) => m.id === 'split')?.at as number
    // The 25% stage includes nodes on the far side: its gate waited for them past the heal.
    expect(p.rollout?.stages[1]?.endedAt).toBeGreaterThan(heal)
    const far = [...appliedBy(r, p)].filter(([node]) => node >= 12)
    expect(far.length).toBe(12)
    // Every node on the far side applied after the heal: while cut off it kept release 1.
    for (const [, a] of far) expect(a.at < split || a.at > heal).toBe(true)
    expect(far.some(([, a]) => a.at > heal)).toBe(true)
    expect(p.rollout?.state).toBe('done')
  })
})

describe('model engine: pause and abort from another admin', () => {
  it('a pause stops the evaluator; an abort with rollback returns the stage to the previous version', async () => {
    const s = await load('good-change-staged')
    const halted: Scenario = {
      ...s,
      expect: [{ check: 'rollout', publish: 'good', state: 'aborted', within: 20_000 }],
      timeline: [
        ...s.timeline,
        { at: 8000, do: 'pause', publish: 'good', from: { kind: 'node', index: 5 }, admin: 'root', id: 'pause' },
        { at: 12_000, do: 'abort', publish: 'good', from: { kind: 'node', index: 7 }, admin: 'root', rollback: true, id: 'abort' }
      ]
    }
    const { run: r, result } = run(halted)
    expect(failing(result)).toEqual([])
    const p = publish(result, 'good')
    expect(p.rollout?.steps.map((x) => [x.action, x.by])).toEqual([['start', 0], ['advance', 0], ['pause', 5], ['abort', 7]])
    expect(p.rollout).toMatchObject({ state: 'aborted', rolledBack: true, stage: 1 })
    // The nodes that had applied release 2 applied release 1 again after the abort.
    const abortAt = p.rollout?.steps[3]?.at as number
    for (const node of appliedBy(r, p).keys()) {
      expect(r.record.applies.some((a) => a.node === node && a.version === 1 && a.at > abortAt)).toBe(true)
    }
  })
})
