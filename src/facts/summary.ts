import { MAX_PRESENCE_FACTS_BYTES, MAX_PRESENCE_FACTS_DEPTH } from '../receipt/constants.js'
import { tooDeepAt } from '../policy/depth.js'
import { factAt } from '../policy/target.js'
import { SUMMARY_FACTS } from './constants.js'

/** Bytes a value takes in the signed JSON. */
const size = (v: unknown): number => Buffer.byteLength(JSON.stringify(v))

/**
 * Pure: what a presence beacon carries of a node's facts, within MAX_PRESENCE_FACTS_BYTES and MAX_PRESENCE_FACTS_DEPTH:
 * SUMMARY_FACTS first, in order, then the custom facts (top-level names not built in) while
 * they fit. A fact that does not fit is left out whole, never cut; the rest are tried still.
 */
export function summarizeFacts (facts: Record<string, unknown> | undefined, builtin: ReadonlySet<string> = BUILTIN_NAMES, max = MAX_PRESENCE_FACTS_BYTES): Record<string, unknown> {
  let out: Record<string, unknown> = {}
  if (facts === undefined) return out
  // Each fact is tried on a copy and kept only if the whole still fits: the bound is what every receiver checks.
  const put = (parts: readonly string[], value: unknown): void => {
    const candidate = JSON.parse(JSON.stringify(out)) as Record<string, unknown>
    let at = candidate
    for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>
    at[parts[parts.length - 1] as string] = value
    if (size(candidate) <= max && tooDeepAt(candidate, MAX_PRESENCE_FACTS_DEPTH) === undefined) out = candidate
  }
  for (const path of SUMMARY_FACTS) {
    const value = factAt(facts, path)
    if (value !== undefined) put(path.split('.'), value)
  }
  for (const [name, value] of Object.entries(facts)) if (!builtin.has(name) && name !== '__proto__') put([name], value)
  return out
}

/** The top-level names of built-in facts: custom facts are the others. */
export const BUILTIN_NAMES: ReadonlySet<string> = new Set(['os', 'kernel', 'architecture', 'hostname', 'domain', 'fqdn', 'processors', 'init', 'memory', 'networking'])
