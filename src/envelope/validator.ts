import { z } from '../vendor/zod.js'
import { canonicalJson, sha256Hex } from './canonical.js'
import { MAX_ENVELOPE_BYTES } from './constants.js'
import { envelopeShape, envelopeId, signingPayload, type EnvelopeHeader, type VerifiedEnvelope } from './envelope.js'
import { verifyBytes } from './keys.js'
import { topLevelMembers, type Member } from './members.js'
import {
  BadSignatureError, ContentHashMismatchError, EnvelopeTooLargeError, InvalidEnvelopeError, MalformedEnvelopeError
} from './errors.js'
import { validatePolicyObject, InvalidPolicyError, formatPath, formatDeepPath, tooDeepAt, MAX_POLICY_DEPTH, PolicyTooDeepError, type Policy } from '../policy/index.js'

/** Decides whether a signer may publish a policy; throws a named error when not. */
export interface Authorizer {
  /** May the signer publish this name? Asked of the signed header alone, before the policy is read. */
  authorize: (signer: string, name: string) => void
  /**
   * Does the valid policy stay within what its signer may do (resource types, paths, exec)?
   * Asked last. An authorizer without it puts no limit on power (tools that check bytes, not trust).
   */
  authorizePolicy?: (signer: string, policy: Policy) => void
}

export interface ValidateOptions {
  maxBytes?: number
}

/** A signed header and its signature: what an announcement is, and what an envelope opens to. */
export interface SignedHeader extends EnvelopeHeader {
  signature: string
}

/**
 * An envelope whose header is verified (signature, trust, name scope) but whose policy has
 * not been read yet. The caller applies the version rule to the header, then calls
 * `complete()` for the rest, or drops it: a replay costs no walk over its policy.
 */
export interface OpenedEnvelope extends SignedHeader {
  /** sha256 hex of the envelope's exact bytes: its identity and gossip message id. */
  id: string
  bytes: Uint8Array
  /** Content hash, depth, canonical form, policy schema and templates, limits; throws a named error. */
  complete: () => VerifiedEnvelope
}

// ignoreBOM keeps a leading BOM in the text, so it fails to parse instead of being silently
// dropped (which would let two byte strings, two ids, carry one envelope).
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** Size, UTF-8, JSON. JSON.parse does not recurse, so no nesting can overflow the stack here. */
function decodeJson (bytes: Uint8Array, maxBytes: number, what: string): { text: string, raw: unknown } {
  if (bytes.byteLength > maxBytes) throw new EnvelopeTooLargeError(bytes.byteLength, maxBytes)
  try {
    const text = decoder.decode(bytes)
    return { text, raw: JSON.parse(text) }
  } catch (err) {
    throw new MalformedEnvelopeError(`${what} is not UTF-8 JSON: ${(err as Error).message}`)
  }
}

/** One value has exactly one encoding, so any change to the bytes changes what is verified. */
function assertCanonical (text: string, raw: unknown, what: string): void {
  let canonical: string
  try {
    canonical = canonicalJson(raw)
  } catch {
    throw new MalformedEnvelopeError(`${what} is not canonical JSON (RFC 8785)`)
  }
  if (canonical !== text) throw new MalformedEnvelopeError(`${what} is not canonical JSON (RFC 8785)`)
}

function parseShape<T extends z.ZodType> (shape: T, raw: unknown, what: string): z.output<T> {
  const parsed = shape.safeParse(raw)
  if (!parsed.success) {
    const first = parsed.error.issues[0] as z.core.$ZodIssue
    throw new InvalidEnvelopeError(`${what} field ${formatPath(first.path) || '(root)'}: ${first.message}`)
  }
  return parsed.data
}

/**
 * Size, UTF-8, canonical JSON (RFC 8785), then shape: the cheap checks a small signed object
 * on the wire (an announcement) passes before any crypto. `what` names it in errors.
 */
export function decodeCanonical<T extends z.ZodType> (bytes: Uint8Array, maxBytes: number, shape: T, what: string): z.output<T> {
  const { text, raw } = decodeJson(bytes, maxBytes, what)
  assertCanonical(text, raw, what)
  return parseShape(shape, raw, what)
}

/** The fields the signature covers, and the signature: everything in an envelope but its policy. */
export const signedHeaderShape = envelopeShape.omit({ policy: true })

/** Signature, then trust and name scope: one signature check is all an unsigned or untrusted header costs. */
export function verifySignedHeader (header: SignedHeader, trust: Authorizer, what = ''): void {
  if (!verifyBytes(header.signer, signingPayload(header), Buffer.from(header.signature, 'base64url'))) {
    throw new BadSignatureError(`signature on ${what}${header.name} v${header.version} does not verify for signer ${header.signer}`)
  }
  trust.authorize(header.signer, header.name)
}

/**
 * Bytes of everything in an envelope but its policy. A header and signature take ~420 bytes,
 * about 1.5 KiB with the longest name and a forced version's reason: the bound keeps what is
 * parsed before the signature check small, however the rest is shaped.
 */
const MAX_HEADER_BYTES = 4096

const POLICY_KEY = new TextEncoder().encode('"policy"')
const OPEN_BRACE = 0x7b

function isPolicyKey (b: Uint8Array, m: Member): boolean {
  if (m.keyEnd - m.keyStart !== POLICY_KEY.length) return false
  for (let i = 0; i < POLICY_KEY.length; i++) if (b[m.keyStart + i] !== POLICY_KEY[i]) return false
  return true
}

/** The header (every member but the policy) parsed, and where the policy's bytes lie. */
function splitEnvelope (bytes: Uint8Array): { fields: Record<string, unknown>, policy?: Member } {
  const members = topLevelMembers(bytes)
  if (typeof members === 'string') throw new MalformedEnvelopeError(`envelope is not UTF-8 JSON: ${members}`)
  let policy: Member | undefined
  const parts: Uint8Array[] = []
  let size = 2
  for (const m of members) {
    if (!isPolicyKey(bytes, m)) {
      parts.push(bytes.subarray(m.keyStart, m.valueEnd))
      size += m.valueEnd - m.keyStart + 1
    } else if (policy === undefined) policy = m
    else throw new MalformedEnvelopeError('envelope is not canonical JSON (RFC 8785): "policy" appears twice')
  }
  if (size > MAX_HEADER_BYTES) throw new InvalidEnvelopeError(`envelope header (everything but the policy) is over ${MAX_HEADER_BYTES} bytes`)
  let fields: unknown
  try {
    fields = JSON.parse(`{${parts.map((p) => decoder.decode(p)).join(',')}}`)
  } catch (err) {
    throw new MalformedEnvelopeError(`envelope is not UTF-8 JSON: ${(err as Error).message}`)
  }
  return policy === undefined ? { fields: fields as Record<string, unknown> } : { fields: fields as Record<string, unknown>, policy }
}

/**
 * The cheap half of validation: size, the header's JSON and shape, signature, trust and name
 * scope. The policy's bytes are stepped over, never decoded, so an unsigned, untrusted or
 * out-of-scope envelope, however big or deep its policy, costs one pass over its bytes, a
 * parse of a few hundred bytes and one signature check.
 */
export function openEnvelope (bytes: Uint8Array, trust: Authorizer, opts: ValidateOptions = {}): OpenedEnvelope {
  const maxBytes = opts.maxBytes ?? MAX_ENVELOPE_BYTES
  if (bytes.byteLength > maxBytes) throw new EnvelopeTooLargeError(bytes.byteLength, maxBytes)
  const { fields, policy: at } = splitEnvelope(bytes)
  const header = parseShape(signedHeaderShape, fields, 'envelope')
  if (at === undefined) throw new InvalidEnvelopeError('envelope field policy: required field is missing (expected an object)')
  if (bytes[at.valueStart] !== OPEN_BRACE) throw new InvalidEnvelopeError('envelope field policy: expected an object')
  verifySignedHeader(header, trust)
  const label = `${header.name} v${header.version}`
  const id = envelopeId(bytes)
  return {
    ...header,
    id,
    bytes,
    complete: () => {
      // The signed hash binds the policy's canonical bytes: hashing them as they lie costs one
      // pass, and refuses a signed header carrying another body (or the same body spelled
      // another way) before anything decodes it.
      const body = bytes.subarray(at.valueStart, at.valueEnd)
      if (`sha256:${sha256Hex(body)}` !== header.hash) {
        throw new ContentHashMismatchError(`policy content of ${label} does not match the signed hash`)
      }
      let raw: unknown
      try {
        raw = JSON.parse(decoder.decode(body))
      } catch (err) {
        throw new MalformedEnvelopeError(`policy of ${label} is not UTF-8 JSON: ${(err as Error).message}`)
      }
      // Everything after this recurses (canonical JSON, the schema): bound the depth first, without recursion.
      const tooDeep = tooDeepAt(raw)
      if (tooDeep !== undefined) {
        const err = new PolicyTooDeepError(`envelope ${label}`, { path: formatDeepPath(tooDeep) }, MAX_POLICY_DEPTH)
        throw new InvalidEnvelopeError(`policy in envelope is invalid: ${err.message}`, { cause: err })
      }
      assertCanonical(decoder.decode(bytes), { ...fields, policy: raw }, `envelope ${label}`)
      let policy: Policy
      try {
        policy = validatePolicyObject(raw, `envelope ${label}`)
      } catch (err) {
        if (err instanceof InvalidPolicyError) throw new InvalidEnvelopeError(`policy in envelope is invalid: ${err.message}`, { cause: err })
        throw err
      }
      if (policy.name !== header.name) throw new InvalidEnvelopeError(`envelope name "${header.name}" does not match its policy's name "${policy.name}"`)
      trust.authorizePolicy?.(header.signer, policy)
      return { ...header, policy, id, bytes }
    }
  }
}

/**
 * The pure validator: bytes in, a verified envelope or a named error out. Cheapest checks
 * first (docs/trust.md, "Order of checks"): openEnvelope, then its complete(). Callers that
 * apply the version rule call the two halves themselves, with the rule between them.
 */
export function validateEnvelope (bytes: Uint8Array, trust: Authorizer, opts: ValidateOptions = {}): VerifiedEnvelope {
  return openEnvelope(bytes, trust, opts).complete()
}
