import { describe, expect, it } from 'vitest'
import { foldApply, versionOutcome, type VersionApplies } from '../../src/receipt/index.js'

/** Folds applies given as [changed, failed, unhealthy] and returns each step's outcome. */
function outcomes (...applies: Array<[number, number, boolean]>): string[] {
  let held: VersionApplies | undefined
  return applies.map(([changed, failed, unhealthy]) => {
    held = foldApply(held, changed, failed, unhealthy)
    return versionOutcome(held)
  })
}

describe('versionOutcome with health', () => {
  it.each<[string, Array<[number, number, boolean]>, string[]]>([
    ['an apply whose check fails is unhealthy', [[1, 0, true]], ['unhealthy']],
    ['a failed resource says failed, whatever the checks', [[1, 1, true]], ['failed']],
    ['healthy again after a re-apply: the first apply\'s word comes back', [[1, 0, true], [0, 0, false]], ['unhealthy', 'applied']],
    ['a quiet apply, then the service falls over, then recovers', [[0, 0, false], [0, 0, true], [0, 0, false]], ['unchanged', 'unhealthy', 'unchanged']],
    ['health is the latest apply\'s: a retry that succeeded but is unhealthy', [[0, 1, false], [1, 0, true]], ['failed', 'unhealthy']]
  ])('%s', (_, applies, expected) => {
    expect(outcomes(...applies)).toEqual(expected)
  })

  it('a record written before health existed reads as healthy', () => {
    expect(versionOutcome({ first: 'applied', changed: true, failing: false })).toBe('applied')
  })
})
