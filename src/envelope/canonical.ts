import canonicalize from 'canonicalize'
import { createHash } from 'node:crypto'

/** RFC 8785 (JCS) canonical JSON: the same value always has the same bytes, whatever the key order. */
export function canonicalJson (value: unknown): string {
  const out = canonicalize(value)
  if (out === undefined) throw new TypeError('value cannot be canonicalised as JSON')
  return out
}

export function canonicalBytes (value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value))
}

export function sha256Hex (bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Content hash of a policy: `sha256:<hex>` of its canonical JSON. */
export function contentHash (policy: unknown): string {
  return `sha256:${sha256Hex(canonicalBytes(policy))}`
}
