import { describe, expect, it } from 'vitest'
import { waitForFleet, type MeshClient } from '../../src/client/index.js'
import { signPolicy, validateEnvelope, generateSigningKey } from '../../src/envelope/index.js'
import { validatePolicyObject } from '../../src/policy/index.js'
import type { FleetNode } from '../../src/receipt/index.js'

const envelope = validateEnvelope(signPolicy(validatePolicyObject({ name: 'web/site', resources: [{ id: 'f', type: 'file', path: '/f', content: 'x\n' }] }), { version: 2, key: generateSigningKey() }), { authorize: () => {} })

function node (id: string, outcome: string | undefined, minutesAgo: number): FleetNode {
  const at = new Date(Date.now() - minutesAgo * 60_000).toISOString()
  return { id, name: id, tags: {}, lastSeen: at, admitted: true, policies: outcome === undefined ? {} : { 'web/site': { version: 2, hash: envelope.hash, outcome, at } } }
}

/** A mesh whose fleet view answers `fleet()` each time it is asked. */
function meshAnswering (fleet: () => Promise<FleetNode[]>): MeshClient {
  return { current: async () => undefined, heads: async () => [], deliver: async () => ({ confirmedBy: [] }), fleet, envelope: async () => undefined, close: async () => {} }
}

describe('waitForFleet', () => {
  it('does not wait for a node stopped half an hour ago: it ends once the live ones reported', async () => {
    const mesh = meshAnswering(async () => [node('live', 'applied', 0), node('stopped', undefined, 30)])
    const { progress, timedOut, interrupted } = await waitForFleet(mesh, envelope, { timeoutMs: 10_000 })
    expect(timedOut).toBe(false)
    expect(interrupted).toBe(false)
    expect(progress.applied.map((n) => n.id)).toEqual(['live'])
    expect(progress.stale.map((n) => n.id)).toEqual(['stopped'])
    expect(progress.pending).toEqual([])
  })

  it('still waits for a live node yet to report', async () => {
    const mesh = meshAnswering(async () => [node('live', 'applied', 0), node('slow', undefined, 1)])
    const { progress, timedOut } = await waitForFleet(mesh, envelope, { timeoutMs: 400, pollMs: 50 })
    expect(timedOut).toBe(true)
    expect(progress.pending.map((n) => n.id)).toEqual(['slow'])
  })

  it('ends at once when its signal aborts, with what was known, even while the fleet has not answered', async () => {
    const stop = new AbortController()
    let asked = 0
    const mesh = meshAnswering(async () => {
      // The first answer comes; every later one hangs, as a stalled agent's would.
      if (asked++ === 0) return [node('done', 'applied', 0), node('slow', undefined, 1)]
      return await new Promise<FleetNode[]>(() => {})
    })
    const waiting = waitForFleet(mesh, envelope, { timeoutMs: 60_000, pollMs: 10, signal: stop.signal, onProgress: () => { if (asked >= 1) setTimeout(() => { stop.abort() }, 50) } })
    const { progress, timedOut, interrupted } = await waiting
    expect(interrupted).toBe(true)
    expect(timedOut).toBe(false)
    expect(progress.applied.map((n) => n.id)).toEqual(['done'])
    expect(progress.pending.map((n) => n.id)).toEqual(['slow'])
  })
})
