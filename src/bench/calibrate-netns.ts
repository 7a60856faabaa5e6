// `npm run sim:calibrate`: the model against the netns engine (issue 20, docs/scale.md "The
// model against a real network"). Runs simulations/netns-calibration.yaml through the model at
// every (N, delay, loss) in simulations/netns-calibration-netns.json and prints the netns
// figures beside the model's, with the % difference, for the shared host fitted to the netns
// engine and for dedicated hosts.
//
//   --measure [--nodes 30,60] [--settings 0:0,25:0,25:0.01,50:0.05] [--out DIR]
//       first runs the netns engine (root) at each setting and adds each run as a pass to the
//       JSON file, with the load average at its start; then prints the table.
//   --fit   grid search of the netns fit's free costs (NETNS_SHARED_CPU verifyMs, applyMs,
//           applyIoMs, saveIoMs; NETNS_SHARED_NET shapedHopMs) by least squares on log T50/T90/T100/held
//           over every measured setting; prints the best few and their table.
//   --file FILE   another measured file (default simulations/netns-calibration-netns.json; its
//                 `scenario` is the file run); simulations/netns-small-netns.json is the
//                 small-N check of the dedicated model (10 agents, one per host).
import '../shim.js'
import { execFile } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { loadScenario } from '../sim/scenario.js'
import type { SimResult } from '../sim/result.js'
import { FIGURES, calibrationRow, fitSummary, modelAt, renderTable, runFigures, settingsOf, type CalibrationRow, type MeasuredFile, type MeasuredPass, type Setting } from '../sim/model/calibrate-netns.js'
import type { Scenario } from '../sim/scenario.js'
import { NETNS_SHARED_CPU, NETNS_SHARED_NET } from '../sim/model/constants.js'

/** The grid --fit searches: each free cost around its fitted value. */
const GRID = {
  verifyMs: [1.25, 2],
  applyMs: [2, 10, 20, 30],
  applyIoMs: [4, 8, 12],
  saveIoMs: [2, 4, 6, 8],
  shapedHopMs: [0, 20, 40, 60]
}

function fit (file: MeasuredFile, scenario: Scenario): void {
  const settings = settingsOf(file.passes)
  const results: Array<{ c: Record<string, number>, err: number, rows: CalibrationRow[] }> = []
  let combos: Array<Record<string, number>> = [{}]
  for (const [k, vs] of Object.entries(GRID)) combos = combos.flatMap((c) => vs.map((v) => ({ ...c, [k]: v })))
  for (const c of combos) {
    const { shapedHopMs, ...cpu } = c
    const params = { cpu: { ...NETNS_SHARED_CPU, ...cpu }, net: { ...NETNS_SHARED_NET, shapedHopMs: shapedHopMs ?? NETNS_SHARED_NET.shapedHopMs } }
    const rows = settings.map((s) => calibrationRow(file.passes, s, modelAt(scenario, s, { kind: 'shared', cores: file.cores, fit: 'netns' }, { params })))
    let err = 0
    for (const r of rows) for (const f of FIGURES) err += Math.log(r.model[f] / r.measured[f]) ** 2
    results.push({ c, err, rows })
  }
  results.sort((a, b) => a.err - b.err)
  for (const r of results.slice(0, 5)) {
    const sum = fitSummary(r.rows)
    process.stdout.write(`${JSON.stringify(r.c)}: squared log error ${r.err.toFixed(3)}, ${sum.inside} of ${sum.cells} within 25%, worst ${Math.round(sum.worst * 100)}%\n`)
  }
  process.stdout.write(`\nbest of ${combos.length}:\n${renderTable(results[0]!.rows)}\n`)
}

function arg (a: string[], flag: string): string | undefined {
  const i = a.indexOf(flag)
  return i >= 0 ? a[i + 1] : undefined
}

/** The scenario file with its network replaced, as YAML text (the two lines measure.sh replaced). */
function withNetwork (text: string, s: Setting): string {
  return text.replace(/^ {2}latency: .*$/m, `  latency: ${s.latencyMs}ms`).replace(/^ {2}loss: .*$/m, `  loss: ${s.loss}`)
}

async function measure (file: MeasuredFile, settings: Setting[], out: string, pass: string): Promise<void> {
  const text = await readFile(file.scenario, 'utf8')
  await mkdir(out, { recursive: true })
  for (const s of settings) {
    const name = `n${s.nodes}-${s.latencyMs}-${s.loss}`
    const yaml = join(out, `${name}.yaml`)
    await writeFile(yaml, withNetwork(text, s))
    const load = loadavg().slice(0, 2).map((x) => Math.round(x * 100) / 100)
    const at = new Date().toISOString()
    const dir = join(out, name)
    try {
      await promisify(execFile)(process.execPath, ['bin/grapevine.js', 'sim', yaml, '--engine', 'netns', '--nodes', String(s.nodes), '--out', dir], { maxBuffer: 64 << 20 })
    } catch (err) {
      // A failed check still writes results.json; a run that could not start does not.
      process.stderr.write(`${name}: grapevine sim exited ${(err as { code?: number }).code ?? '?'}\n`)
    }
    let r: SimResult
    try {
      r = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as SimResult
    } catch {
      process.stderr.write(`${name}: no results.json; skipped\n`)
      continue
    }
    const complete = r.publishes.filter((p) => p.id !== 'trust').every((p) => p.applied === p.targeted)
    if (!complete) process.stderr.write(`${name}: some publish did not reach every node; its figures are left out\n`)
    const net = r.engine.network
    const p: MeasuredPass = { ...s, ...runFigures(r), pass, at, load, ...(net !== undefined ? { setupMs: net.setupMs, ...(net.teardownMs !== undefined ? { teardownMs: net.teardownMs } : {}) } : {}) }
    process.stdout.write(`${name}: T50/T90/T100 ${p.t50}/${p.t90}/${p.t100}, held ${p.held} (load ${load.join(', ')})\n`)
    if (complete) file.passes.push(p)
  }
}

async function main (a: string[]): Promise<void> {
  const path = arg(a, '--file') ?? join('simulations', 'netns-calibration-netns.json')
  const file = JSON.parse(await readFile(path, 'utf8')) as MeasuredFile
  if (a.includes('--measure')) {
    if (process.getuid?.() !== 0) throw new Error('--measure runs the netns engine, which needs root')
    const nodes = (arg(a, '--nodes') ?? '30,60').split(',').map(Number)
    const settings = (arg(a, '--settings') ?? '0:0,25:0,25:0.01,50:0.05').split(',').map((x) => x.split(':').map(Number) as [number, number])
    const pass = `h30-${new Date().toISOString().slice(0, 16)}`
    await measure(file, nodes.flatMap((n) => settings.map(([latencyMs, loss]) => ({ nodes: n, latencyMs, loss }))), arg(a, '--out') ?? join('out', `calibrate-netns-${Date.now()}`), pass)
    await writeFile(path, JSON.stringify(file, null, 2) + '\n')
  }
  const scenario = await loadScenario(file.scenario)
  if (a.includes('--fit')) {
    fit(file, scenario)
    return
  }
  const settings = settingsOf(file.passes)
  for (const [label, host] of [['shared host, netns fit', { kind: 'shared', cores: file.cores, fit: 'netns' }], ['dedicated hosts', { kind: 'dedicated' }]] as const) {
    const rows = settings.map((s) => calibrationRow(file.passes, s, modelAt(scenario, s, host)))
    const sum = fitSummary(rows)
    process.stdout.write(`\nnetns engine / model (${label}), medians of ${scenario.timeline.length} publishes, ms:\n${renderTable(rows)}\n`)
    process.stdout.write(`${sum.inside} of ${sum.cells} figures within 25%; worst ${Math.round(sum.worst * 100)}%\n`)
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`calibrate-netns: ${err.message}\n`)
  process.exitCode = 1
})
