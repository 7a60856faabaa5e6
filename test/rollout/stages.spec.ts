import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  parseStages, parseMaxFailures, InvalidStagesError, StageSizeError, StagesNotIncreasingError,
  LastStageNotAllError, InvalidMaxFailuresError, MAX_STAGES, type StageSpec
} from '../../src/rollout/index.js'

describe('parseStages', () => {
  it.each<[string, StageSpec[]]>([
    ['100%', [{ kind: 'percent', milli: 100_000, text: '100%' }]],
    ['1,5%,25%,100%', [
      { kind: 'count', count: 1, text: '1' },
      { kind: 'percent', milli: 5000, text: '5%' },
      { kind: 'percent', milli: 25_000, text: '25%' },
      { kind: 'percent', milli: 100_000, text: '100%' }
    ]],
    ['1, 5, 10% ,100%', [
      { kind: 'count', count: 1, text: '1' },
      { kind: 'count', count: 5, text: '5' },
      { kind: 'percent', milli: 10_000, text: '10%' },
      { kind: 'percent', milli: 100_000, text: '100%' }
    ]],
    ['0.5%,12.125%,100%', [
      { kind: 'percent', milli: 500, text: '0.5%' },
      { kind: 'percent', milli: 12_125, text: '12.125%' },
      { kind: 'percent', milli: 100_000, text: '100%' }
    ]],
    ['role=canary,10%,100%', [
      { kind: 'tags', tags: { role: 'canary' }, text: 'role=canary' },
      { kind: 'percent', milli: 10_000, text: '10%' },
      { kind: 'percent', milli: 100_000, text: '100%' }
    ]],
    ['role=canary+dc=ams,1,100%', [
      { kind: 'tags', tags: { role: 'canary', dc: 'ams' }, text: 'role=canary+dc=ams' },
      { kind: 'count', count: 1, text: '1' },
      { kind: 'percent', milli: 100_000, text: '100%' }
    ]]
  ])('%s', (spec, expected) => {
    expect(parseStages(spec)).toEqual(expected)
  })

  it.each<[string, string, string]>([
    ['a zero count', '0,100%', 'StageSizeError'],
    ['a zero percentage', '0%,100%', 'StageSizeError'],
    ['0.000%', '0.000%,100%', 'StageSizeError'],
    ['above 100%', '1,101%', 'StageSizeError'],
    ['100.001%', '100.001%', 'StageSizeError'],
    ['decreasing counts', '5,3,100%', 'StagesNotIncreasingError'],
    ['a repeated count', '5,5,100%', 'StagesNotIncreasingError'],
    ['decreasing percentages', '25%,5%,100%', 'StagesNotIncreasingError'],
    ['100% twice', '100%,100%', 'StagesNotIncreasingError'],
    ['a count after a percentage', '5%,10,100%', 'StagesNotIncreasingError'],
    ['last stage a count', '1,5', 'LastStageNotAllError'],
    ['last stage below 100%', '1,50%', 'LastStageNotAllError'],
    ['last stage a tag selector', 'role=canary', 'LastStageNotAllError'],
    ['empty', '', 'InvalidStagesError'],
    ['an empty stage', '1,,100%', 'InvalidStagesError'],
    ['a trailing comma', '1,100%,', 'InvalidStagesError'],
    ['garbage', 'canary', 'InvalidStagesError'],
    ['a negative count', '-1,100%', 'InvalidStagesError'],
    ['a fractional count', '1.5,100%', 'InvalidStagesError'],
    ['four decimals', '0.0001%,100%', 'InvalidStagesError'],
    ['a percent sign alone', '%,100%', 'InvalidStagesError'],
    ['a tag without a value', 'role=,100%', 'InvalidStagesError'],
    ['a tag without a key', '=canary,100%', 'InvalidStagesError'],
    ['a tag given twice', 'role=a+role=b,100%', 'InvalidStagesError'],
    ['too many stages', `${Array.from({ length: MAX_STAGES }, (_, i) => `${i + 1}`).join(',')},100%`, 'InvalidStagesError'],
    ['far too long', `${'1,'.repeat(2000)}100%`, 'InvalidStagesError']
  ])('refuses %s (%s) with %s', (_, spec, name) => {
    let err: unknown
    try { parseStages(spec) } catch (e) { err = e }
    expect(err).toBeInstanceOf(InvalidStagesError)
    expect((err as Error).name).toBe(name)
  })

  it('names the stage at fault so a CLI can point at it', () => {
    let err: unknown
    try { parseStages('1,25%,5%,100%') } catch (e) { err = e }
    expect(err).toBeInstanceOf(StagesNotIncreasingError)
    expect((err as StagesNotIncreasingError).stage).toBe('5%')
    expect((err as Error).message).toContain('"5%"')
  })

  it('keeps subclasses apart', () => {
    expect(() => parseStages('0,100%')).toThrow(StageSizeError)
    expect(() => parseStages('1,50%')).toThrow(LastStageNotAllError)
  })

  it('accepts every growing list of counts then percentages ending in 100%, and gives it back', () => {
    const list = fc.tuple(
      fc.uniqueArray(fc.integer({ min: 1, max: 1_000_000 }), { maxLength: 4 }),
      fc.uniqueArray(fc.integer({ min: 1, max: 99_999 }), { maxLength: 4 })
    )
    fc.assert(fc.property(list, ([counts, millis]) => {
      counts.sort((a, b) => a - b)
      millis.sort((a, b) => a - b)
      const texts = [...counts.map(String), ...millis.map((m) => `${Math.floor(m / 1000)}.${String(m % 1000).padStart(3, '0')}%`), '100%']
      const stages = parseStages(texts.join(','))
      expect(stages.map((s) => s.text)).toEqual(texts)
      expect(stages.filter((s) => s.kind === 'count').map((s) => s.kind === 'count' && s.count)).toEqual(counts)
      expect(stages.filter((s) => s.kind === 'percent').map((s) => s.kind === 'percent' && s.milli)).toEqual([...millis, 100_000])
    }))
  })

  it('throws only named errors, whatever the input', () => {
    fc.assert(fc.property(fc.string({ maxLength: 60 }), (spec) => {
      try { parseStages(spec) } catch (e) { expect(e).toBeInstanceOf(InvalidStagesError) }
    }))
  })
})

describe('parseMaxFailures', () => {
  it.each([
    ['0', { kind: 'count', count: 0 }],
    ['3', { kind: 'count', count: 3 }],
    ['10%', { kind: 'percent', milli: 10_000 }],
    ['0.5%', { kind: 'percent', milli: 500 }],
    ['100%', { kind: 'percent', milli: 100_000 }]
  ])('%s', (text, expected) => {
    expect(parseMaxFailures(text)).toEqual(expected)
  })

  it.each(['', '-1', 'x', '101%', '1.5', '10 %'])('refuses %j', (text) => {
    expect(() => parseMaxFailures(text)).toThrow(InvalidMaxFailuresError)
  })
})
