import { isDeepStrictEqual } from 'node:util'
import type { ConfigFormat } from '../policy/index.js'
import { ConfigFormatError } from './errors.js'
import { parseEnv, stringifyEnv } from './env-file.js'

/** Reads and writes one config format. */
export interface ConfigCodec {
  stringify: (data: Record<string, unknown>) => string
  parse: (text: string) => unknown
}

const codecs = new Map<ConfigFormat, Promise<ConfigCodec>>()

/** The codec for a format; its library is loaded on first use so runs without that format never pay for it. */
export async function configCodec (format: ConfigFormat): Promise<ConfigCodec> {
  let codec = codecs.get(format)
  if (codec === undefined) {
    codec = load(format)
    codecs.set(format, codec)
  }
  return await codec
}

async function load (format: ConfigFormat): Promise<ConfigCodec> {
  switch (format) {
    case 'json': return { stringify: (data) => JSON.stringify(data, null, 2) + '\n', parse: (text) => JSON.parse(text) }
    case 'yaml': {
      const yaml = await import('yaml')
      return { stringify: (data) => yaml.stringify(data), parse: (text) => yaml.parse(text, { maxAliasCount: 100 }) }
    }
    case 'toml': {
      const toml = await import('smol-toml')
      return {
        stringify: (data) => {
          // smol-toml silently drops nulls; TOML has no null, so say so instead of losing the key.
          const at = findNull(data, '')
          if (at !== undefined) throw new ConfigFormatError('toml', `${at}: TOML has no null; leave the key out or give it a value`)
          return toml.stringify(data)
        },
        parse: (text) => toml.parse(text)
      }
    }
    case 'ini': {
      const ini = (await import('ini')).default
      // Top-level scalars first, then nested objects as [section] and [section.sub].
      return { stringify: (data) => ini.stringify(data, { whitespace: false }), parse: (text) => ini.parse(text) }
    }
    case 'env': return { stringify: stringifyEnv, parse: parseEnv }
  }
}

/** The text a config resource writes for `data`; throws ConfigFormatError when the format cannot hold the data. */
export function stringifyConfig (codec: ConfigCodec, format: ConfigFormat, data: Record<string, unknown>): string {
  try {
    return codec.stringify(data)
  } catch (err) {
    if (err instanceof ConfigFormatError) throw err
    throw new ConfigFormatError(format, (err as Error).message)
  }
}

/**
 * Whether existing text holds the same data as the text we would write. Both go through the
 * same parser, so formatting, key order and comments do not matter, and neither do the types
 * a format cannot keep (INI and env read everything back as strings). Unparseable means different.
 */
export function sameConfig (codec: ConfigCodec, existing: string, desired: string): boolean {
  if (existing === desired) return true
  try {
    return isDeepStrictEqual(codec.parse(existing), codec.parse(desired))
  } catch {
    return false
  }
}

function findNull (data: unknown, path: string): string | undefined {
  if (data === null) return path === '' ? '(top level)' : path
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++) {
      const at = findNull(data[i], `${path}[${i}]`)
      if (at !== undefined) return at
    }
  } else if (typeof data === 'object' && data !== undefined) {
    for (const [k, v] of Object.entries(data)) {
      const at = findNull(v, path === '' ? k : `${path}.${k}`)
      if (at !== undefined) return at
    }
  }
  return undefined
}
