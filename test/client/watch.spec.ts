import { describe, expect, it } from 'vitest'
import { isComplete, progressOf } from '../../src/client/index.js'
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
