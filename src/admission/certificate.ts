import { z } from '../vendor/zod.js'
import { canonicalBytes, canonicalJson, signBytes, verifyBytes, type SigningKey } from '../envelope/index.js'
import { ADMISSION_SIGNING_CONTEXT, MAX_ADMISSION_BYTES, MAX_ADMISSION_TAGS } from './constants.js'
import {
  AdmissionExpiredError, AdmissionSignatureError, AdmissionWrongPeerError, InvalidAdmissionError, RevokedNodeError, UnknownEnrollerError, type AdmissionError
} from './errors.js'

const keyId = z.string().regex(/^ed25519:[A-Za-z0-9_-]{43}$/)
const tagKey = z.string().max(64).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/)

/** What an enroller vouches for: this peer id is a fleet member, called `name`, with these tags. */
export const admissionBody = z.strictObject({
  format: z.literal(1),
  kind: z.literal('admission'),
  /** The node's libp2p peer id: the one identity a node cannot choose for another. */
  peer: z.string().min(1).max(128),
  name: z.string().min(1).max(200),
  tags: z.record(tagKey, z.string().max(128)).refine((t) => Object.keys(t).length <= MAX_ADMISSION_TAGS, { error: `at most ${MAX_ADMISSION_TAGS} tags` }).optional(),
  enroller: keyId,
  issuedAt: z.iso.datetime(),
  expires: z.iso.datetime().optional()
})

/** A certificate as it travels: the body and the enroller's signature over it. */
export const admissionCertificate = admissionBody.extend({ signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/) })

export type AdmissionBody = z.output<typeof admissionBody>
export type AdmissionCertificate = z.output<typeof admissionCertificate>

/** A node as its certificate admits it. Tags here are the enroller's word, unlike those a node reports about itself. */
export interface AdmittedIdentity {
  peer: string
  name: string
  tags: Record<string, string>
  enroller: string
  issuedAt: string
  expires?: string
}

/** What admission needs from the trust policy (TrustStore implements it). */
export interface AdmissionTrust {
  /** Whether this key may admit nodes: a root, or an enroller the trust policy lists, and not revoked. */
  mayEnroll: (key: string) => boolean
  isNodeRevoked: (peer: string) => boolean
  /** False while the trust policy lists no enrollers: then every node counts (the transition rule, docs/admission.md). */
  readonly admissionEnforced: boolean
}

export interface SignAdmissionOptions {
  peer: string
  name: string
  tags?: Record<string, string>
  key: SigningKey
  /** Milliseconds since the epoch. */
  issuedAt: number
  expires?: number
}

function payload (body: AdmissionBody): Uint8Array {
  return canonicalBytes({ context: ADMISSION_SIGNING_CONTEXT, body })
}

/** Pure: signs a certificate; throws InvalidAdmissionError for fields the verifier would refuse. */
export function signAdmission (opts: SignAdmissionOptions): Uint8Array {
  const raw = {
    format: 1,
    kind: 'admission',
    peer: opts.peer,
    name: opts.name,
    ...(opts.tags !== undefined && Object.keys(opts.tags).length > 0 ? { tags: opts.tags } : {}),
    enroller: opts.key.id,
    issuedAt: new Date(opts.issuedAt).toISOString(),
    ...(opts.expires !== undefined ? { expires: new Date(opts.expires).toISOString() } : {})
  }
  const body = parse(admissionBody, raw)
  const signature = Buffer.from(signBytes(opts.key, payload(body))).toString('base64url')
  const bytes = new TextEncoder().encode(canonicalJson({ ...body, signature }))
  if (bytes.byteLength > MAX_ADMISSION_BYTES) throw new InvalidAdmissionError(`the certificate would be ${bytes.byteLength} bytes, over the ${MAX_ADMISSION_BYTES}-byte limit: fewer or shorter tags`)
  return bytes
}

function parse<T extends z.ZodType> (schema: T, raw: unknown): z.output<T> {
  const r = schema.safeParse(raw)
  if (r.success) return r.data
  const issue = r.error.issues[0]
  throw new InvalidAdmissionError(`admission certificate ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`)
}

/**
 * Pure, the part that does not depend on trust: size, decode, shape and the enroller's
 * signature. Its result can be kept and judged again whenever the trust policy or the clock moves.
 */
export function openAdmission (input: Uint8Array | unknown): AdmissionCertificate {
  let raw = input
  if (input instanceof Uint8Array) {
    if (input.byteLength > MAX_ADMISSION_BYTES) throw new InvalidAdmissionError(`admission certificate is ${input.byteLength} bytes, over the ${MAX_ADMISSION_BYTES}-byte limit`)
    try {
      raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(input))
    } catch {
      throw new InvalidAdmissionError('admission certificate is not UTF-8 JSON')
    }
  }
  const cert = parse(admissionCertificate, raw)
  const { signature, ...body } = cert
  if (!verifyBytes(body.enroller, payload(body), Buffer.from(signature, 'base64url'))) {
    throw new AdmissionSignatureError(`admission certificate for ${body.peer} does not verify for enroller ${body.enroller}: forged or altered`)
  }
  return cert
}

export interface JudgeOptions {
  /** The peer id that showed the certificate; omitted, any. */
  peer?: string
  now: number
}

/** Pure: whether an opened certificate admits its node under this trust, now. Throws the named reason it does not. */
export function judgeAdmission (cert: AdmissionCertificate, trust: AdmissionTrust, opts: JudgeOptions): AdmittedIdentity {
  if (opts.peer !== undefined && cert.peer !== opts.peer) throw new AdmissionWrongPeerError(`the admission certificate is for ${cert.peer}, not ${opts.peer}`)
  if (!trust.mayEnroll(cert.enroller)) throw new UnknownEnrollerError(`${cert.enroller}, which signed the admission of ${cert.peer}, is neither a root nor an enroller of the trust policy`)
  if (trust.isNodeRevoked(cert.peer)) throw new RevokedNodeError(`the trust policy revoked the admission of ${cert.peer}`)
  if (cert.expires !== undefined && Date.parse(cert.expires) <= opts.now) throw new AdmissionExpiredError(`the admission of ${cert.peer} expired at ${cert.expires}`)
  return {
    peer: cert.peer,
    name: cert.name,
    tags: cert.tags ?? {},
    enroller: cert.enroller,
    issuedAt: cert.issuedAt,
    ...(cert.expires !== undefined ? { expires: cert.expires } : {})
  }
}

/** Pure: bytes (or a decoded certificate) to the identity they admit under `trust`, or a named AdmissionError. */
export function verifyAdmission (input: Uint8Array | unknown, trust: AdmissionTrust, opts: JudgeOptions): AdmittedIdentity {
  return judgeAdmission(openAdmission(input), trust, opts)
}

/** Whether a node counts, as fleet views record it. */
export interface AdmissionStatus {
  admitted: boolean
  /** The identity its certificate asserts, when the certificate holds. */
  identity?: AdmittedIdentity
  /** Why it does not count (or why its certificate does not hold while admission is not enforced). */
  reason?: string
}

/**
 * Pure: a node's standing, from the certificate it showed (already opened) or none. While the
 * trust policy lists no enrollers, every node counts, certificate or not (the transition rule).
 */
export function admissionStatus (cert: AdmissionCertificate | undefined, peer: string, trust: AdmissionTrust, now: number): AdmissionStatus {
  // A node revoked by peer id is out even before enforcement starts: revocation is an explicit act.
  if (trust.isNodeRevoked(peer)) return { admitted: false, reason: 'revoked' }
  if (cert === undefined) return trust.admissionEnforced ? { admitted: false, reason: 'no-certificate' } : { admitted: true }
  try {
    return { admitted: true, identity: judgeAdmission(cert, trust, { peer, now }) }
  } catch (err) {
    return { admitted: !trust.admissionEnforced, reason: (err as AdmissionError).reason ?? 'invalid' }
  }
}
