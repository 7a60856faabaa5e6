// CI runs every shipped scenario small, through the same runner as `grapevine sim`, and holds
// each to its own checks. Deadlines are stretched (deadlineScale) because this is a shared
// 2-core machine: the checks assert behaviour (everyone gets it, partitions heal, late nodes
// catch up, conflicts resolve), not speed; the figures go to the reports, not assertions.
// Two spec files register them (scenarios.spec.ts, scenarios-partitions.spec.ts), so the two
// test workers share the longest runs.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadScenario, parseScenario } from '../../src/sim/scenario.js'
import { modelResult, simulate } from '../../src/sim/model/index.js'
import { runScenario } from '../../src/sim/runner.js'
import { makeTempDir, removeTempDir } from '../helpers/tmp.js'
import { REPO_ROOT } from '../helpers/cli.js'

const SMALL: Record<string, number> = {}
const DEFAULT_SMALL = 6
const DEADLINE_SCALE = 4

const files = readdirSync(join(REPO_ROOT, 'simulations')).filter((f) => f.endsWith('.yaml')).sort()
const engineOf = (f: string): string => parseScenario(readFileSync(join(REPO_ROOT, 'simulations', f), 'utf8'), f).scenario.engine
// The staged-rollout scenarios run in the live engine too: rollout-scenarios.spec.ts.

/** Registers a test for each shipped scenario `pick` takes: model ones in the model engine, live ones live. */
export function shippedScenarioTests (pick: (file: string) => boolean): void {
  const dirs: string[] = []
  afterAll(async () => { await Promise.all(dirs.map(removeTempDir)) })

  // A describe with no test fails ("No test found in suite"): one only for the engines picked.
  const model = files.filter((x) => engineOf(x) === 'model' && pick(x))
  const live = files.filter((x) => engineOf(x) === 'live' && pick(x))
  if (model.length > 0) describe('shipped model scenarios, small, in the model engine', () => {
    for (const f of model) {
      it(f, async () => {
        const scenario = await loadScenario(join(REPO_ROOT, 'simulations', f))
        const options = { nodes: Math.min(scenario.nodes.count, 200), seed: 7 }
        const result = modelResult(scenario, simulate(scenario, options), options)
        const failed = result.checks.filter((c) => c.status !== 'pass')
        expect(failed.map((c) => `${c.check}: ${c.detail}`)).toEqual([])
        expect(result.checks.length).toBe(scenario.expect.length)
      }, 60_000)
    }
  })

  if (live.length > 0) describe('shipped scenarios, small', () => {
    for (const f of live) {
      it(f, async () => {
        const scenario = await loadScenario(join(REPO_ROOT, 'simulations', f))
        const out = await makeTempDir(`grapevine-sim-${scenario.name}-`)
        dirs.push(out)
        const { result, files: written } = await runScenario(scenario, {
          out,
          nodes: SMALL[scenario.name] ?? DEFAULT_SMALL,
          seed: 7,
          settleMs: 0,
          deadlineScale: DEADLINE_SCALE
        })
        const failed = result.checks.filter((c) => c.status !== 'pass')
        expect(failed.map((c) => `${c.check}: ${c.detail}`)).toEqual([])
        expect(result.checks.length).toBe(scenario.expect.length)
        expect(result.publishes.filter((p) => p.id !== 'trust').length).toBeGreaterThan(0)
        expect(written.report).toMatch(/report\.html$/)
      }, 150_000)
    }
  })
}
