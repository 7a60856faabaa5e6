import { z } from '../vendor/zod.js'
import { canonicalJson, contentHash } from './canonical.js'
import { MAX_ENVELOPE_BYTES } from './constants.js'
import { envelopeShape, envelopeId, signingPayload, type VerifiedEnvelope } from './envelope.js'
import { verifyBytes } from './keys.js'
import {
  BadSignatureError, ContentHashMismatchError, EnvelopeTooLargeError, InvalidEnvelopeError, MalformedEnvelopeError
} from './errors.js'
import { validatePolicyObject, InvalidPolicyError, formatPath } from '../policy/index.js'

/** Decides whether a signer may publish a policy name; throws a named error when not. */
export interface Authorizer {
  authorize: (signer: string, name: string) => void
}

export interface ValidateOptions {
  maxBytes?: number
}

// ignoreBOM keeps a leading BOM in the text, so it fails the canonical check instead of being
// silently dropped (which would let two byte strings, two ids, carry one envelope).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Size, UTF-8, canonical JSON (RFC 8785), then shape: the cheap checks every signed object on
 * the wire (an envelope, an announcement) passes before any crypto. `what` names it in errors.
 */
export function decodeCanonical<T extends z.ZodType> (bytes: Uint8Array, maxBytes: number, shape: T, what: string): z.output<T> {
  if (bytes.byteLength > maxBytes) throw new EnvelopeTooLargeError(bytes.byteLength, maxBytes)
  let text: string
  let raw: unknown
  try {
    text = decoder.decode(bytes)
    raw = JSON.parse(text)
  } catch (err) {
    throw new MalformedEnvelopeError(`${what} is not UTF-8 JSON: ${(err as Error).message}`)
  }
  // One value has exactly one encoding, so any change to the bytes changes what is verified.
  let canonical: string
  try {
    canonical = canonicalJson(raw)
  } catch {
    throw new MalformedEnvelopeError(`${what} is not canonical JSON (RFC 8785)`)
  }
  if (canonical !== text) throw new MalformedEnvelopeError(`${what} is not canonical JSON (RFC 8785)`)
  const parsed = shape.safeParse(raw)
  if (!parsed.success) {
    const first = parsed.error.issues[0] as z.core.$ZodIssue
    throw new InvalidEnvelopeError(`${what} field ${formatPath(first.path) || '(root)'}: ${first.message}`)
  }
  return parsed.data
}

/**
 * The pure validator: bytes in, a verified envelope or a named error out. Checks run
 * cheapest first — size, decode, schema, signature (and content hash), trust and scope —
 * so garbage costs almost nothing and only well-formed envelopes reach the crypto.
 */
export function validateEnvelope (bytes: Uint8Array, trust: Authorizer, opts: ValidateOptions = {}): VerifiedEnvelope {
  const env = decodeCanonical(bytes, opts.maxBytes ?? MAX_ENVELOPE_BYTES, envelopeShape, 'envelope')
  let policy
  try {
    policy = validatePolicyObject(env.policy, `envelope ${env.name} v${env.version}`)
  } catch (err) {
    if (err instanceof InvalidPolicyError) throw new InvalidEnvelopeError(`policy in envelope is invalid: ${err.message}`, { cause: err })
    throw err
  }
  if (policy.name !== env.name) throw new InvalidEnvelopeError(`envelope name "${env.name}" does not match its policy's name "${policy.name}"`)

  if (!verifyBytes(env.signer, signingPayload(env), Buffer.from(env.signature, 'base64url'))) {
    throw new BadSignatureError(`signature on ${env.name} v${env.version} does not verify for signer ${env.signer}`)
  }
  // Hash the policy as it travelled, not as the schema normalised it, so defaults cannot mask a change.
  if (contentHash(env.policy) !== env.hash) throw new ContentHashMismatchError(`policy content of ${env.name} v${env.version} does not match the signed hash`)

  trust.authorize(env.signer, env.name)

  const { policy: _raw, ...header } = env
  return { ...header, policy, id: envelopeId(bytes), bytes }
}
