import { InvalidMaxFailuresError, InvalidStagesError, LastStageNotAllError, StageSizeError, StagesNotIncreasingError } from './errors.js'
import { MAX_STAGES, MAX_STAGES_SPEC_CHARS, PERCENT_SCALE } from './constants.js'

/**
 * One stage as the user wrote it. Percentages are kept as integer thousandths of a percent
 * (`5%` → 5000) so every node turns them into the same cutoff, with no float rounding.
 */
export type StageSpec =
  | { kind: 'count', count: number, text: string }
  | { kind: 'percent', milli: number, text: string }
  | { kind: 'tags', tags: Record<string, string>, text: string }

/** `--max-failures`: a number of nodes, or a percentage of the stage's nodes (thousandths of a percent). */
export type MaxFailures = { kind: 'count', count: number } | { kind: 'percent', milli: number }

export const ALL_MILLI = 100 * PERCENT_SCALE

const COUNT = /^[0-9]{1,9}$/
const PERCENT = /^([0-9]{1,3})(?:\.([0-9]{1,3}))?%$/
const TAG_KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
// Commas separate stages and "+" joins tags, so a value may hold neither (nor "=").
const TAG_VALUE = /^[^,+=\s]{1,200}$/

function percentMilli (m: RegExpExecArray): number {
  return Number(m[1]) * PERCENT_SCALE + Number((m[2] ?? '').padEnd(3, '0'))
}

function parseTags (text: string): Record<string, string> {
  const tags: Record<string, string> = Object.create(null)
  for (const pair of text.split('+')) {
    const eq = pair.indexOf('=')
    const key = pair.slice(0, eq)
    const value = pair.slice(eq + 1)
    if (eq < 0 || !TAG_KEY.test(key) || !TAG_VALUE.test(value)) {
      throw new InvalidStagesError(`stage "${text}": expected a tag selector like "role=canary" (tags joined by "+")`, text)
    }
    if (key in tags) throw new InvalidStagesError(`stage "${text}": tag "${key}" given twice`, text)
    tags[key] = value
  }
  return { ...tags }
}

function parseStage (text: string): StageSpec {
  if (COUNT.test(text)) {
    const count = Number(text)
    if (count === 0) throw new StageSizeError(`stage "${text}": a stage must include at least 1 node`, text)
    return { kind: 'count', count, text }
  }
  const pm = PERCENT.exec(text)
  if (pm !== null) {
    const milli = percentMilli(pm)
    if (milli === 0) throw new StageSizeError(`stage "${text}": a stage must include more than 0%`, text)
    if (milli > ALL_MILLI) throw new StageSizeError(`stage "${text}": a percentage cannot exceed 100%`, text)
    return { kind: 'percent', milli, text }
  }
  if (text.includes('=')) return { kind: 'tags', tags: parseTags(text), text }
  throw new InvalidStagesError(`stage "${text}": expected a node count ("1"), a percentage ("5%", at most 3 decimals) or a tag selector ("role=canary")`, text)
}

/**
 * Reads a `--rollout` value such as `1,5%,25%,100%` or `role=canary,10%,100%`.
 *
 * Counts come before percentages (a count after a percentage cannot be checked without knowing
 * the fleet's size), each larger than the last of its kind, and the last stage is `100%`.
 */
export function parseStages (spec: string): StageSpec[] {
  if (spec.length > MAX_STAGES_SPEC_CHARS) throw new InvalidStagesError(`--rollout: longer than ${MAX_STAGES_SPEC_CHARS} characters`)
  const texts = spec.split(',').map((s) => s.trim())
  if (texts.some((t) => t === '')) throw new InvalidStagesError(`--rollout "${spec}": empty stage; expected stages separated by commas, like "1,5%,25%,100%"`)
  if (texts.length > MAX_STAGES) throw new InvalidStagesError(`--rollout: ${texts.length} stages; at most ${MAX_STAGES}`)
  const stages = texts.map(parseStage)
  let lastCount = 0
  let lastMilli = 0
  for (const s of stages) {
    if (s.kind === 'count') {
      if (lastMilli > 0) throw new StagesNotIncreasingError(`stage "${s.text}": a node count cannot follow a percentage; give counts first, like "1,5,10%,100%"`, s.text)
      if (s.count <= lastCount) throw new StagesNotIncreasingError(`stage "${s.text}": stages must grow; ${s.count} is not more than ${lastCount}`, s.text)
      lastCount = s.count
    } else if (s.kind === 'percent') {
      if (s.milli <= lastMilli) throw new StagesNotIncreasingError(`stage "${s.text}": stages must grow; ${s.text} is not more than ${lastMilli / PERCENT_SCALE}%`, s.text)
      lastMilli = s.milli
    }
  }
  const last = stages[stages.length - 1] as StageSpec
  if (last.kind !== 'percent' || last.milli !== ALL_MILLI) {
    throw new LastStageNotAllError(`stage "${last.text}": the last stage must be 100%, or some targeted nodes would never get the version`, last.text)
  }
  return stages
}

/** Reads `--max-failures`: `0`, a count `N`, or a percentage `P%` of the stage's nodes. */
export function parseMaxFailures (text: string): MaxFailures {
  const t = text.trim()
  if (COUNT.test(t)) return { kind: 'count', count: Number(t) }
  const pm = PERCENT.exec(t)
  if (pm !== null) {
    const milli = percentMilli(pm)
    if (milli <= ALL_MILLI) return { kind: 'percent', milli }
  }
  throw new InvalidMaxFailuresError(`--max-failures "${text}": expected 0, a number of nodes (3) or a percentage of the stage's nodes up to 100% (10%)`)
}
