import { describe, expect, it } from 'vitest'
import { calibrationRow, fitSummary, formatDiff, measuredAt, relDiff, renderTable, runFigures, settingsOf, type MeasuredPass } from '../../../src/sim/model/calibrate-netns.js'

const pass = (over: Partial<MeasuredPass>): MeasuredPass => ({ nodes: 30, latencyMs: 25, loss: 0, pass: 'a', t50: 100, t90: 200, t100: 300, held: 50, ...over })

describe('npm run sim:calibrate: the table', () => {
  it('gives the difference as (model − measured) / measured, signed', () => {
    expect(relDiff(120, 100)).toBeCloseTo(0.2)
    expect(relDiff(75, 100)).toBeCloseTo(-0.25)
    expect(relDiff(5, 0)).toBe(undefined)
    expect(relDiff(NaN, 100)).toBe(undefined)
    expect(formatDiff(0.2)).toBe('+20%')
    expect(formatDiff(-0.254)).toBe('−25%')
    expect(formatDiff(0.001)).toBe('0%')
    expect(formatDiff(undefined)).toBe('—')
  })

  it('compares the model with the median of the passes at a setting, figure by figure', () => {
    const passes = [
      pass({ t50: 100, held: 40 }),
      pass({ pass: 'b', t50: 300, held: 60 }),
      pass({ pass: 'c', t50: 200, held: 1000 }),
      pass({ nodes: 60, t50: 9999 })
    ]
    expect(settingsOf(passes)).toEqual([{ nodes: 30, latencyMs: 25, loss: 0 }, { nodes: 60, latencyMs: 25, loss: 0 }])
    expect(measuredAt(passes, { nodes: 30, latencyMs: 25, loss: 0 })).toEqual({ figures: { t50: 200, t90: 200, t100: 300, held: 60 }, passes: 3 })
    const row = calibrationRow(passes, { nodes: 30, latencyMs: 25, loss: 0 }, { t50: 150, t90: 260, t100: 300, held: 90 })
    expect(row.diff.t50).toBeCloseTo(-0.25)
    expect(row.diff.t90).toBeCloseTo(0.3)
    expect(row.diff.t100).toBe(0)
    expect(row.diff.held).toBeCloseTo(0.5)
    const table = renderTable([row])
    expect(table).toContain('| 30 | 25 ms, 0% | 3 | 200 / 150 (−25%) | 200 / 260 (+30%) | 300 / 300 (0%) | 60 / 90 (+50%) |')
    expect(fitSummary([row])).toEqual({ worst: 0.5, inside: 2, cells: 4 })
  })

  it('reads a run\'s figures as medians over its publishes, the trust publish aside', () => {
    const p = (id: string, t50: number, held?: number): { id: string, times: { t50: number, t90: number, t100: number }, held?: { t100: number } } =>
      ({ id, times: { t50, t90: t50 + 10, t100: t50 + 20 }, ...(held !== undefined ? { held: { t100: held } } : {}) })
    const figures = runFigures({ publishes: [p('trust', 5000, 5000), p('p1', 100, 30), p('p2', 300, 50), p('p3', 200)] as never })
    expect(figures).toEqual({ t50: 200, t90: 210, t100: 220, held: 40 })
  })
})
