import { homedir } from 'node:os'
import { join } from 'node:path'

/**
 * Where node state lives unless --state says otherwise: $GRAPEVINE_STATE, then
 * /var/lib/grapevine for root (as a system service), else ~/.local/state/grapevine.
 */
export function defaultStateDir (): string {
  const env = process.env.GRAPEVINE_STATE
  if (env !== undefined && env !== '') return env
  if (typeof process.getuid === 'function' && process.getuid() === 0) return '/var/lib/grapevine'
  return join(homedir(), '.local', 'state', 'grapevine')
}

/** Parses repeated `--tag k=v` flags into a map. */
export function parseTags (values: readonly string[] | undefined): Record<string, string> {
  const tags: Record<string, string> = {}
  for (const v of values ?? []) {
    const i = v.indexOf('=')
    if (i <= 0) throw new Error(`--tag expects key=value, got "${v}"`)
    tags[v.slice(0, i)] = v.slice(i + 1)
  }
  return tags
}

/** Commander collector for repeatable options. */
export function collect (value: string, previous: string[] = []): string[] {
  return [...previous, value]
}
