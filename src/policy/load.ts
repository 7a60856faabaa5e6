import { createHash } from 'node:crypto'
import { mkdir, readFile, stat } from 'node:fs/promises'
import { dirname, extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkTemplates } from './template.js'
import { InvalidPolicyError, PolicyTooLargeError } from './errors.js'
import { MAX_POLICY_FILE_BYTES, MAX_SOURCE_BYTES } from './constants.js'
import type { Policy } from './schema.js'

/**
 * Reads, validates and completes a policy file: `source:` files beside it are embedded
 * as content, so the policy that is signed and gossiped is self-contained.
 */
export async function loadPolicyFile (file: string, opts: LoadOptions = {}): Promise<Policy> {
  let size: number
  try {
    size = (await stat(file)).size
  } catch (err) {
    throw new InvalidPolicyError(file, [{ path: '', message: `cannot read the policy file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }])
  }
  if (size > MAX_POLICY_FILE_BYTES) throw new PolicyTooLargeError(file, size, MAX_POLICY_FILE_BYTES)
  const text = await readFile(file, 'utf8')
  const policy = opts.cacheDir !== undefined ? await parseCached(text, file, opts.cacheDir, opts.readOnlyCache === true) : (await import('./parse.js')).parsePolicy(text, file)
  return await embedSources(policy, dirname(resolve(file)), file)
}

export interface LoadOptions {
  /**
   * Keep the validated policy here, keyed by the file's content: the next load of the same
   * text skips parsing and validation (and loading the YAML library and the schema), as
   * CFEngine skips re-validating promises that did not change. `source:` files are read every time.
   */
  cacheDir?: string
  /** Read the cache but never write it (plan changes nothing on disk). */
  readOnlyCache?: boolean
}

interface CacheEntry { build: string, sha256: string, policy: Policy }

/**
 * What validated a cached policy: the schema's own build. A rebuilt or upgraded Grapevine
 * may read policies differently, so its cache starts again.
 */
async function buildId (): Promise<string> {
  // schema.js when built, schema.ts when run from source (tests).
  const schema = await stat(new URL(`./schema${extname(fileURLToPath(import.meta.url))}`, import.meta.url))
  return `${schema.size}:${schema.mtimeMs}`
}

async function parseCached (text: string, file: string, cacheDir: string, readOnly: boolean): Promise<Policy> {
  const sha256 = createHash('sha256').update(text).digest('hex')
  // One entry per policy file (by path), replaced when the file changes: the cache stays as small as the set of files.
  const entryFile = join(cacheDir, `${createHash('sha256').update(resolve(file)).digest('hex').slice(0, 32)}.json`)
  const build = await buildId()
  try {
    const entry = JSON.parse(await readFile(entryFile, 'utf8')) as CacheEntry
    if (entry.build === build && entry.sha256 === sha256) return entry.policy
  } catch {
    // Missing, unreadable or torn: validate from the text, as without a cache.
  }
  const policy = (await import('./parse.js')).parsePolicy(text, file)
  if (readOnly) return policy
  try {
    const { atomicWrite } = await import('../store/fs.js')
    await mkdir(cacheDir, { recursive: true })
    // Not fsynced: an entry lost by a power cut is only a miss, and two fsyncs cost a first apply ~10 ms.
    await atomicWrite(entryFile, JSON.stringify({ build, sha256, policy } satisfies CacheEntry), 0o644, false)
  } catch {
    // A cache that cannot be written (read-only state, full disk) only costs the next run time.
  }
  return policy
}

export async function embedSources (policy: Policy, baseDir: string, file: string): Promise<Policy> {
  // Nothing to embed (the usual case): parsePolicy has checked everything already.
  if (policy.kind !== 'policy' || !policy.resources.some((r) => r.type === 'file' && r.source !== undefined)) return policy
  const problems: Array<{ path: string, message: string }> = []
  const resources = await Promise.all(policy.resources.map(async (r, i) => {
    if (r.type !== 'file' || r.source === undefined) return r
    const src = resolve(baseDir, r.source)
    try {
      const info = await stat(src)
      if (!info.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' })
      if (info.size > MAX_SOURCE_BYTES) throw Object.assign(new Error('too large'), { code: `${info.size} bytes is over the ${MAX_SOURCE_BYTES}-byte limit` })
      const bytes = await readFile(src)
      const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes)
      const isUtf8 = Buffer.from(text, 'utf8').equals(bytes)
      const { source: _source, ...rest } = r
      return isUtf8
        ? { ...rest, content: text, encoding: 'utf8' as const }
        : { ...rest, content: bytes.toString('base64'), encoding: 'base64' as const, template: false }
    } catch (err) {
      problems.push({ path: `resources[${i}].source`, message: `cannot read "${r.source}" (${src}): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` })
      return r
    }
  }))
  if (problems.length > 0) throw new InvalidPolicyError(file, problems)
  const embedded = { ...policy, resources }
  // parsePolicy could not see the templates inside source files; check them now, as signing will.
  for (const p of checkTemplates(embedded)) {
    const i = p.path[1] as number
    const r = policy.resources[i]
    if (r?.type === 'file' && r.source !== undefined) problems.push({ path: `resources[${i}].source`, message: `in "${r.source}": ${p.message}` })
  }
  if (problems.length > 0) throw new InvalidPolicyError(file, problems)
  return embedded
}
