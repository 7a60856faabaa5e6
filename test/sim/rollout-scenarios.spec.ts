// The staged-rollout scenarios are written for the model engine and run here in the live one
// too (issue 16: both engines), small: real agents in worker processes, the production admin
// client as the evaluator, a real failing exec check where a scenario says `unhealthyOn`.
// Checks assert behaviour (halted at the canary, blast radius, done after a takeover), not speed.
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadScenario } from '../../src/sim/scenario.js'
import { runScenario } from '../../src/sim/runner.js'
import { makeTempDir, removeTempDir } from '../helpers/tmp.js'
import { REPO_ROOT } from '../helpers/cli.js'

const SCENARIOS = ['bad-change', 'publisher-dies', 'rollout-partition']
const NODES = 10
const DEADLINE_SCALE = 3

const dirs: string[] = []
afterAll(async () => { await Promise.all(dirs.map(removeTempDir)) })

describe('staged-rollout scenarios in the live engine, small', () => {
  for (const name of SCENARIOS) {
    it(name, async () => {
      const scenario = await loadScenario(join(REPO_ROOT, 'simulations', `${name}.yaml`))
      const out = await makeTempDir(`grapevine-sim-live-${name}-`)
      dirs.push(out)
      const { result } = await runScenario({ ...scenario, engine: 'live' }, { out, nodes: NODES, seed: 7, settleMs: 0, deadlineScale: DEADLINE_SCALE })
      const failed = result.checks.filter((c) => c.status !== 'pass')
      expect(failed.map((c) => `${c.check}: ${c.detail}`)).toEqual([])
      expect(result.checks.length).toBe(scenario.expect.length)
      expect(result.publishes.some((p) => p.rollout !== undefined)).toBe(true)
    }, 180_000)
  }
})
