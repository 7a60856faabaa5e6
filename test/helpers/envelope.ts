import { canonicalBytes, contentHash, generateSigningKey, signBytes, signPolicy, signingPayload, type EnvelopeHeader, type SigningKey } from '../../src/envelope/index.js'
import { TRUST_POLICY_NAME, validatePolicyObject, type Policy, type TrustPolicy } from '../../src/policy/index.js'

/** A fixed clock for reproducible envelopes: 2025-01-02T03:04:05.000Z. */
export const FIXED_NOW = Date.UTC(2025, 0, 2, 3, 4, 5)

/** An envelope's fields as plain data, to edit and re-encode when forging test inputs. */
export interface EnvelopeFields extends Omit<EnvelopeHeader, 'format'> {
  /** Any number, so tests can forge envelopes of unknown formats. */
  format: number
  policy: unknown
  signature: string
  [field: string]: unknown
}

export function decodeEnvelope (bytes: Uint8Array): EnvelopeFields {
  return JSON.parse(new TextDecoder().decode(bytes)) as EnvelopeFields
}

/** Canonical bytes of any envelope-shaped value, valid or not. */
export function encodeEnvelope (fields: Record<string, unknown>): Uint8Array {
  return canonicalBytes(fields)
}

/** Signs the header as it now stands with `key` (and makes `key` the signer). */
export function resign (fields: EnvelopeFields, key: SigningKey): EnvelopeFields {
  const signed = { ...fields, signer: key.id }
  // signingPayload only reads the header fields; a forged format is signed as it stands.
  const payload = signingPayload(signed as unknown as EnvelopeHeader)
  return { ...signed, signature: Buffer.from(signBytes(key, payload)).toString('base64url') }
}

/** A validated policy from plain data, with defaults filled in. */
export function policy (data: unknown): Policy {
  return validatePolicyObject(data, '<test>')
}

export function configPolicy (name: string, resources: unknown[] = [], extra: Record<string, unknown> = {}): Policy {
  return policy({ kind: 'policy', name, ...extra, resources })
}

export function trustPolicy (admins: TrustPolicy['admins'], revoked: string[] = []): TrustPolicy {
  return policy({ kind: 'trust', name: TRUST_POLICY_NAME, admins, revoked }) as TrustPolicy
}

export interface SignedOptions {
  key: SigningKey
  version?: number
  now?: number
  /** The id of the envelope this one supersedes. */
  prev?: string
  force?: string
  /** Signed for a staged rollout. */
  staged?: boolean
}

/** Signs `p` the way `grapevine sign` does and returns the canonical envelope bytes. */
export function signed (p: Policy, opts: SignedOptions): Uint8Array {
  return signPolicy(p, { key: opts.key, version: opts.version ?? 1, now: () => opts.now ?? FIXED_NOW, ...(opts.prev !== undefined ? { prev: opts.prev } : {}), ...(opts.force !== undefined ? { force: opts.force } : {}), ...(opts.staged === true ? { staged: true } : {}) })
}

/** Envelope fields whose hash is over `body` but whose body can be anything, signed by `key`. */
export function signedOver (body: unknown, key: SigningKey, header: Partial<EnvelopeHeader> = {}): EnvelopeFields {
  const name = (body as { name?: unknown }).name
  const fields: EnvelopeFields = {
    format: 1,
    name: typeof name === 'string' ? name : 'test/policy',
    version: 1,
    hash: contentHash(body),
    signer: key.id,
    issuedAt: new Date(FIXED_NOW).toISOString(),
    ...header,
    policy: body,
    signature: ''
  }
  return resign(fields, key)
}

/** Keys for a small trust set-up: one root, admins with different scopes, and a stranger. */
export function makeKeys (): Record<'root' | 'webAdmin' | 'starAdmin' | 'revokedAdmin' | 'stranger', SigningKey> {
  return {
    root: generateSigningKey(),
    webAdmin: generateSigningKey(),
    starAdmin: generateSigningKey(),
    revokedAdmin: generateSigningKey(),
    stranger: generateSigningKey()
  }
}
