// The live engine's worker processes, driven through LiveFleet as the runner and the
// benchmarks drive them: real agents, TCP on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest'
import { generateSigningKey } from '../../src/envelope/index.js'
import { LiveFleet } from '../../src/sim/fleet.js'
import { makeTempDir, removeTempDir } from '../helpers/tmp.js'
import { waitFor } from '../node/fixtures.js'

let fleet: LiveFleet | undefined
let dir: string | undefined
afterEach(async () => {
  await fleet?.close()
  if (dir !== undefined) await removeTempDir(dir)
  fleet = undefined
  dir = undefined
})

describe('live engine workers', () => {
  it('retries a topology dial that failed, as an agent retries its --bootstrap peers', async () => {
    dir = await makeTempDir('grapevine-worker-')
    const f = fleet = await LiveFleet.open({ out: dir, seed: 1, trust: [generateSigningKey().id], agent: {}, workers: 1, agentsPerWorker: 2 })
    const a = f.add({})
    const b = f.add({}, { neighbours: [0] })
    await f.start(a, [])
    await f.start(b, [])
    // b's one topology dial fails (here refused; in a 300-agent fleet starting up, timed out) and
    // nobody dials b: it must not stay alone once a is reachable.
    await f.cluster.block(1, [a.rec.peerId as string])
    const failed = await f.cluster.connect(1, [a.addrs[0] as string])
    expect(failed).toHaveLength(1)
    expect((await f.cluster.peers([1]))[1]).toBe(0)
    await f.cluster.block(1, [])
    // Peer maintenance runs every 7.5-12.5 s.
    await waitFor(async () => ((await f.cluster.peers([1]))[1] ?? 0) > 0, 'b to connect to a', 30_000)
  }, 60_000)
})
