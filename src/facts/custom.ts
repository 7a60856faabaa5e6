import { open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { walkData } from '../policy/depth.js'
import { FACT_NAME, MAX_CUSTOM_FACTS_BYTES, MAX_FACT_DEPTH, MAX_FACT_FILES, MAX_FACT_VALUES } from './constants.js'
import { FactFileError } from './errors.js'

export interface CustomFacts {
  facts: Record<string, unknown>
  /** One per file or fact skipped, naming the file: a bad fact file never stops the agent. */
  warnings: string[]
  /** The files whose facts were taken, in the order they were merged. */
  files: string[]
}

const FACT_FILE = /^[^.].*\.(json|ya?ml)$/

/**
 * Reads `dir`'s `*.json`, `*.yaml` and `*.yml` files in name order (bytewise, whatever the
 * locale), each a map merged at the top level: a later file's fact replaces an earlier one's of
 * the same name. A missing directory has no facts (a warning only when `explicit`, as with
 * `--facts-dir`). Bounded: MAX_FACT_FILES files, MAX_CUSTOM_FACTS_BYTES bytes in all, each
 * fact MAX_FACT_DEPTH deep.
 */
export async function readCustomFacts (dir: string, opts: { explicit?: boolean } = {}): Promise<CustomFacts> {
  const out: CustomFacts = { facts: {}, warnings: [], files: [] }
  let names: string[]
  try {
    names = (await readdir(dir)).filter((n) => FACT_FILE.test(n)).sort((a, b) => a < b ? -1 : a > b ? 1 : 0)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' || opts.explicit === true) out.warnings.push(`facts directory ${dir}: ${code === 'ENOENT' ? 'does not exist' : code ?? (err as Error).message}; no custom facts`)
    return out
  }
  if (names.length > MAX_FACT_FILES) {
    out.warnings.push(`facts directory ${dir}: ${names.length} fact files, only the first ${MAX_FACT_FILES} by name are read`)
    names = names.slice(0, MAX_FACT_FILES)
  }
  const from = new Map<string, string>()
  let budget = MAX_CUSTOM_FACTS_BYTES
  for (const name of names) {
    const file = join(dir, name)
    try {
      const text = await readBounded(file, budget)
      budget -= Buffer.byteLength(text)
      const map = await decode(file, name, text)
      for (const [key, value] of Object.entries(map)) {
        if (!FACT_NAME.test(key) || key === '__proto__') { out.warnings.push(`${file}: fact "${key}" skipped: a fact name is letters, digits, "_" and "-" (templates and targets could not name it)`); continue }
        const earlier = from.get(key)
        if (earlier !== undefined) out.warnings.push(`${file}: fact "${key}" replaces the one from ${earlier} (files merge in name order)`)
        out.facts[key] = value
        from.set(key, file)
      }
      out.files.push(file)
    } catch (err) {
      out.warnings.push(err instanceof FactFileError ? err.message : `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; its facts are skipped`)
    }
  }
  return out
}

/** The file's text, refused before reading when it is not a regular file or would pass what is left of the byte budget. */
async function readBounded (file: string, budget: number): Promise<string> {
  const handle = await open(file, 'r')
  try {
    const info = await handle.stat()
    if (!info.isFile()) throw new FactFileError(file, 'not a regular file')
    if (info.size > budget) throw new FactFileError(file, `${info.size} bytes would pass the ${MAX_CUSTOM_FACTS_BYTES}-byte bound on all custom facts (${budget} left)`)
    // Read at most one byte past the budget: a file growing under us is still caught.
    const buf = Buffer.alloc(Math.min(budget, info.size) + 1)
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0)
    if (bytesRead > budget) throw new FactFileError(file, `grew past the ${MAX_CUSTOM_FACTS_BYTES}-byte bound on all custom facts while read`)
    return buf.subarray(0, bytesRead).toString('utf8')
  } finally {
    await handle.close()
  }
}

/** The file's map, as plain JSON data (YAML aliases copied out, within MAX_FACT_VALUES), or a FactFileError. */
async function decode (file: string, name: string, text: string): Promise<Record<string, unknown>> {
  // An empty file (one being written, a placeholder) has no facts; it is not a mistake.
  if (text.trim() === '') return {}
  let data: unknown
  try {
    if (name.endsWith('.json')) data = JSON.parse(text)
    else {
      // Loaded only when a YAML fact file exists; the core schema keeps values JSON's (no dates, no custom tags).
      const yaml = await import('js-yaml')
      data = yaml.load(text, { schema: yaml.CORE_SCHEMA, filename: file })
    }
  } catch (err) {
    throw new FactFileError(file, `not valid ${name.endsWith('.json') ? 'JSON' : 'YAML'} (${((err as Error).message.split('\n')[0] ?? '').slice(0, 200)})`)
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new FactFileError(file, `expected a map of fact names to values, got ${data === null ? 'null' : Array.isArray(data) ? 'a list' : typeof data}`)
  let values = 0
  let problem: string | undefined
  walkData(data, (value, path) => {
    if (problem !== undefined) return false
    if (++values > MAX_FACT_VALUES) { problem = `more than ${MAX_FACT_VALUES} values (YAML aliases count each time they are used)`; return false }
    if (value !== null && typeof value === 'object' && path.length >= MAX_FACT_DEPTH) { problem = `${path.join('.')} is nested deeper than ${MAX_FACT_DEPTH} levels`; return false }
    if (typeof value === 'number' && !Number.isFinite(value)) { problem = `${path.join('.')} is not a finite number`; return false }
    return true
  })
  if (problem !== undefined) throw new FactFileError(file, problem)
  // A copy: aliases become separate values, and no key can reach a prototype.
  const copy = JSON.parse(JSON.stringify(data)) as Record<string, unknown>
  if (Buffer.byteLength(JSON.stringify(copy)) > MAX_CUSTOM_FACTS_BYTES) throw new FactFileError(file, `expands past the ${MAX_CUSTOM_FACTS_BYTES}-byte bound on custom facts`)
  return copy
}
