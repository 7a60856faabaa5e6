// `grapevine sim` with the model engine: the shell around simulate() that writes the same
// files as the live runner (results.json, record.json, report.html).

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { renderReport } from '../report.js'
import type { Scenario } from '../scenario.js'
import type { RunOutput, RunProgress } from '../runner.js'
import { modelResult, simulate, type ModelOptions, type ModelStats } from './index.js'
import { sharedFitFor, type HostModel } from './host.js'

export interface ModelRunOptions extends Pick<ModelOptions, 'seed' | 'nodes' | 'deadlineScale' | 'host'> {
  /** Output directory: results.json, record.json, report.html. */
  out: string
  /** Wall-clock time the run started; the result is otherwise a function of the scenario and options. */
  startedAt?: Date
  onProgress?: (p: RunProgress) => void
}

/**
 * Plays a scenario through the model engine, whatever engine the file names, and writes what
 * the live runner writes. Deterministic but for `startedAt`: the same seed gives the same figures.
 */
export async function runModelScenario (scenario: Scenario, opts: ModelRunOptions): Promise<RunOutput & { stats: ModelStats }> {
  const s: Scenario = { ...scenario, engine: 'model' }
  // The shared-host costs fitted to the engine the file was written for, decided before it becomes a model run.
  const host: HostModel | undefined = opts.host?.kind === 'shared' && opts.host.fit === undefined ? { ...opts.host, fit: sharedFitFor(scenario.engine) } : opts.host
  const options: ModelOptions = {
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.nodes !== undefined ? { nodes: opts.nodes } : {}),
    ...(opts.deadlineScale !== undefined ? { deadlineScale: opts.deadlineScale } : {}),
    ...(host !== undefined ? { host } : {}),
    ...(opts.onProgress !== undefined ? { onProgress: opts.onProgress } : {})
  }
  const run = simulate(s, options)
  // Analysis walks the whole record; at tens of thousands of nodes it takes longer than the simulation.
  if (run.stats.wallMs > 1000) opts.onProgress?.({ phase: 'done', message: `simulated ${(run.record.end / 1000).toFixed(2)}s in ${(run.stats.wallMs / 1000).toFixed(1)}s of wall time; analysing ${run.record.nodes.length} nodes and writing the report`, t: run.record.end, up: 0, total: run.record.nodes.length, publishes: [], checks: { pass: 0, fail: 0, pending: 0 } })
  const result = { ...modelResult(s, run, options), startedAt: (opts.startedAt ?? new Date()).toISOString() }
  const files = { results: join(opts.out, 'results.json'), record: join(opts.out, 'record.json'), report: join(opts.out, 'report.html') }
  await mkdir(opts.out, { recursive: true })
  await writeFile(files.results, JSON.stringify(result, null, 2) + '\n')
  await writeFile(files.record, JSON.stringify(run.record) + '\n')
  await writeFile(files.report, renderReport(result))
  const checks = result.checks
  opts.onProgress?.({ phase: 'done', t: run.record.end, up: result.nodes.filter((n) => n.up).length, total: result.nodes.length, publishes: [], checks: { pass: checks.filter((c) => c.status === 'pass').length, fail: checks.filter((c) => c.status === 'fail').length, pending: 0 } })
  return { result, record: run.record, files, stats: run.stats }
}
