import { policyName } from '../policy/schema.js'

/** The most history entries one request may ask for: the answer stays a few MB at most. */
export const MAX_HISTORY_LIMIT = 10_000

/** A request the API refuses before doing anything: 4xx, with a reason a script can branch on. */
export class ApiRequestRefusedError extends Error {
  static override name = 'ApiRequestRefusedError'
  override name = 'ApiRequestRefusedError'
  constructor (readonly status: number, readonly reason: string, message: string) {
    super(message)
  }
}

function bad (reason: string, message: string): ApiRequestRefusedError {
  return new ApiRequestRefusedError(400, reason, message)
}

/** A route's query parameters: only those it names, each at most once. */
export function queryOf (url: URL, allowed: readonly string[]): Map<string, string> {
  const q = new Map<string, string>()
  for (const [key, value] of url.searchParams) {
    if (!allowed.includes(key)) throw bad('unknown-parameter', `unknown parameter "${key}"${allowed.length > 0 ? `: this route takes ${allowed.join(', ')}` : ': this route takes none'}`)
    if (q.has(key)) throw bad('repeated-parameter', `parameter "${key}" given more than once`)
    q.set(key, value)
  }
  return q
}

function required (q: Map<string, string>, key: string): string {
  const value = q.get(key)
  if (value === undefined) throw bad('missing-parameter', `parameter "${key}" is required`)
  return value
}

/** A policy name by the policy schema's own rule, so it can never name a path outside the store. */
export function nameParam (q: Map<string, string>, key = 'name'): string {
  const value = required(q, key)
  if (!policyName.safeParse(value).success) throw bad(`bad-${key}`, `${key} must be a policy name such as "web/nginx" (lower case, segments separated by "/", no "." or ".." segments): got ${JSON.stringify(value.slice(0, 200))}`)
  return value
}

/** A positive safe integer written plainly (no sign, exponent, hex or leading zero), at most `max`. */
export function countParam (q: Map<string, string>, key: string, opts: { fallback?: number, max?: number } = {}): number {
  const value = opts.fallback !== undefined && !q.has(key) ? String(opts.fallback) : required(q, key)
  const n = /^[1-9]\d{0,15}$/.test(value) ? Number(value) : NaN
  const max = opts.max ?? Number.MAX_SAFE_INTEGER
  if (!Number.isSafeInteger(n) || n > max) throw bad(`bad-${key}`, `${key} must be a whole number from 1 to ${max}: got ${JSON.stringify(value.slice(0, 40))}`)
  return n
}
