import { describe, expect, it } from 'vitest'
import { GateReports, stageView } from '../../src/client/index.js'
import { targetedNodes } from '../../src/client/rollout-view.js'
import { MAX_RANK } from '../../src/rollout/index.js'
import type { FleetNode } from '../../src/receipt/index.js'
import type { ConfigPolicy } from '../../src/policy/index.js'
import { validatePolicyObject } from '../../src/policy/index.js'
import { rolloutRecordOf } from '../helpers/rollout.js'

// What the evaluator reads off a fleet view: only admitted targeted nodes the stage includes by
// peer id count; minted identities neither fill nor fail a stage; stopped nodes are not waited for.

const NOW = Date.parse('2026-12-05T00:10:00.000Z')
const HASH = `sha256:${'2'.repeat(64)}`
const policy = validatePolicyObject({ kind: 'policy', name: 'web/nginx', resources: [] }) as ConfigPolicy
const at = (msAgo: number): string => new Date(NOW - msAgo).toISOString()

function node (id: string, over: Partial<FleetNode> & { outcome?: string } = {}): FleetNode {
  const { outcome, ...rest } = over
  return {
    id, name: id, tags: {}, lastSeen: at(1000), admitted: true,
    policies: outcome !== undefined ? { 'web/nginx': { version: 2, hash: HASH, outcome, at: at(500) } } : {},
    ...rest
  }
}

/** A canary stage listing `canaries` by peer id, then everyone. */
const record = (canaries: string[]) => rolloutRecordOf({ stages: [{ text: 'canary', nodes: canaries }, { text: '100%', upTo: MAX_RANK }], at: NOW - 60_000 })

function view (fleet: FleetNode[], canaries: string[]) {
  const reports = new GateReports('web/nginx', { version: 2, hash: HASH })
  reports.add(fleet)
  return stageView(record(canaries), policy, fleet, reports, NOW)
}

describe('stageView', () => {
  it('counts only admitted nodes the stage includes: minted identities reporting "applied" do not pass a stage, nor "failed" fail it', () => {
    const fakes = Array.from({ length: 50 }, (_, i) => node(`fake-${i}`, { admitted: false, outcome: i % 2 === 0 ? 'applied' : 'failed' }))
    const v = view([node('real-1'), ...fakes], ['real-1', 'fake-0', 'fake-1'])
    expect(v.members).toBe(1)
    expect(v.failed).toEqual([])
    expect(v.gate).toEqual(expect.objectContaining({ verdict: 'wait', missing: ['real-1'] }))
    expect(view([node('real-1', { outcome: 'applied' }), ...fakes], ['real-1', 'fake-0', 'fake-1']).gate.verdict).toBe('pass')
  })

  it('a node outside the stage that applies anyway (it claims tags, or lies) counts neither way', () => {
    const v = view([node('canary', { outcome: 'applied' }), node('other', { outcome: 'unhealthy' })], ['canary'])
    expect(v.gate.verdict).toBe('pass')
    expect(v.heldBack).toBe(1)
  })

  it('does not wait for a stopped member (not heard from in 10 min), unless it is all the stage has', () => {
    const gone = node('gone', { lastSeen: at(11 * 60_000) })
    const mixed = view([node('up', { outcome: 'applied' }), gone], ['up', 'gone'])
    expect(mixed).toEqual(expect.objectContaining({ members: 1, stale: 1 }))
    expect(mixed.gate.verdict).toBe('pass')
    const alone = view([gone, node('up')], ['gone'])
    expect(alone).toEqual(expect.objectContaining({ members: 1, stale: 0 }))
    expect(alone.gate).toEqual(expect.objectContaining({ verdict: 'wait', missing: ['gone'] }))
  })

  it('lists what failed on an unhealthy member from its receipt, after a beacon without failures said the same', () => {
    const failures = [{ resource: 'check:up', error: 'exited 1' }]
    const fleet = [node('canary', { policies: { 'web/nginx': { version: 2, hash: HASH, outcome: 'unhealthy', at: at(900), failures } } })]
    const reports = new GateReports('web/nginx', { version: 2, hash: HASH })
    reports.add(fleet)
    // The beacon replaced the state; the failures stay known to the evaluator.
    reports.add([node('canary', { outcome: 'unhealthy' })])
    const v = stageView(record(['canary']), policy, fleet, reports, NOW)
    expect(v.failed).toEqual([{ id: 'canary', name: 'canary', outcome: 'unhealthy', failures }])
    expect(v.gate).toEqual(expect.objectContaining({ verdict: 'halt', reason: 'too-many-failures' }))
  })
})

describe('targetedNodes', () => {
  it('judges target.facts against the facts each node\'s beacon carried', () => {
    const policy = validatePolicyObject({ name: 'web/site', target: { facts: { 'os.family': 'debian' } }, resources: [] }) as ConfigPolicy
    const node = (id: string, facts?: Record<string, unknown>): FleetNode => ({ id, name: id, tags: {}, lastSeen: new Date().toISOString(), policies: {}, admitted: true, ...(facts !== undefined ? { facts } : {}) })
    const fleet = [node('deb', { os: { family: 'debian' } }), node('rh', { os: { family: 'redhat' } }), node('old')]
    // A node whose beacon carries no such fact may be targeted: it is counted, and says so in its receipt.
    expect(targetedNodes(fleet, policy).map((n) => n.id)).toEqual(['deb', 'old'])
  })
})
