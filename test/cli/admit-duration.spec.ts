import { describe, expect, it } from 'vitest'
import { parseDuration } from '../../src/cli/commands/admit.js'

describe('admit --expires', () => {
  it('takes a lifetime up to 100 years', () => {
    expect(parseDuration('90d')).toBe(90 * 86_400_000)
    expect(parseDuration('100y')).toBe(100 * 365 * 86_400_000)
  })

  it('refuses one no date can hold as a usage error (it crashed with a RangeError)', () => {
    expect(() => parseDuration('9999999y')).toThrow(expect.objectContaining({ exitCode: 64, message: expect.stringContaining('at most 100y') }))
  })
})
