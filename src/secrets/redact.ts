import { MIN_REDACTED_LENGTH, REDACTED } from './constants.js'

/**
 * Replaces every secret value in text leaving an apply (errors, a command's output, a report)
 * with REDACTED. A command that prints its env would otherwise put a password in the receipt,
 * the log and the history. The longest values go first, so one that contains another is
 * replaced whole. Values shorter than MIN_REDACTED_LENGTH are left alone.
 */
export function redactor (values: Readonly<Record<string, string>> | undefined): ((text: string) => string) | undefined {
  const secrets = [...new Set(Object.values(values ?? {}))].filter((v) => v.length >= MIN_REDACTED_LENGTH).sort((a, b) => b.length - a.length)
  if (secrets.length === 0) return undefined
  return (text) => {
    let out = text
    for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED)
    return out
  }
}

/** A deep copy of JSON-like data with every string redacted. */
export function redactDeep<T> (data: T, redact: (text: string) => string): T {
  if (typeof data === 'string') return redact(data) as T
  if (Array.isArray(data)) return data.map((v) => redactDeep(v, redact)) as T
  if (data !== null && typeof data === 'object' && !(data instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, redactDeep(v, redact)])) as T
  }
  return data
}
