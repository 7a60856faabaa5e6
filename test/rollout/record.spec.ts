import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  startRecord, nextRecord, enforcedVersion, rolloutRecord, resolveStages, parseStages, inStage,
  RolloutTransitionError, MAX_RANK, MAX_STAGES, MAX_STAGE_NODES, type RolloutRecord, type RolloutState, type RolloutAction, type StartRollout, type TargetedNode
} from '../../src/rollout/index.js'
import { MAX_ENVELOPE_BYTES } from '../../src/envelope/constants.js'

const ID1 = '1'.repeat(64)
const ID2 = '2'.repeat(64)
const T0 = Date.parse('2026-12-05T00:00:00.000Z')
const nodes: TargetedNode[] = Array.from({ length: 20 }, (_, i) => ({ id: `12D3KooWnode${i}`, tags: {} }))

const init = (over: Partial<StartRollout> = {}): StartRollout => ({
  policy: 'web/site',
  target: { version: 2, id: ID2 },
  previous: { version: 1, id: ID1 },
  stages: resolveStages(parseStages('1,25%,100%'), 'web/site', 2, nodes),
  maxFailures: { kind: 'count', count: 0 },
  bakeMs: 60_000,
  stageTimeoutMs: 600_000,
  autoRollback: false,
  at: T0,
  ...over
})

/** A record in each state, reached only through nextRecord. */
function inState (state: RolloutState, over: Partial<StartRollout> = {}): RolloutRecord {
  const r = startRecord(init(over))
  switch (state) {
    case 'running': return r
    case 'paused': return nextRecord(r, { type: 'pause', at: T0 + 1, reason: 'lunch' })
    case 'halted': return nextRecord(r, { type: 'halt', at: T0 + 1, reason: 'too many failures: 1 of 1' })
    case 'aborted': return nextRecord(r, { type: 'abort', at: T0 + 1, reason: 'wrong port', rollback: false })
    case 'done': return [0, 1, 2].reduce((x, i) => nextRecord(x, { type: 'advance', at: T0 + i }), r)
  }
}

const ACTIONS: { [K in RolloutAction['type']]: Extract<RolloutAction, { type: K }> } = {
  advance: { type: 'advance', at: T0 + 5 },
  pause: { type: 'pause', at: T0 + 5, reason: 'looks odd' },
  resume: { type: 'resume', at: T0 + 5 },
  halt: { type: 'halt', at: T0 + 5, reason: 'stage timeout' },
  abort: { type: 'abort', at: T0 + 5, reason: 'operator', rollback: false }
}

// Typed: a new state or action fails to compile until its row or column is written here.
const LEGAL: Record<RolloutState, Record<RolloutAction['type'], RolloutState | 'refused'>> = {
  running: { advance: 'running', pause: 'paused', resume: 'running', halt: 'halted', abort: 'aborted' },
  paused: { advance: 'refused', pause: 'refused', resume: 'running', halt: 'refused', abort: 'aborted' },
  halted: { advance: 'refused', pause: 'refused', resume: 'refused', halt: 'refused', abort: 'aborted' },
  aborted: { advance: 'refused', pause: 'refused', resume: 'refused', halt: 'refused', abort: 'refused' },
  done: { advance: 'refused', pause: 'refused', resume: 'refused', halt: 'refused', abort: 'refused' }
}

describe('nextRecord transitions', () => {
  const cases = Object.entries(LEGAL).flatMap(([from, row]) => Object.entries(row).map(([action, to]) => [from, action, to] as const))
  it.each(cases)('%s + %s → %s', (from, action, to) => {
    const prev = inState(from as RolloutState)
    const act = ACTIONS[action as RolloutAction['type']]
    if (to === 'refused') {
      let err: unknown
      try { nextRecord(prev, act) } catch (e) { err = e }
      expect(err).toBeInstanceOf(RolloutTransitionError)
      expect(err).toMatchObject({ name: 'RolloutTransitionError', from, action })
    } else {
      const next = nextRecord(prev, act)
      expect(next.state).toBe(to)
      expect(rolloutRecord.safeParse(next).success).toBe(true)
    }
  })
})

describe('nextRecord', () => {
  it('starts running at stage 0, named after the policy', () => {
    const r = startRecord(init())
    expect(r).toMatchObject({ kind: 'rollout', name: 'rollout/web/site', policy: 'web/site', stage: 0, state: 'running', rolledBack: false, stageStartedAt: '2026-12-05T00:00:00.000Z' })
  })

  it('advance moves one stage at a time, restarting the stage clock, and finishes after the last', () => {
    const a = nextRecord(startRecord(init()), { type: 'advance', at: T0 + 100 })
    expect(a).toMatchObject({ stage: 1, state: 'running', stageStartedAt: '2026-12-05T00:00:00.100Z' })
    const b = nextRecord(a, { type: 'advance', at: T0 + 200 })
    expect(b).toMatchObject({ stage: 2, state: 'running' })
    expect(nextRecord(b, { type: 'advance', at: T0 + 300 })).toMatchObject({ stage: 2, state: 'done' })
  })

  it('pause keeps the stage; resume restarts its clock and drops the reason', () => {
    const p = nextRecord(startRecord(init()), { type: 'pause', at: T0 + 5, reason: 'lunch' })
    expect(p).toMatchObject({ state: 'paused', stage: 0, reason: 'lunch' })
    const r = nextRecord(p, { type: 'resume', at: T0 + 3_600_000 })
    expect(r).toMatchObject({ state: 'running', stage: 0, stageStartedAt: '2026-12-05T01:00:00.000Z' })
    expect(r.reason).toBeUndefined()
  })

  it('resume on a running record is a takeover: the new evaluator restarts the stage timeout', () => {
    const r = nextRecord(startRecord(init()), { type: 'resume', at: T0 + 7_200_000 })
    expect(r).toMatchObject({ state: 'running', stageStartedAt: '2026-12-05T02:00:00.000Z' })
  })

  it('halt rolls back when the record asks for it and there is a previous version', () => {
    expect(nextRecord(startRecord(init({ autoRollback: true })), ACTIONS.halt)).toMatchObject({ state: 'halted', rolledBack: true, reason: 'stage timeout' })
    expect(nextRecord(startRecord(init({ autoRollback: false })), ACTIONS.halt)).toMatchObject({ state: 'halted', rolledBack: false })
    expect(nextRecord(startRecord(init({ autoRollback: true, previous: undefined })), ACTIONS.halt)).toMatchObject({ state: 'halted', rolledBack: false })
  })

  it('abort with rollback needs a previous version', () => {
    expect(nextRecord(inState('halted'), { ...ACTIONS.abort, rollback: true })).toMatchObject({ state: 'aborted', rolledBack: true })
    expect(() => nextRecord(startRecord(init({ previous: undefined })), { ...ACTIONS.abort, rollback: true })).toThrow(RolloutTransitionError)
  })

  it('abort keeps an automatic rollback that already happened', () => {
    expect(nextRecord(inState('halted', { autoRollback: true }), ACTIONS.abort)).toMatchObject({ state: 'aborted', rolledBack: true })
  })

  it('refuses a reason longer than a record may carry', () => {
    expect(() => nextRecord(startRecord(init()), { type: 'pause', at: T0, reason: 'x'.repeat(501) })).toThrow(/reason/)
  })
})

describe('rolloutRecord schema', () => {
  const good = startRecord(init())
  it.each<[string, Record<string, unknown>, string]>([
    ['a name that is not rollout/<policy>', { name: 'rollout/web/other' }, 'name'],
    ['a rollout of a rollout', { policy: 'rollout/web/site', name: 'rollout/rollout/web/site' }, 'policy'],
    ['a stage index past the end', { stage: 3 }, 'stage'],
    ['a last stage short of everyone', { stages: [{ text: '1', upTo: '0'.repeat(64) }] }, 'stages'],
    ['cutoffs that go down', { stages: [{ text: '50%', upTo: '8'.repeat(64) }, { text: '60%', upTo: '7'.repeat(64) }, { text: '100%', upTo: MAX_RANK }] }, 'stages'],
    ['a stage with neither cutoff nor nodes', { stages: [{ text: 'x' }, { text: '100%', upTo: MAX_RANK }] }, 'stages'],
    ['a target not above the previous version', { target: { version: 1, id: ID2 } }, 'target'],
    ['halted without a reason', { state: 'halted' }, 'reason'],
    ['rolled back while running', { rolledBack: true }, 'rolledBack'],
    ['done before the last stage', { state: 'done', stage: 0 }, 'stage'],
    ['an unknown field', { extra: 1 }, ''],
    ['a zero stage timeout', { stageTimeoutMs: 0 }, 'stageTimeoutMs'],
    ['a bake of a year', { bakeMs: 365 * 24 * 3600 * 1000 }, 'bakeMs'],
    ['an uppercase cutoff', { stages: [{ text: '100%', upTo: 'F'.repeat(64) }] }, 'stages']
  ])('refuses %s', (_, patch, path) => {
    const res = rolloutRecord.safeParse({ ...good, ...patch })
    expect(res.success).toBe(false)
    expect(res.error?.issues.map((i) => String(i.path[0] ?? ''))).toContain(path)
  })

  it('the largest record the schema allows fits in an envelope', () => {
    const stage = (i: number): { text: string, nodes: string[] } => ({ text: `rack=r${i}`, nodes: Array.from({ length: MAX_STAGE_NODES }, (_, j) => `${i}-${j}-`.padEnd(128, 'x')) })
    const big = rolloutRecord.parse({ ...good, stages: [...Array.from({ length: MAX_STAGES - 1 }, (_, i) => stage(i)), { text: '100%', upTo: MAX_RANK }], reason: undefined })
    expect(new TextEncoder().encode(JSON.stringify(big)).length).toBeLessThan(MAX_ENVELOPE_BYTES)
    expect(() => rolloutRecord.parse({ ...good, stages: [stage(0), stage(1), ...big.stages] })).toThrow()
  })

  it('survives a JSON round trip unchanged (it travels in an envelope)', () => {
    expect(rolloutRecord.parse(JSON.parse(JSON.stringify(good)))).toEqual(good)
  })
})

describe('enforcedVersion', () => {
  const v1 = { version: 1, id: ID1 }
  const v2 = { version: 2, id: ID2 }
  const start = startRecord(init())
  const canary = nodes.map((n) => n.id).find((id) => inStage(start.stages, 0, id, 'web/site', 2)) as string
  const outsider = nodes.map((n) => n.id).find((id) => !inStage(start.stages, 1, id, 'web/site', 2)) as string

  it('has a canary and an outsider to compare', () => {
    expect(canary).toBeDefined()
    expect(outsider).toBeDefined()
  })

  it.each<[string, RolloutRecord, typeof v1 | undefined, typeof v1 | undefined]>([
    ['running, stage 0', start, v2, v1],
    ['paused', inState('paused'), v2, v1],
    ['halted without rollback: the canary keeps what it applied', inState('halted'), v2, v1],
    ['halted with auto-rollback', inState('halted', { autoRollback: true }), v1, v1],
    ['aborted without rollback', inState('aborted'), v2, v1],
    ['aborted with rollback', nextRecord(start, { ...ACTIONS.abort, rollback: true }), v1, v1],
    ['done', inState('done'), v2, v2],
    ['a first version: outsiders manage nothing yet', startRecord(init({ previous: undefined })), v2, undefined]
  ])('%s: canary %j, outsider %j', (_, record, forCanary, forOutsider) => {
    expect(enforcedVersion(record, canary)).toEqual(forCanary)
    expect(enforcedVersion(record, outsider)).toEqual(forOutsider)
  })

  it('property: no node beyond a halted stage ever enforces the target', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 }), fc.boolean(), (haltAt, autoRollback) => {
      let r = startRecord(init({ autoRollback }))
      for (let i = 0; i < haltAt; i++) r = nextRecord(r, { type: 'advance', at: T0 + i })
      r = nextRecord(r, ACTIONS.halt)
      for (const n of nodes) {
        const v = enforcedVersion(r, n.id)
        if (!inStage(r.stages, haltAt, n.id, 'web/site', 2) || autoRollback) expect(v).toEqual(v1)
        else expect(v).toEqual(v2)
      }
    }))
  })
})
