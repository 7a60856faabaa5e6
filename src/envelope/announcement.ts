import { canonicalJson } from './canonical.js'
import { MAX_ANNOUNCEMENT_BYTES } from './constants.js'
import { pickHeader } from './envelope.js'
import { AnnouncementMismatchError } from './errors.js'
import { decodeCanonical, signedHeaderShape, verifySignedHeader, type Authorizer, type SignedHeader } from './validator.js'

// Announce-and-fetch (docs/scale.md): a large envelope is gossiped as its signed header plus
// signature, ~420 bytes. The signature covers only the header and the header's `hash` binds the
// policy body, so a receiver can check who published what before it fetches the body.

/** An envelope without its policy: exactly what the signature covers, and the signature. */
export type Announcement = SignedHeader

const encoder = new TextEncoder()

/** The announcement of an envelope: canonical JSON of its header and signature. */
export function encodeAnnouncement (env: Announcement): Uint8Array {
  return encoder.encode(canonicalJson({ ...pickHeader(env), signature: env.signature }))
}

/**
 * Pure and cheap: size, UTF-8 canonical JSON, shape. No crypto, so the caller can apply the
 * version rule before paying for a signature check (replays cost nothing).
 */
export function decodeAnnouncement (bytes: Uint8Array, maxBytes = MAX_ANNOUNCEMENT_BYTES): Announcement {
  return decodeCanonical(bytes, maxBytes, signedHeaderShape, 'announcement')
}

/** Signature, then trust and name scope: the same checks as openEnvelope (limits are checked on the fetched body). */
export function verifyAnnouncement (ann: Announcement, trust: Authorizer): void {
  verifySignedHeader(ann, trust, 'the announcement of ')
}

/** Whether a (verified) envelope is the one announced: same signed header, same signature. */
export function matchesAnnouncement (env: Announcement, ann: Announcement): boolean {
  return env.format === ann.format && env.name === ann.name && env.version === ann.version && env.hash === ann.hash &&
    env.signer === ann.signer && env.issuedAt === ann.issuedAt && env.prev === ann.prev && env.force === ann.force && env.signature === ann.signature
}

/** Throws when a fetched envelope is not the announced one. */
export function assertAnnounced (env: Announcement, ann: Announcement): void {
  if (!matchesAnnouncement(env, ann)) {
    throw new AnnouncementMismatchError(`fetched envelope ${env.name} v${env.version} (${env.hash}) is not the one announced (${ann.name} v${ann.version}, ${ann.hash})`)
  }
}
