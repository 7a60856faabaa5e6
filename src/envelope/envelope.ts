import { z } from '../vendor/zod.js'
import { canonicalBytes, canonicalJson, contentHash, sha256Hex } from './canonical.js'
import { ENVELOPE_FORMAT, ENVELOPE_SIGNING_CONTEXT, MAX_FORCE_REASON_CHARS } from './constants.js'
import { signBytes, type SigningKey } from './keys.js'
import { policyName, type Policy } from '../policy/index.js'

/**
 * The signed part of an envelope. The signature covers these fields; `hash` binds the
 * policy body, so the header alone can be gossiped and the body fetched and checked later.
 */
export const envelopeHeader = z.strictObject({
  format: z.literal(ENVELOPE_FORMAT),
  name: policyName,
  version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  signer: z.string().regex(/^ed25519:[A-Za-z0-9_-]{43}$/),
  issuedAt: z.iso.datetime(),
  /**
   * The id of the envelope this version supersedes (docs/versions.md): a node takes a newer
   * version only when it extends the one held. Absent: the first version, or an envelope
   * signed before chains existed.
   */
  prev: z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected an envelope id (64 hex digits)' }).optional(),
  /** Why this version replaces whatever a node holds, chain or not: the audit trail records it. */
  force: z.string().min(1).max(MAX_FORCE_REASON_CHARS).optional(),
  /**
   * Published with a staged rollout (docs/rollout.md): a node applies it only when a rollout
   * record for it includes the node, and until then keeps enforcing the version it had. In the
   * signed header, so no relay can strip it and have the whole fleet apply at once.
   */
  staged: z.literal(true).optional()
})

export const envelopeShape = z.strictObject({
  ...envelopeHeader.shape,
  policy: z.record(z.string(), z.unknown()),
  // 64 bytes are 86 base64url characters with 4 spare bits in the last one; they must be zero,
  // or 16 spellings of one signature would all verify, each a different envelope id.
  signature: z.string().regex(/^[A-Za-z0-9_-]{85}[AQgw]$/, { error: 'expected a 64-byte Ed25519 signature as unpadded base64url' })
})

export type EnvelopeHeader = z.output<typeof envelopeHeader>

/** A decoded envelope whose signature, content hash and signer have been checked. */
export interface VerifiedEnvelope extends EnvelopeHeader {
  policy: Policy
  signature: string
  /** sha256 hex of the envelope's exact bytes: its identity and gossip message id. */
  id: string
  /** The exact bytes, kept so the envelope is relayed and stored unchanged. */
  bytes: Uint8Array
}

export function signingPayload (header: EnvelopeHeader): Uint8Array {
  return canonicalBytes({ context: ENVELOPE_SIGNING_CONTEXT, header: pickHeader(header) })
}

export function pickHeader (e: EnvelopeHeader): EnvelopeHeader {
  return {
    format: e.format,
    name: e.name,
    version: e.version,
    hash: e.hash,
    signer: e.signer,
    issuedAt: e.issuedAt,
    ...(e.prev !== undefined ? { prev: e.prev } : {}),
    ...(e.force !== undefined ? { force: e.force } : {}),
    ...(e.staged === true ? { staged: true as const } : {})
  }
}

export function envelopeId (bytes: Uint8Array): string {
  return sha256Hex(bytes)
}

export interface SignOptions {
  version: number
  key: SigningKey
  /** The id of the envelope this version supersedes; omit for a first version. */
  prev?: string
  /** A reason to replace whatever nodes hold, chain or not (`grapevine resolve`, an operator's override). */
  force?: string
  /** Staged: nodes wait for a rollout record to include them before they apply it. */
  staged?: boolean
  /** Injected clock; defaults to the wall clock. */
  now?: () => number
}

/** Signs a validated policy as a given version. Returns the canonical envelope bytes. */
export function signPolicy (policy: Policy, opts: SignOptions): Uint8Array {
  if (!Number.isSafeInteger(opts.version) || opts.version < 1) throw new RangeError(`version must be a positive integer: current value is ${opts.version}`)
  const header: EnvelopeHeader = {
    format: ENVELOPE_FORMAT,
    name: policy.name,
    version: opts.version,
    hash: contentHash(policy),
    signer: opts.key.id,
    issuedAt: new Date((opts.now ?? Date.now)()).toISOString(),
    ...(opts.prev !== undefined ? { prev: opts.prev } : {}),
    ...(opts.force !== undefined ? { force: opts.force } : {}),
    ...(opts.staged === true ? { staged: true as const } : {})
  }
  const signature = Buffer.from(signBytes(opts.key, signingPayload(header))).toString('base64url')
  return new TextEncoder().encode(canonicalJson({ ...header, policy, signature }))
}
