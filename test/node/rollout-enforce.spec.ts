import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { VerifiedEnvelope } from '../../src/envelope/index.js'
import type { Policy } from '../../src/policy/index.js'
import { MAX_RANK, nextRecord, type RolloutRecord, type StartRollout } from '../../src/rollout/index.js'
import { rolloutRecordOf } from '../helpers/rollout.js'
import { configPolicy, makeKeys } from '../helpers/envelope.js'
import { useTempDir } from '../helpers/tmp.js'
import { applyQueueRig, verified } from './fakes.js'

// A node enforces what the rollout record says (docs/rollout.md, "What a node enforces"): the
// new version once a stage includes it, the version it had before that, drift repair included.

const keys = makeKeys()
const facts = { id: 'node-1', name: 'web1', tags: {} }
const dir = useTempDir('grapevine-rollout-enforce-')

function rig () {
  const r = applyQueueRig(dir(), { keys, facts })
  const motd = async (): Promise<string | undefined> => await readFile(join(r.root, 'motd'), 'utf8').catch(() => undefined)
  return {
    ...r,
    motd,
    /** The versions of site/motd applied, in order. */
    get applied (): string[] { return r.events.filter((e) => e.startsWith('applied site/motd ')).map((e) => e.slice('applied site/motd '.length)) }
  }
}

const motd = (text: string): Policy => configPolicy('site/motd', [{ id: 'motd', type: 'file', path: '/motd', content: text }])
const OTHER = { text: 'canary', nodes: ['node-2'] }
const ME = { text: 'canary', nodes: ['node-1'] }
const ALL = { text: '100%', upTo: MAX_RANK }

/** The record of a rollout of site/motd from `prev` to `target`, at stage 0 unless `over` says. */
function recordOf (target: VerifiedEnvelope, prev: VerifiedEnvelope | undefined, over: Partial<StartRollout> = {}): RolloutRecord {
  return rolloutRecordOf({
    policy: 'site/motd',
    target: { version: target.version, id: target.id },
    ...(prev !== undefined ? { previous: { version: prev.version, id: prev.id } } : { previous: undefined }),
    stages: [OTHER, ALL],
    ...over
  })
}

describe('a node outside the current stage', () => {
  it('holds the new version but keeps enforcing the one it had, drift repair included, and applies the new one when a stage includes it', async () => {
    const r = rig()
    const v1 = await r.take(motd('v1\n'))
    const rec1 = recordOf(await Promise.resolve(verified(motd('v2\n'), { key: keys.root, version: 2, prev: v1.id, staged: true })), v1)
    const record1 = await r.take(rec1)
    const v2 = await r.take(motd('v2\n'), { version: 2, prev: v1, staged: true })
    expect(r.book.get('site/motd')?.version).toBe(2)
    expect(await r.motd()).toBe('v1\n')
    expect(r.queue.outcomeOf(v2)).toBe('held-back')
    expect(r.queue.heldBack(v2)).toMatch(/stage 1\/2 \(running\): this node's stage has not come; enforcing v1/)
    expect(r.queue.applied['site/motd']?.version).toBe(1)
    // Neither the record nor the staged envelope made it apply v1 again: nothing changed for it.
    expect(r.applied).toEqual(['v1'])

    // Drift repair restores v1's content, not v2's.
    await writeFile(join(r.root, 'motd'), 'drifted\n')
    r.queue.scheduleAll()
    await r.queue.idle()
    expect(await r.motd()).toBe('v1\n')
    expect(r.applied.every((v) => v === 'v1')).toBe(true)

    // The next stage (100%) includes it: v2 applies.
    await r.take(nextRecord(rec1, { type: 'advance', at: Date.now() }), { version: 2, prev: record1 })
    expect(await r.motd()).toBe('v2\n')
    expect(r.queue.outcomeOf(v2)).toBe('applied')
    expect(r.queue.heldBack(v2)).toBeUndefined()
  })

  it('in the current stage applies the new version at once', async () => {
    const r = rig()
    const v1 = await r.take(motd('v1\n'))
    const v2bytes = verified(motd('v2\n'), { key: keys.root, version: 2, prev: v1.id, staged: true })
    await r.take(recordOf(v2bytes, v1, { stages: [ME, ALL] }))
    await r.take(motd('v2\n'), { version: 2, prev: v1, staged: true })
    expect(await r.motd()).toBe('v2\n')
  })

  it('a staged version whose record has not arrived yet is not applied: the node keeps the version it had', async () => {
    const r = rig()
    const v1 = await r.take(motd('v1\n'))
    const v2 = await r.take(motd('v2\n'), { version: 2, prev: v1, staged: true })
    expect(await r.motd()).toBe('v1\n')
    expect(r.queue.heldBack(v2)).toMatch(/staged and no rollout record for it has arrived yet: enforcing v1/)
    // The record arrives and includes this node.
    await r.take(recordOf(v2, v1, { stages: [ME, ALL] }))
    expect(await r.motd()).toBe('v2\n')
  })

  it('a first version outside the stage manages nothing yet', async () => {
    const r = rig()
    const v1 = verified(motd('v1\n'), { key: keys.root, version: 1, staged: true })
    await r.take(recordOf(v1, undefined))
    await r.take(motd('v1\n'), { staged: true })
    expect(await r.motd()).toBeUndefined()
    expect(r.applied).toEqual([])
    expect(r.queue.outcomeOf(v1)).toBe('held-back')
  })

  it('returns to the previous version when the halted rollout rolls back', async () => {
    const r = rig()
    const v1 = await r.take(motd('v1\n'))
    const v2 = verified(motd('v2\n'), { key: keys.root, version: 2, prev: v1.id, staged: true })
    const rec1 = recordOf(v2, v1, { stages: [ME, ALL], autoRollback: true })
    const record1 = await r.take(rec1)
    await r.take(motd('v2\n'), { version: 2, prev: v1, staged: true })
    expect(await r.motd()).toBe('v2\n')
    await r.take(nextRecord(rec1, { type: 'halt', at: Date.now(), reason: '1 of 1 canary unhealthy' }), { version: 2, prev: record1 })
    expect(await r.motd()).toBe('v1\n')
    expect(r.queue.heldBack(v2)).toMatch(/halted and rolled back: enforcing v1/)
  })

  it('an unstaged version is applied whatever an older rollout record says', async () => {
    const r = rig()
    const v1 = await r.take(motd('v1\n'))
    const v2 = verified(motd('v2\n'), { key: keys.root, version: 2, prev: v1.id, staged: true })
    await r.take(recordOf(v2, v1))
    await r.take(motd('v2\n'), { version: 2, prev: v1, staged: true })
    expect(await r.motd()).toBe('v1\n')
    // Someone publishes v3 without a rollout: the head wins, as without rollouts.
    await r.take(motd('v3\n'), { version: 3, prev: r.book.get('site/motd') })
    expect(await r.motd()).toBe('v3\n')
  })

  it('that never held the previous version (it joined later) manages nothing for the policy, and says so', async () => {
    const r = rig()
    const v1 = verified(motd('v1\n'), { key: keys.root, version: 1 })
    const v2 = verified(motd('v2\n'), { key: keys.root, version: 2, prev: v1.id, staged: true })
    await r.take(recordOf(v2, v1))
    await r.take(motd('v2\n'), { version: 2, prev: v1, staged: true })
    expect(await r.motd()).toBeUndefined()
    expect(r.log.lines.some((l) => /not in the archive/.test(l.msg ?? ''))).toBe(true)
  })

  it('while its stage bakes, a node re-applies (re-running the checks); outside the stage, or once the stage\'s time is up, it does not', async () => {
    const r = rig()
    const v1 = await r.take(motd('v1\n'))
    const v2 = verified(motd('v2\n'), { key: keys.root, version: 2, prev: v1.id, staged: true })
    const at = r.time.now()
    await r.take(recordOf(v2, v1, { stages: [ME, ALL], bakeMs: 60_000, stageTimeoutMs: 120_000, at }))
    await r.take(motd('v2\n'), { version: 2, prev: v1, staged: true })
    const before = r.applied.length
    r.queue.scheduleBaking()
    await r.queue.idle()
    expect(r.applied.length).toBe(before + 1)
    // Past the stage timeout plus the bake, the stage is decided: no more bake checks.
    await r.time.advance(180_001)
    r.queue.scheduleBaking()
    await r.queue.idle()
    expect(r.applied.length).toBe(before + 1)

    const o = rig()
    const w1 = await o.take(motd('v1\n'))
    const w2 = verified(motd('v2\n'), { key: keys.root, version: 2, prev: w1.id, staged: true })
    await o.take(recordOf(w2, w1, { stages: [OTHER, ALL], bakeMs: 60_000, at: o.time.now() }))
    await o.take(motd('v2\n'), { version: 2, prev: w1, staged: true })
    const outside = o.applied.length
    o.queue.scheduleBaking()
    await o.queue.idle()
    expect(o.applied.length).toBe(outside)
  })
})
