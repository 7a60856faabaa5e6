// The model against the netns engine (issue 20): runs simulations/netns-calibration.yaml
// through the model at each measured (N, delay, loss) and sets its figures beside the netns
// engine's (simulations/netns-calibration-netns.json), with the % difference. The figures of
// one run are medians over its publishes of T50/T90/T100 applied and T100 held, as
// docs/scale.md reports them. `npm run sim:calibrate` (src/bench/calibrate-netns.ts).

import type { Scenario } from '../scenario.js'
import type { SimResult } from '../result.js'
import { modelResult, simulate, type ModelOptions } from './index.js'
import type { HostModel } from './host.js'
import { median } from '../metrics.js'

/** The four figures a calibration row compares. */
export const FIGURES = ['t50', 't90', 't100', 'held'] as const
export type Figure = typeof FIGURES[number]
export type Figures = Record<Figure, number>

/** One netns pass at one setting, as measured (medians over the publishes of one run). */
export interface MeasuredPass extends Figures {
  nodes: number
  latencyMs: number
  loss: number
  /** Which pass (a directory of raw results), when, and the load average (1, 5 min) at its start. */
  pass: string
  at?: string
  load?: number[]
  /** Network set-up and tear-down of the run, ms (results.json engine.network). */
  setupMs?: number
  teardownMs?: number
}

export interface MeasuredFile {
  note: string
  scenario: string
  cores: number
  passes: MeasuredPass[]
}

export interface Setting { nodes: number, latencyMs: number, loss: number }

export interface CalibrationRow extends Setting {
  /** Median over the passes at this setting, figure by figure. */
  measured: Figures
  passes: number
  model: Figures
  /** (model − measured) / measured, per figure; undefined where measured is 0. */
  diff: Record<Figure, number | undefined>
}

/** (model − measured) / measured; undefined when there is nothing to compare with. */
export function relDiff (model: number, measured: number): number | undefined {
  return measured === 0 || !Number.isFinite(measured) || !Number.isFinite(model) ? undefined : (model - measured) / measured
}

/** "+12%", "−8%", "—". */
export function formatDiff (d: number | undefined): string {
  if (d === undefined) return '—'
  const p = Math.round(d * 100)
  return p > 0 ? `+${p}%` : p < 0 ? `−${-p}%` : '0%'
}

/** Medians over a run's publishes (the trust publish aside) of T50/T90/T100 applied and T100 held. */
export function runFigures (result: Pick<SimResult, 'publishes'>): Figures {
  const ps = result.publishes.filter((p) => p.id !== 'trust')
  const med = (get: (p: typeof ps[number]) => number | undefined): number => {
    const xs = ps.map(get).filter((x): x is number => x !== undefined)
    return xs.length > 0 ? median(xs) : NaN
  }
  return { t50: med((p) => p.times.t50), t90: med((p) => p.times.t90), t100: med((p) => p.times.t100), held: med((p) => p.held?.t100) }
}

/** The settings measured, in file order, each once. */
export function settingsOf (passes: MeasuredPass[]): Setting[] {
  const seen = new Map<string, Setting>()
  for (const p of passes) seen.set(`${p.nodes}/${p.latencyMs}/${p.loss}`, { nodes: p.nodes, latencyMs: p.latencyMs, loss: p.loss })
  return [...seen.values()]
}

/** Measured figures at a setting: the median of its passes, figure by figure. */
export function measuredAt (passes: MeasuredPass[], s: Setting): { figures: Figures, passes: number } {
  const at = passes.filter((p) => p.nodes === s.nodes && p.latencyMs === s.latencyMs && p.loss === s.loss)
  const figures = Object.fromEntries(FIGURES.map((f) => [f, median(at.map((p) => p[f]))])) as Figures
  return { figures, passes: at.length }
}

/** The scenario at one setting: the netns calibration file with its delay and loss replaced. */
export function atSetting (scenario: Scenario, s: Setting): Scenario {
  return { ...scenario, engine: 'model', nodes: { ...scenario.nodes, count: s.nodes }, network: { ...scenario.network, latency: { dist: 'constant', ms: s.latencyMs }, loss: s.loss } }
}

/** The model's figures at one setting. */
export function modelAt (scenario: Scenario, s: Setting, host: HostModel, options: Omit<ModelOptions, 'host' | 'nodes'> = {}): Figures {
  const sc = atSetting(scenario, s)
  const opts: ModelOptions = { ...options, host, nodes: s.nodes }
  return runFigures(modelResult(sc, simulate(sc, opts), opts))
}

export function calibrationRow (measured: MeasuredPass[], s: Setting, model: Figures): CalibrationRow {
  const m = measuredAt(measured, s)
  return { ...s, measured: m.figures, passes: m.passes, model, diff: Object.fromEntries(FIGURES.map((f) => [f, relDiff(model[f], m.figures[f])])) as CalibrationRow['diff'] }
}

const ms = (x: number): string => Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—'

/** The side-by-side table, Markdown: netns / model (difference) for each figure. */
export function renderTable (rows: CalibrationRow[], label = 'model'): string {
  const lines = [
    `| N | delay, loss | netns passes | T50 netns / ${label} | T90 | T100 | all held |`,
    '|---|---|---|---|---|---|---|'
  ]
  for (const r of rows) {
    const cells = FIGURES.map((f) => `${ms(r.measured[f])} / ${ms(r.model[f])} (${formatDiff(r.diff[f])})`)
    lines.push(`| ${r.nodes} | ${r.latencyMs} ms, ${+(r.loss * 100).toFixed(2)}% | ${r.passes} | ${cells.join(' | ')} |`)
  }
  return lines.join('\n')
}

/** The largest |difference| over rows and figures, and how many cells are within `within`. */
export function fitSummary (rows: CalibrationRow[], within = 0.25): { worst: number, inside: number, cells: number } {
  let worst = 0
  let inside = 0
  let cells = 0
  for (const r of rows) {
    for (const f of FIGURES) {
      const d = r.diff[f]
      if (d === undefined) continue
      cells++
      worst = Math.max(worst, Math.abs(d))
      if (Math.abs(d) <= within) inside++
    }
  }
  return { worst, inside, cells }
}
