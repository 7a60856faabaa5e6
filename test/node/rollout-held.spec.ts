import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { VerifiedEnvelope } from '../../src/envelope/index.js'
import type { Policy } from '../../src/policy/index.js'
import { buildStatus } from '../../src/node/status.js'
import { MAX_RANK } from '../../src/rollout/index.js'
import { rolloutRecordOf } from '../helpers/rollout.js'
import { configPolicy, makeKeys } from '../helpers/envelope.js'
import { useTempDir } from '../helpers/tmp.js'
import { applyQueueRig, verified } from './fakes.js'

// A held rollout record (rollout/<policy>) manages no resource: like the trust policy, nothing to
// apply. Taking one only has its policy looked at again (test/node/rollout-enforce.spec.ts); here
// its target (v2) is not held, so the policy it rolls out applies as today.

const keys = makeKeys()
const facts = { id: 'node-1', name: 'web1', tags: {} }
const dir = useTempDir('grapevine-rollout-held-')

function rig () {
  const r = applyQueueRig(dir(), { keys, facts })
  const hold = (p: Policy, version = 1): VerifiedEnvelope => {
    const env = verified(p, { key: keys.root, version })
    r.book.offer(env)
    return env
  }
  return { ...r, order: r.events, hold }
}

const motd = configPolicy('site/motd', [{ id: 'motd', type: 'file', path: '/motd', content: 'v1\n' }])

const record = (v1: VerifiedEnvelope): Policy => rolloutRecordOf({
  policy: 'site/motd',
  previous: { version: 1, id: v1.id },
  // No node is in the first stage: were the record enforced, site/motd v1 would still apply (it is previous).
  stages: [{ text: '1', upTo: '0'.repeat(64) }, { text: '100%', upTo: MAX_RANK }]
})

describe('a held rollout record', () => {
  it('is never applied, by scheduleAll or by its own name: no apply, no receipt event, no applied record, no history', async () => {
    const { queue, store, order, hold, settled, root } = rig()
    const v1 = hold(motd)
    const rec = hold(record(v1))
    queue.scheduleAll()
    await settled()
    expect(order).toEqual(['applied site/motd v1'])
    // Scheduled by its own name, it has its policy looked at again (v1 is in place: no apply), and is not applied itself.
    queue.schedule(rec.name)
    await settled()
    expect(order).toEqual(['applied site/motd v1'])
    expect(Object.keys(queue.applied)).toEqual(['site/motd'])
    expect(store.history.map((h) => h.name)).not.toContain('rollout/site/motd')
    expect(await readFile(join(root, 'motd'), 'utf8')).toBe('v1\n')
  })

  it('says "rollout", not targeted and never applied, in presence beacons and status (as the trust policy says "trust")', async () => {
    const { queue, book, hold, settled } = rig()
    const v1 = hold(motd)
    const rec = hold(record(v1))
    queue.scheduleAll()
    await settled()
    expect(queue.targets(rec)).toBe(false)
    expect(queue.outcomeOf(rec)).toBe('rollout')
    expect(queue.outcomeOf(v1)).toBe('applied')
    const status = buildStatus({
      node: { id: facts.id, name: facts.name, tags: {}, mesh: 'm', root: '/' } as never,
      peers: [],
      held: book.values(),
      applied: queue.applied,
      targets: (e) => queue.targets(e),
      conflicts: [],
      untrusted: [],
      forks: [],
      roots: [keys.root.id],
      applying: false
    })
    expect(status.policies.find((p) => p.name === 'rollout/site/motd')).toEqual(expect.objectContaining({ kind: 'rollout', targeted: false }))
    expect(status.policies.find((p) => p.name === 'rollout/site/motd')).not.toHaveProperty('lastApply')
  })
})
