import { readFile, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parsePolicy } from './parse.js'
import { checkTemplates } from './template.js'
import { InvalidPolicyError, PolicyTooLargeError } from './errors.js'
import { MAX_POLICY_FILE_BYTES, MAX_SOURCE_BYTES } from './constants.js'
import type { Policy } from './schema.js'

/**
 * Reads, validates and completes a policy file: `source:` files beside it are embedded
 * as content, so the policy that is signed and gossiped is self-contained.
 */
export async function loadPolicyFile (file: string): Promise<Policy> {
  let size: number
  try {
    size = (await stat(file)).size
  } catch (err) {
    throw new InvalidPolicyError(file, [{ path: '', message: `cannot read the policy file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }])
  }
  if (size > MAX_POLICY_FILE_BYTES) throw new PolicyTooLargeError(file, size, MAX_POLICY_FILE_BYTES)
  const policy = parsePolicy(await readFile(file, 'utf8'), file)
  return await embedSources(policy, dirname(resolve(file)), file)
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
