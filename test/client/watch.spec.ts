import { describe, expect, it } from 'vitest'
import { fleetSummary, isComplete, progressOf, NODE_STALE_AFTER_MS } from '../../src/client/index.js'
import { validatePolicyObject } from '../../src/policy/index.js'
import type { FleetNode } from '../../src/receipt/index.js'

const policy = validatePolicyObject({ name: 'web/site', resources: [{ id: 'f', type: 'file', path: '/f', content: 'x\n' }] })
const hash = `sha256:${'a'.repeat(64)}`
const node = (id: string, outcome: string, version = 2, h = hash): FleetNode => ({
  id, name: id, tags: {}, lastSeen: '2026-01-01T00:00:00.000Z', admitted: true, policies: { 'web/site': { version, hash: h, outcome, at: '2026-01-01T00:00:00.000Z' } }
})

describe('progressOf: only the words that say it was applied count as applied', () => {
  it.each<[string, 'applied' | 'unchanged' | 'failed' | 'pending']>([
    ['applied', 'applied'],
    ['changes', 'applied'],
    ['unchanged', 'unchanged'],
    ['no-changes', 'unchanged'],
    ['failed', 'failed'],
    ['changes-and-failures', 'failed'],
    ['untrusted', 'failed'],
    ['fork', 'pending'],
    ['made up by the node', 'pending']
  ])('%s counts as %s', (outcome, bucket) => {
    const p = progressOf([node('n1', outcome)], policy, 2, hash)
    expect(p[bucket].map((n) => n.id)).toEqual(['n1'])
  })

  it('a tombstone held is a retire applied', () => {
    const retired = validatePolicyObject({ kind: 'retired', name: 'web/site' })
    expect(progressOf([node('n1', 'retired')], retired, 2, hash).applied.map((n) => n.id)).toEqual(['n1'])
  })
})

describe('isComplete', () => {
  it('does not end the wait for the others because one node runs a newer version', () => {
    const p = progressOf([node('n1', 'applied', 3, `sha256:${'b'.repeat(64)}`), node('n2', 'pending')], policy, 2, hash)
    expect(p.superseded).toHaveLength(1)
    expect(isComplete(p)).toBe(false)
    expect(isComplete(progressOf([node('n1', 'applied', 3, `sha256:${'b'.repeat(64)}`), node('n2', 'applied')], policy, 2, hash))).toBe(true)
  })
})

describe('progressOf with liveness: a node stopped minutes ago is stale, not waited for', () => {
  const now = Date.parse('2026-01-01T01:00:00.000Z')
  const heard = (id: string, outcome: string | undefined, minutesAgo: number): FleetNode => ({
    id,
    name: id,
    tags: {},
    lastSeen: new Date(now - minutesAgo * 60_000).toISOString(),
    admitted: true,
    policies: outcome === undefined ? {} : { 'web/site': { version: 2, hash, outcome, at: new Date(now - minutesAgo * 60_000).toISOString() } }
  })
  const live = { now }

  it.each<[string, FleetNode, 'pending' | 'stale' | 'applied' | 'failed']>([
    ['heard from a minute ago, yet to report', heard('n', undefined, 1), 'pending'],
    [`heard from ${NODE_STALE_AFTER_MS / 60_000 - 1} min ago, yet to report`, heard('n', undefined, NODE_STALE_AFTER_MS / 60_000 - 1), 'pending'],
    [`silent for ${NODE_STALE_AFTER_MS / 60_000 + 1} min, yet to report`, heard('n', undefined, NODE_STALE_AFTER_MS / 60_000 + 1), 'stale'],
    ['silent for an hour, saying pending', heard('n', 'pending', 60), 'stale'],
    ['silent for an hour, saying fork', heard('n', 'fork', 60), 'stale'],
    ['silent since it applied this version', heard('n', 'applied', 60), 'applied'],
    ['silent since it failed this version', heard('n', 'failed', 60), 'failed']
  ])('%s → %s', (_, n, bucket) => {
    expect(progressOf([n], policy, 2, hash, live)[bucket].map((x) => x.id)).toEqual(['n'])
  })

  it('judges no node stale without a clock to judge by', () => {
    expect(progressOf([heard('n', undefined, 60)], policy, 2, hash).pending.map((x) => x.id)).toEqual(['n'])
  })

  it('takes a shorter staleness when asked', () => {
    expect(progressOf([heard('n', undefined, 2)], policy, 2, hash, { now, staleAfterMs: 60_000 }).stale.map((x) => x.id)).toEqual(['n'])
  })

  it('ends the wait once every live node reported, the stopped ones listed apart', () => {
    const p = progressOf([heard('a', 'applied', 0), heard('b', 'unchanged', 0), heard('gone', undefined, 30)], policy, 2, hash, live)
    expect(p.stale.map((x) => x.id)).toEqual(['gone'])
    expect(isComplete(p)).toBe(true)
  })

  it('keeps waiting while every node yet to report is stale and none has reported: nothing is known', () => {
    expect(isComplete(progressOf([heard('gone', undefined, 30)], policy, 2, hash, live))).toBe(false)
  })
})

describe('fleetSummary: stale nodes by the same liveness rule', () => {
  const now = Date.parse('2026-01-01T01:00:00.000Z')
  const at = (minutesAgo: number): FleetNode => ({ id: `n${minutesAgo}`, name: `n${minutesAgo}`, tags: {}, lastSeen: new Date(now - minutesAgo * 60_000).toISOString(), admitted: true, policies: {} })
  it(`lists the nodes silent for over ${NODE_STALE_AFTER_MS / 60_000} min`, () => {
    expect(fleetSummary([at(1), at(NODE_STALE_AFTER_MS / 60_000 - 1), at(NODE_STALE_AFTER_MS / 60_000 + 1)], now).stale).toEqual([`n${NODE_STALE_AFTER_MS / 60_000 + 1}`])
  })
})

describe('progressOf: target.facts judged against the facts nodes\' beacons carry', () => {
  const byFacts = validatePolicyObject({ name: 'web/site', target: { facts: { 'os.family': 'debian', 'processors.count': 4 } }, resources: [{ id: 'f', type: 'file', path: '/f', content: 'x\n' }] })
  const withFacts = (id: string, outcome: string, facts?: Record<string, unknown>): FleetNode => ({ ...node(id, outcome), ...(facts !== undefined ? { facts } : {}) })

  it('a node whose facts do not match is not targeted; one whose facts match, or whose beacon lacks the fact, is waited for', () => {
    const p = progressOf([
      withFacts('debian-4', 'pending', { os: { family: 'debian' }, processors: { count: 4 } }),
      withFacts('redhat-4', 'pending', { os: { family: 'redhat' }, processors: { count: 4 } }),
      withFacts('debian-2', 'pending', { os: { family: 'debian' }, processors: { count: 2 } }),
      withFacts('os-is-a-map', 'pending', { os: { family: { name: 'debian' } }, processors: { count: 4 } }),
      withFacts('no-facts', 'pending'),
      withFacts('no-processors', 'pending', { os: { family: 'debian' } })
    ], byFacts, 2, hash)
    expect(p.pending.map((n) => n.id)).toEqual(['debian-4', 'no-facts', 'no-processors'])
    expect(p.notTargeted.map((n) => n.id)).toEqual(['redhat-4', 'debian-2', 'os-is-a-map'])
  })

  it('a node waited for on unknown facts is settled by its receipt', () => {
    const p = progressOf([withFacts('no-facts', 'not-targeted'), withFacts('other', 'applied', { os: { family: 'debian' } })], byFacts, 2, hash)
    expect(p.notTargeted.map((n) => n.id)).toEqual(['no-facts'])
    expect(p.applied.map((n) => n.id)).toEqual(['other'])
    expect(isComplete(p)).toBe(true)
  })

  it('tags still decide with facts in the target', () => {
    const both = validatePolicyObject({ name: 'web/site', target: { tags: { role: 'web' }, facts: { 'os.family': 'debian' } }, resources: [{ id: 'f', type: 'file', path: '/f', content: 'x\n' }] })
    const web = { ...withFacts('web', 'pending', { os: { family: 'debian' } }), tags: { role: 'web' } }
    const db = { ...withFacts('db', 'pending', { os: { family: 'debian' } }), tags: { role: 'db' } }
    const p = progressOf([web, db], both, 2, hash)
    expect(p.pending.map((n) => n.id)).toEqual(['web'])
    expect(p.notTargeted.map((n) => n.id)).toEqual(['db'])
  })
})
