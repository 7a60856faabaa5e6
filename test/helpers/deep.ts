import { sha256Hex, signBytes, signingPayload, type EnvelopeHeader, type SigningKey } from '../../src/envelope/index.js'
import { FIXED_NOW } from './envelope.js'

// Hostile inputs nested far deeper than a policy may be. They are built as text: every
// recursive helper (canonicalJson, contentHash, JSON.stringify) would overflow on them.

/** `{"a":{"a":…"x"…}}`, `depth` objects deep. */
export function deepChain (depth: number): string {
  return '{"a":'.repeat(depth) + '"x"' + '}'.repeat(depth)
}

/**
 * Canonical JSON of a config policy whose `data` holds `copies` chains, each `depth` objects
 * deep: the shape of the issue's ~2 MB envelope (2,000 deep, 170 copies).
 */
export function deepPolicyText (name: string, depth: number, copies = 1): string {
  const chain = deepChain(depth)
  const data = Array.from({ length: copies }, (_, i) => `"k${String(i).padStart(6, '0')}":${chain}`).join(',')
  return `{"kind":"policy","name":"${name}","resources":[{"data":{${data}},"format":"json","id":"deep","path":"/etc/deep.json","type":"config"}]}`
}

export interface DeepEnvelopeOptions {
  name?: string
  depth: number
  copies?: number
  /** The signer named in the header. */
  key: SigningKey
  /** `zero`: the all-zero signature; `valid`: `key` really signs the header. */
  signature: 'zero' | 'valid'
  /** Defaults to the body's own hash. */
  hash?: string
}

/** Canonical envelope bytes around a deep policy (keys in RFC 8785 order). */
export function deepEnvelope (opts: DeepEnvelopeOptions): Uint8Array {
  const name = opts.name ?? 'web/deep'
  const body = deepPolicyText(name, opts.depth, opts.copies)
  const header: EnvelopeHeader = {
    format: 1,
    name,
    version: 1,
    hash: opts.hash ?? `sha256:${sha256Hex(body)}`,
    signer: opts.key.id,
    issuedAt: new Date(FIXED_NOW).toISOString()
  }
  const signature = opts.signature === 'zero' ? 'A'.repeat(86) : Buffer.from(signBytes(opts.key, signingPayload(header))).toString('base64url')
  return new TextEncoder().encode(
    `{"format":1,"hash":"${header.hash}","issuedAt":"${header.issuedAt}","name":"${name}","policy":${body},"signature":"${signature}","signer":"${header.signer}","version":1}`
  )
}
