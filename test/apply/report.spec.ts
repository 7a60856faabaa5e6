import { describe, expect, it } from 'vitest'
import { countResults, exitCodeFor, outcomeOf, type Outcome, type ResourceResult } from '../../src/apply/index.js'

const r = (action: ResourceResult['action'], status: ResourceResult['status']): ResourceResult => ({ id: `${action}-${status}`, type: 'file', action, status, durationMs: 0 })

describe('report', () => {
  /** Every outcome must be listed: a new one fails to compile here until it has its exit code. */
  const codes: Record<Outcome, number> = { 'no-changes': 0, changes: 2, failures: 4, 'changes-and-failures': 6 }

  it.each(Object.entries(codes))('%s exits %i', (outcome, code) => {
    expect(exitCodeFor({ outcome: outcome as Outcome })).toBe(code)
  })

  it.each<[string, ResourceResult[], boolean, Outcome]>([
    ['nothing to do', [r('none', 'ok')], false, 'no-changes'],
    ['a change', [r('create', 'ok'), r('none', 'ok')], false, 'changes'],
    ['a plan that may run an exec', [r('run', 'unknown')], false, 'changes'],
    ['a failure', [r('modify', 'failed'), r('none', 'skipped')], false, 'failures'],
    ['both', [r('delete', 'ok'), r('modify', 'failed')], false, 'changes-and-failures'],
    ['an abort', [r('none', 'ok'), r('none', 'skipped')], true, 'failures']
  ])('%s', (_name, results, aborted, outcome) => {
    expect(outcomeOf(countResults(results), aborted)).toBe(outcome)
  })

  it('counts each status once', () => {
    expect(countResults([r('create', 'ok'), r('none', 'ok'), r('run', 'failed'), r('none', 'skipped'), r('run', 'unknown')]))
      .toEqual({ total: 5, changed: 1, unchanged: 1, failed: 1, skipped: 1, unknown: 1 })
  })
})
