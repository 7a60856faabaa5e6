import { createHash } from 'node:crypto'
import { mkdir, readFile, realpath, stat } from 'node:fs/promises'
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { checkTemplates } from './template.js'
import { InvalidPolicyError, PolicyEncodingError, PolicySourceError, PolicyTooLargeError, type PolicyProblem } from './errors.js'
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
  const text = decodePolicyText(await readFile(file), file)
  const policy = opts.cacheDir !== undefined ? await parseCached(text, file, opts.cacheDir, opts.readOnlyCache === true) : (await import('./parse.js')).parsePolicy(text, file)
  return await embedSources(policy, dirname(resolve(file)), file, { allowSourceOutside: opts.allowSourceOutside === true, text })
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * The file's text, refusing bytes that are not UTF-8 with where the first one is: decoding
 * them as U+FFFD would sign something other than what the file says.
 */
export function decodePolicyText (bytes: Uint8Array, file: string): string {
  try {
    return utf8.decode(bytes)
  } catch {
    // Up to the first bad sequence, the lenient decoding re-encodes to the same bytes.
    const again = Buffer.from(Buffer.from(bytes).toString('utf8'), 'utf8')
    let at = 0
    while (at < bytes.length && bytes[at] === again[at]) at++
    const before = Buffer.from(bytes.subarray(0, at))
    const lineStart = before.lastIndexOf(0x0a) + 1
    const line = before.subarray(0, lineStart).filter((b) => b === 0x0a).length + 1
    const column = [...before.subarray(lineStart).toString('utf8')].length + 1
    const hex = (bytes[at] ?? 0).toString(16).padStart(2, '0')
    throw new PolicyEncodingError(file, [{ path: '', line, column, message: `not UTF-8: byte ${at} (0x${hex}) starts an invalid sequence; a policy file must be UTF-8 text (binary content belongs in a source file, which is embedded as base64)` }])
  }
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
  /**
   * Let `source:` name files outside the policy file's directory (absolute, `..`, or through
   * a symlink). Off by default: whatever a source names is signed and gossiped to every node,
   * so a policy from someone else must not be able to embed the admin's /etc/shadow.
   */
  allowSourceOutside?: boolean
}

export interface EmbedOptions {
  /** See LoadOptions.allowSourceOutside. */
  allowSourceOutside?: boolean
  /** The policy's text, to give each problem its line. */
  text?: string
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

/** Whether `p` is `dir` or inside it; both absolute. */
function within (dir: string, p: string): boolean {
  const rel = relative(dir, p)
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel))
}

class SourceProblem extends Error {}

/** The real path of a source, refused when it lies outside `baseDir` (unless allowed) or is not a file that can be embedded. */
async function locateSource (source: string, baseDir: string, allowOutside: boolean): Promise<string> {
  const outside = 'is outside the policy file\'s directory'
  const allow = 'pass --allow-source-outside if you mean it'
  if (!allowOutside && isAbsolute(source)) throw new SourceProblem(`${outside} (${baseDir}): a source is a path relative to the policy file, never an absolute path, because whatever it names is signed and sent to every node; ${allow}`)
  const src = resolve(baseDir, source)
  if (!allowOutside && !within(baseDir, src)) throw new SourceProblem(`${outside} (${baseDir}): ".." climbs out of it, and whatever a source names is signed and sent to every node; ${allow}`)
  let real: string
  try {
    real = await realpath(src)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new SourceProblem(code === 'ENOENT' || code === 'ENOTDIR' ? `no such file: ${src}` : `cannot read ${src}: ${code ?? (err as Error).message}`)
  }
  if (!allowOutside && !within(await realpath(baseDir), real)) throw new SourceProblem(`${outside} (${baseDir}): it resolves through a symlink to ${real}; ${allow}`)
  const info = await stat(real)
  if (!info.isFile()) throw new SourceProblem(`${src} is not a regular file`)
  if (info.size > MAX_SOURCE_BYTES) throw new SourceProblem(`${src}: ${info.size} bytes is over the ${MAX_SOURCE_BYTES}-byte limit for a source`)
  return real
}

/**
 * Embeds each file resource's `source:` as its content. A source must lie inside `baseDir`
 * (the policy file's directory) unless `allowSourceOutside`: no absolute path, no `..`
 * climbing out, no symlink resolving out. Throws PolicySourceError naming each resource.
 */
export async function embedSources (policy: Policy, baseDir: string, file: string, opts: EmbedOptions = {}): Promise<Policy> {
  // Nothing to embed (the usual case): parsePolicy has checked everything already.
  if (policy.kind !== 'policy' || !policy.resources.some((r) => r.type === 'file' && r.source !== undefined)) return policy
  const problems: Array<{ path: string, index: number, message: string }> = []
  const resources = await Promise.all(policy.resources.map(async (r, i) => {
    if (r.type !== 'file' || r.source === undefined) return r
    try {
      const bytes = await readFile(await locateSource(r.source, baseDir, opts.allowSourceOutside === true))
      const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes)
      const isUtf8 = Buffer.from(text, 'utf8').equals(bytes)
      const { source: _source, ...rest } = r
      return isUtf8
        ? { ...rest, content: text, encoding: 'utf8' as const }
        : { ...rest, content: bytes.toString('base64'), encoding: 'base64' as const, template: false }
    } catch (err) {
      const why = err instanceof SourceProblem ? err.message : `cannot read ${resolve(baseDir, r.source)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
      problems.push({ path: `resources[${i}].source`, index: i, message: `resource "${r.id}": source "${r.source}" ${why.startsWith('is ') ? why : `cannot be embedded: ${why}`}` })
      return r
    }
  }))
  if (problems.length > 0) throw new PolicySourceError(file, await located(problems, opts.text))
  const embedded = { ...policy, resources }
  // parsePolicy could not see the templates inside source files; check them now, as signing will.
  for (const p of checkTemplates(embedded)) {
    const i = p.path[1] as number
    const r = policy.resources[i]
    if (r?.type === 'file' && r.source !== undefined) problems.push({ path: `resources[${i}].source`, index: i, message: `in "${r.source}": ${p.message}` })
  }
  if (problems.length > 0) throw new InvalidPolicyError(file, await located(problems, opts.text))
  return embedded
}

/** Problems with the line of each `source:` in the policy's text, when there is one. */
async function located (problems: Array<{ path: string, index: number, message: string }>, text: string | undefined): Promise<PolicyProblem[]> {
  if (text === undefined) return problems.map(({ path, message }) => ({ path, message }))
  const { locateInText } = await import('./parse.js')
  return problems.map(({ path, index, message }) => ({ path, message, ...locateInText(text, ['resources', index, 'source']) }))
}
