import { afterEach, describe, expect, it } from 'vitest'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { startMesh, waitFor, type TestMesh } from './fixtures.js'
import { validatePolicyObject } from '../../src/policy/index.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function heapAfterGc (): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

/** Live timers in this process (node's own count of active Timeout handles). */
function liveTimeouts (): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
}

describe('a long-running agent', () => {
  let mesh: TestMesh | undefined
  afterEach(async () => { await mesh?.stop(); mesh = undefined })

  it('keeps one timer per periodic task, and a flat heap, over thousands of ticks', async () => {
    // Re-apply every millisecond, beacons every 100: weeks of a default agent's ticks in seconds.
    // (Beacons not every millisecond: gossipsub keeps each published id for two minutes, by design.)
    mesh = await startMesh(1, { reapplyInterval: 1, beaconInterval: 100 })
    const agent = mesh.agents[0]!
    const policy = validatePolicyObject({ name: 'test/motd', resources: [{ id: 'motd', type: 'file', path: '/motd', content: 'hello\n' }] })
    expect(await agent.ingest(mesh.sign(policy, 1), 'local')).toBe('accepted')
    let beacons = 0
    let applies = 0
    agent.on('report', (r) => { if (r.kind === 'presence' && r.node === agent.facts.id) beacons++ })
    agent.on('applied', () => { applies++ })

    await waitFor(() => beacons >= 10 && applies >= 1000, '10 beacons and 1,000 re-applies', 60_000)
    const timersEarly = agent.clock.pending
    const liveEarly = liveTimeouts()
    const heapEarly = heapAfterGc()
    const [beaconsEarly, appliesEarly] = [beacons, applies]
    await waitFor(() => beacons >= beaconsEarly + 50 && applies >= appliesEarly + 10_000, '50 more beacons and 10,000 more re-applies', 120_000)
    const timersLate = agent.clock.pending
    const liveLate = liveTimeouts()
    const heapLate = heapAfterGc()

    // Four repeating tasks (peer maintenance, re-apply, bake checks, beacons): one timer each, whatever the tick count.
    expect(timersLate).toBeLessThanOrEqual(4)
    expect(timersLate).toBeLessThanOrEqual(Math.max(timersEarly, 4))
    // Node's own count of Timeout handles does not grow with ticks either (a few come and go with I/O).
    expect(liveLate).toBeLessThanOrEqual(liveEarly + 5)
    // Ticks that each kept a timer (~1 KiB each, as the agent's old per-task timer list did) or
    // queued a state write (~150 B each, as saving applied records on every re-apply did) show.
    console.log(`heap ${(heapEarly / 2 ** 20).toFixed(1)} -> ${(heapLate / 2 ** 20).toFixed(1)} MiB over ${beacons - beaconsEarly} beacons and ${applies - appliesEarly} re-applies; timers ${timersEarly} -> ${timersLate}, Timeout handles ${liveEarly} -> ${liveLate}`)
    expect(heapLate - heapEarly).toBeLessThan(1024 * 1024)
    // Stopping cancels every timer the agent owns.
    await agent.stop()
    expect(agent.clock.pending).toBe(0)
  }, 200_000) // its own waits allow 60 + 120 s: on a loaded 2-core host vitest's default 60 s cut it short
})
