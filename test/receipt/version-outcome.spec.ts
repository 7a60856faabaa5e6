import { describe, expect, it } from 'vitest'
import { foldApply, versionOutcome, type VersionApplies } from '../../src/receipt/index.js'

/** Applies of one version, in order, as [changed, failed] counts. */
type Runs = Array<[changed: number, failed: number]>

function outcomeAfter (runs: Runs): string {
  let held: VersionApplies | undefined
  for (const [changed, failed] of runs) held = foldApply(held, changed, failed)
  return versionOutcome(held as VersionApplies)
}

describe('versionOutcome: what a version did on a node, whatever re-applies followed', () => {
  it.each<[string, Runs, string]>([
    ['one apply that changed something', [[3, 0]], 'applied'],
    ['one apply that found everything in place', [[0, 0]], 'unchanged'],
    ['one failed apply', [[2, 1]], 'failed'],
    // The case: v22 applied with changes, re-applied 102 ms later with none.
    ['applied, then a quiet re-apply', [[3, 0], [0, 0]], 'applied'],
    ['applied, then many quiet re-applies', [[3, 0], [0, 0], [0, 0], [0, 0]], 'applied'],
    ['unchanged, then a drift repair: its first apply changed nothing', [[0, 0], [2, 0]], 'unchanged'],
    ['applied, then a failing re-apply: failing now', [[3, 0], [0, 1]], 'failed'],
    ['applied, a failing re-apply, then fixed', [[3, 0], [0, 1], [1, 0]], 'applied'],
    ['failed having changed things, then a quiet retry succeeds', [[2, 1], [0, 0]], 'applied'],
    ['failed twice, changing things only in the first, then succeeds', [[2, 1], [0, 1], [0, 0]], 'applied'],
    ['failed changing nothing, then a quiet retry succeeds', [[0, 1], [0, 0]], 'unchanged'],
    ['failed, then a retry that changes and succeeds', [[0, 1], [4, 0]], 'applied']
  ])('%s → %s', (_, runs, outcome) => {
    expect(outcomeAfter(runs)).toBe(outcome)
  })
})
