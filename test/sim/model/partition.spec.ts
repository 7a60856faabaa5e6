// A healed partition must heal by itself, whatever the connection counts (issue 15). The model
// cuts the links across a partition as the live harness does (a block hangs up), each node
// refills its connections from its own side at its maintenance ticks, and after the heal only
// the agents' rotation rule (rotates, rotationDrop in src/node/rules.ts) dials across.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadScenario, type Scenario } from '../../../src/sim/scenario.js'
import { modelResult, simulate, type ModelRun } from '../../../src/sim/model/index.js'
import { DEFAULT_TARGET_PEERS } from '../../../src/node/constants.js'
import { REPO_ROOT } from '../../helpers/cli.js'

const load = async (name: string): Promise<Scenario> => await loadScenario(join(REPO_ROOT, 'simulations', `${name}.yaml`))

/** The cut: nodes whose index ends in 0–4 against the rest. */
const left = (v: number): boolean => v % 10 < 5

/** Links between the two sides, and the fewest links any node has. */
function links (run: ModelRun, side: (v: number) => boolean): { across: number, fewest: number } {
  const { g, nodes } = run.engine
  let across = 0
  let fewest = Infinity
  for (let v = 0; v < nodes; v++) {
    fewest = Math.min(fewest, g.conn.len[v]!)
    for (let i = 0; i < g.conn.len[v]!; i++) if (side(v) !== side(g.conn.get(v, i))) across++
  }
  return { across: across / 2, fewest }
}

function converged (s: Scenario, run: ModelRun, seed: number): string[] {
  return modelResult(s, run, { seed }).checks.filter((c) => c.status !== 'pass').map((c) => `${c.check}: ${c.detail}`)
}

describe('model engine: a healed partition heals by itself', () => {
  it('drops every link across the cut, and each side refills to the target from its own side', async () => {
    const s = await load('partition-stays-split')
    const run = simulate(s, { until: 41_000 })
    expect(links(run, left)).toEqual({ across: 0, fewest: DEFAULT_TARGET_PEERS })
  })

  it('without rotation, no node is below its target after the heal and the sides stay split (the bug)', async () => {
    const s = await load('partition-stays-split')
    const run = simulate(s, { params: { gossip: { rotationChance: 0 } } })
    expect(links(run, left).across).toBe(0)
    expect(converged(s, run, 1)).toHaveLength(1)
  })

  it.each([1, 2, 3, 4, 5])('the issue\'s scenario converges after the heal, seed %d', async (seed) => {
    const s = await load('partition-stays-split')
    const run = simulate(s, { seed })
    expect(converged(s, run, seed)).toEqual([])
    expect(links(run, left).across).toBeGreaterThan(0)
  })

  it('partition-heal-drop (12 nodes a side, target 8) converges, and would not without rotation', async () => {
    const s = await load('partition-heal-drop')
    const half = (v: number): boolean => v < 12
    expect(converged(s, simulate(s), 1)).toEqual([])
    const still = simulate(s, { params: { gossip: { rotationChance: 0 } } })
    expect(links(still, half).across).toBe(0)
    expect(converged(s, still, 1).map((c) => c.split(':')[0])).toEqual(['converged'])
  })
})
