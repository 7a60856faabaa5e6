import { z } from '../vendor/zod.js'
import { canonicalBytes, canonicalJson, signBytes, verifyBytes, type SigningKey } from '../envelope/index.js'
import { policyName } from '../policy/index.js'
import { admissionCertificate } from '../admission/index.js'
import { AGE_RECIPIENT } from '../secrets/constants.js'
import { tooDeepAt } from '../policy/depth.js'
import {
  MAX_PRESENCE_FACTS_BYTES, MAX_PRESENCE_FACTS_DEPTH, MAX_PRESENCE_POLICIES, MAX_RECEIPT_BYTES, MAX_RECEIPT_ERROR_CHARS, MAX_RECEIPT_FAILURES, RECEIPT_SIGNING_CONTEXT
} from './constants.js'

/**
 * How a node fared with one policy version, as the publisher and fleet views show it.
 * `unhealthy`: every resource applied, but a health check of the policy failed (the latest apply's).
 * `sealed`: targeted, but the policy's secrets are not sealed to this node (docs/secrets.md): not applied.
 */
export const RECEIPT_OUTCOMES = ['applied', 'unchanged', 'failed', 'not-targeted', 'retired', 'unhealthy', 'sealed'] as const
export type ReceiptOutcome = typeof RECEIPT_OUTCOMES[number]

/**
 * What the applies of one version have done on a node so far: `first` is its first successful
 * apply's outcome (unset while every apply of it failed), `changed` whether any apply of it up
 * to that one changed something, `failing` whether the latest apply failed, `unhealthy` whether
 * a health check failed after the latest apply.
 */
export interface VersionApplies {
  first?: 'applied' | 'unchanged'
  changed: boolean
  failing: boolean
  unhealthy?: boolean
}

/**
 * Pure: folds one more apply of a version (`held` is what its earlier applies did, undefined for
 * the first) into what that version has done. A receipt is about a version, so a re-apply that
 * finds everything in place (a drift check, a second turn in the queue 100 ms later) never turns
 * "applied" into "unchanged": the first successful apply decides. A failure is news for as long
 * as it lasts; a version whose failed apply changed things before a retry succeeded was applied.
 */
export function foldApply (held: VersionApplies | undefined, changed: number, failed: number, unhealthy = false): VersionApplies {
  const anyChange = (held?.changed ?? false) || changed > 0
  const first = held?.first ?? (failed > 0 ? undefined : anyChange ? 'applied' : 'unchanged')
  // Health is the latest apply's, not the first's: a node whose service came back reports it.
  return { ...(first !== undefined ? { first } : {}), changed: held?.first !== undefined ? held.changed : anyChange, failing: failed > 0, ...(unhealthy ? { unhealthy } : {}) }
}

/** The outcome receipts and beacons give a version from what its applies did: a failed resource before a failed check. */
export function versionOutcome (v: VersionApplies): Extract<ReceiptOutcome, 'applied' | 'unchanged' | 'failed' | 'unhealthy'> {
  if (v.failing || v.first === undefined) return 'failed'
  return v.unhealthy === true ? 'unhealthy' : v.first
}

const keyId = z.string().regex(/^ed25519:[A-Za-z0-9_-]{43}$/)
const tags = z.record(z.string().max(100), z.string().max(200)).refine((t) => Object.keys(t).length <= 64, { error: 'at most 64 tags' })

const common = {
  format: z.literal(1),
  node: z.string().min(1).max(128),
  key: keyId,
  name: z.string().max(200),
  tags,
  at: z.iso.datetime(),
  /** The node's admission certificate, if it has one; the report's signature covers it. Receivers judge it under their trust. */
  admission: admissionCertificate.optional(),
  /**
   * The node's encryption key (age X25519 recipient), which publishers seal secrets to
   * (docs/secrets.md). Inside the signed body, so a relay cannot swap it; optional, for agents
   * older than secrets.
   */
  recipient: z.string().regex(AGE_RECIPIENT).optional()
}

export const receiptBody = z.strictObject({
  ...common,
  kind: z.literal('receipt'),
  policy: policyName,
  version: z.number().int().positive(),
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  outcome: z.enum(RECEIPT_OUTCOMES),
  changed: z.number().int().nonnegative(),
  failures: z.array(z.strictObject({ resource: z.string().max(200), error: z.string().max(MAX_RECEIPT_ERROR_CHARS) })).max(MAX_RECEIPT_FAILURES),
  failedCount: z.number().int().nonnegative(),
  durationMs: z.number().nonnegative()
})

/** Pure: whether a beacon's facts are within their bounds (bytes in JSON, nesting): what every receiver checks. */
export function factsWithinBounds (facts: Record<string, unknown>): boolean {
  return Buffer.byteLength(JSON.stringify(facts)) <= MAX_PRESENCE_FACTS_BYTES && tooDeepAt(facts, MAX_PRESENCE_FACTS_DEPTH) === undefined
}

export const presenceBody = z.strictObject({
  ...common,
  kind: z.literal('presence'),
  /** [policy, version, hash, last outcome] for each policy the node holds. */
  policies: z.array(z.tuple([policyName, z.number().int().positive(), z.string().max(80), z.string().max(40)])).max(MAX_PRESENCE_POLICIES),
  /**
   * A summary of the node's facts (src/facts/summary.ts), inside the signed body: what `fleet
   * --where` and `publish --wait` judge `target.facts` by. The node's own word, as its tags are.
   */
  facts: z.record(z.string().max(100), z.unknown()).refine(factsWithinBounds, { error: `facts over ${MAX_PRESENCE_FACTS_BYTES} bytes or nested deeper than ${MAX_PRESENCE_FACTS_DEPTH}` }).optional()
})

const signed = z.discriminatedUnion('kind', [
  receiptBody.extend({ signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/) }),
  presenceBody.extend({ signature: z.string().regex(/^[A-Za-z0-9_-]{86}$/) })
])

export type Receipt = z.output<typeof receiptBody>
export type Presence = z.output<typeof presenceBody>
export type NodeReport = Receipt | Presence

export class InvalidReceiptError extends Error {
  static override name = 'InvalidReceiptError'
  override name = 'InvalidReceiptError'
}

function payload (body: NodeReport): Uint8Array {
  return canonicalBytes({ context: RECEIPT_SIGNING_CONTEXT, body })
}

/** Bytes a string's content takes in the signed JSON: UTF-8, with escapes (a colour code is six) counted in full. */
const jsonBytes = (s: string): number => Buffer.byteLength(JSON.stringify(s)) - 2

/**
 * `s` cut to at most `max` UTF-16 units and `max` bytes in JSON, ending in `mark` when cut.
 * Cuts between characters, never inside a surrogate pair, and makes a lone surrogate U+FFFD:
 * canonical JSON refuses lone surrogates, so a receipt carrying one could not be signed.
 */
function clip (s: string, max: number, mark: string): string {
  const room = max - mark.length
  let out = ''
  let bytes = 0
  let fitsWithMark = 0
  for (const c of s) {
    const ch = c.length === 1 && c >= '\uD800' && c <= '\uDFFF' ? '\uFFFD' : c
    const n = jsonBytes(ch)
    if (out.length + ch.length > max || bytes + n > max) return out.slice(0, fitsWithMark) + mark
    out += ch
    bytes += n
    if (out.length <= room && bytes <= room) fitsWithMark = out.length
  }
  return out
}

/**
 * Trims what a node reports to the receipt bounds, so a huge failure never makes a receipt
 * unsendable: the bounds are on bytes as well as characters, since an error may quote a
 * command's stderr (multi-byte text, escaped control characters).
 */
export function boundFailures (failures: Array<{ resource: string, error: string }>): Receipt['failures'] {
  return failures.slice(0, MAX_RECEIPT_FAILURES).map((f) => ({
    resource: clip(f.resource, 200, ''),
    error: clip(f.error, MAX_RECEIPT_ERROR_CHARS, '...')
  }))
}

export function signReport (body: NodeReport, key: SigningKey): Uint8Array {
  const signature = Buffer.from(signBytes(key, payload(body))).toString('base64url')
  return new TextEncoder().encode(canonicalJson({ ...body, signature }))
}

/**
 * Pure validator for receipts and presence beacons: size, decode, schema, signature. The caller
 * checks that `key` belongs to `node` (the peer id), which needs libp2p's peer-id decoding.
 */
export function validateReport (bytes: Uint8Array): NodeReport {
  if (bytes.byteLength > MAX_RECEIPT_BYTES) throw new InvalidReceiptError(`receipt is ${bytes.byteLength} bytes, over the ${MAX_RECEIPT_BYTES}-byte limit`)
  let raw: unknown
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    throw new InvalidReceiptError('receipt is not UTF-8 JSON')
  }
  const r = signed.safeParse(raw)
  if (!r.success) throw new InvalidReceiptError(`receipt is invalid: ${r.error.issues[0]?.message ?? 'bad shape'}`)
  const { signature, ...body } = r.data
  if (!verifyBytes(body.key, payload(body), Buffer.from(signature, 'base64url'))) throw new InvalidReceiptError(`receipt signature does not verify for ${body.node}`)
  return body
}
