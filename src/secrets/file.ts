import { createRequire } from 'node:module'
import { open } from 'node:fs/promises'
import type * as JsYaml from 'js-yaml'
import { SECRET_NAME } from '../policy/template.js'
import { MAX_SECRET_BYTES, MAX_SECRETS_FILE_BYTES } from './constants.js'
import { SecretsFileError } from './errors.js'

export interface SecretsFile {
  values: Record<string, string>
  /** Said to the admin, never fatal: a file others can read. */
  warnings: string[]
}

/** Reads stdin to its end, bounded. */
async function readStdin (max: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length
    if (size > max) throw new SecretsFileError(`the secrets on stdin are over ${max} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/**
 * Reads a secrets file: a flat YAML or JSON map of names to values (strings, numbers or
 * booleans, kept as text). `-` reads stdin, so a password manager's CLI can pipe it in
 * (`pass show grapevine/db | grapevine publish … --secrets -`), and `<(command)` works too.
 * Errors name the file, the line and the key, never a value: a YAML parser's own message
 * quotes the line it stopped at.
 */
export async function readSecretsFile (path: string): Promise<SecretsFile> {
  const warnings: string[] = []
  let bytes: Buffer
  const where = path === '-' ? 'the secrets on stdin' : path
  if (path === '-') bytes = await readStdin(MAX_SECRETS_FILE_BYTES)
  else {
    let fh
    try {
      fh = await open(path, 'r')
    } catch (err) {
      throw new SecretsFileError(`cannot read the secrets file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
    }
    try {
      const info = await fh.stat()
      if (info.isFile()) {
        if (info.size > MAX_SECRETS_FILE_BYTES) throw new SecretsFileError(`${path} is ${info.size} bytes, over the ${MAX_SECRETS_FILE_BYTES}-byte limit for a secrets file`)
        if ((info.mode & 0o077) !== 0) warnings.push(`${path} is readable by other users (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`)
      }
      bytes = await fh.readFile()
      if (bytes.length > MAX_SECRETS_FILE_BYTES) throw new SecretsFileError(`${path} is over the ${MAX_SECRETS_FILE_BYTES}-byte limit for a secrets file`)
    } finally {
      await fh.close()
    }
  }
  return { values: parseSecrets(bytes, where), warnings }
}

/** Parses the text of a secrets file (see readSecretsFile). */
export function parseSecrets (bytes: Uint8Array, where: string): Record<string, string> {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new SecretsFileError(`${where} is not UTF-8 text`)
  }
  if (text.trim() === '') throw new SecretsFileError(`${where} is empty: expected a map of secret names to values, like "db_password: …"`)
  let data: unknown
  try {
    const yaml = createRequire(import.meta.url)('js-yaml') as typeof JsYaml
    // JSON is YAML; the core schema keeps `yes` and dates as the text written.
    data = yaml.load(text, { schema: yaml.CORE_SCHEMA, json: true })
  } catch (err) {
    const mark = (err as { mark?: { line?: number, column?: number } }).mark
    throw new SecretsFileError(`${where}${mark?.line !== undefined ? `:${mark.line + 1}:${(mark.column ?? 0) + 1}` : ''}: not valid YAML or JSON`)
  }
  if (data === null || data === undefined) throw new SecretsFileError(`${where} is empty: expected a map of secret names to values, like "db_password: …"`)
  if (typeof data !== 'object' || Array.isArray(data)) throw new SecretsFileError(`${where}: expected a map of secret names to values, like "db_password: …"`)
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(data)) {
    if (!SECRET_NAME.test(name)) throw new SecretsFileError(`${where}: "${name.slice(0, 100)}" is not a secret name (letters, digits, "_" and "-", at most 100)`)
    if (typeof value === 'string') out[name] = value
    else if (typeof value === 'number' || typeof value === 'boolean') out[name] = String(value)
    else throw new SecretsFileError(`${where}: secret "${name}" is ${value === null ? 'null' : Array.isArray(value) ? 'a list' : 'a map'}; a secret is a string, number or boolean`)
    if (Buffer.byteLength(out[name] as string) > MAX_SECRET_BYTES) throw new SecretsFileError(`${where}: secret "${name}" is over ${MAX_SECRET_BYTES} bytes`)
  }
  return out
}

/** The values a policy refers to, and only those: a policy carries no secret it does not use. */
export function pickSecrets (values: Readonly<Record<string, string>>, names: readonly string[], where: string): Record<string, string> {
  const missing = names.filter((n) => !Object.hasOwn(values, n))
  if (missing.length > 0) throw new SecretsFileError(`${where} has no ${missing.map((n) => `"${n}"`).join(', ')}, which the policy refers to`)
  return Object.fromEntries(names.map((n) => [n, values[n] as string]))
}
