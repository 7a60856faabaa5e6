import { z } from '../vendor/zod.js'
import { MAX_DIGEST_ENTRIES, MAX_FETCH_FRAME_BYTES, MAX_FRAME_BYTES, MAX_PEERS_PER_FRAME } from './constants.js'
import { SyncProtocolError } from './errors.js'
import { POLICY_NAME } from '../policy/index.js'

/** What a node holds for one policy name. */
export interface DigestEntry {
  name: string
  version: number
  hash: string
  id: string
}

export interface PeerHint {
  id: string
  addrs: string[]
}

export type Frame =
  | { type: 'digest', entries: DigestEntry[] }
  | { type: 'want', names: string[] }
  | { type: 'envelope', bytes: Uint8Array }
  | { type: 'peers', peers: PeerHint[] }
  | { type: 'done' }
  /** Announce-and-fetch: ask for one envelope by name, version and content hash (a stream of its own). */
  | { type: 'fetch', name: string, version: number, hash: string }
  /** The reply to a fetch when the responder does not hold that envelope. */
  | { type: 'missing' }

/** One byte of frame type, then the payload: JSON for control frames, the exact bytes for envelopes. */
const CODES = { digest: 1, want: 2, envelope: 3, peers: 4, done: 5, fetch: 6, missing: 7 } as const satisfies Record<Frame['type'], number>

const name = z.string().max(200).regex(POLICY_NAME)
const digestSchema = z.array(z.tuple([
  name,
  z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  z.string().regex(/^sha256:[0-9a-f]{64}$/),
  z.string().regex(/^[0-9a-f]{64}$/)
])).max(MAX_DIGEST_ENTRIES)
const wantSchema = z.array(name).max(MAX_DIGEST_ENTRIES)
const fetchSchema = z.tuple([
  name,
  z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  z.string().regex(/^sha256:[0-9a-f]{64}$/)
])
const peersSchema = z.array(z.strictObject({
  id: z.string().min(1).max(128),
  addrs: z.array(z.string().min(1).max(512)).max(8)
})).max(MAX_PEERS_PER_FRAME)

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function withType (code: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.byteLength + 1)
  out[0] = code
  out.set(payload, 1)
  return out
}

export function encodeFrame (frame: Frame): Uint8Array {
  switch (frame.type) {
    case 'digest': return withType(CODES.digest, encoder.encode(JSON.stringify(frame.entries.map((e) => [e.name, e.version, e.hash, e.id]))))
    case 'want': return withType(CODES.want, encoder.encode(JSON.stringify(frame.names)))
    case 'envelope': return withType(CODES.envelope, frame.bytes)
    case 'peers': return withType(CODES.peers, encoder.encode(JSON.stringify(frame.peers)))
    case 'done': return withType(CODES.done, new Uint8Array(0))
    case 'fetch': return withType(CODES.fetch, encoder.encode(JSON.stringify([frame.name, frame.version, frame.hash])))
    case 'missing': return withType(CODES.missing, new Uint8Array(0))
  }
}

function json<T> (schema: z.ZodType<T>, payload: Uint8Array, what: string): T {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(payload))
  } catch {
    throw new SyncProtocolError(`${what} frame is not UTF-8 JSON`)
  }
  const r = schema.safeParse(value)
  if (!r.success) throw new SyncProtocolError(`${what} frame is invalid: ${r.error.issues[0]?.message ?? 'bad shape'}`)
  return r.data
}

/** Pure decoder: bytes from the wire to a frame, or SyncProtocolError. Size is checked before anything else. */
export function decodeFrame (bytes: Uint8Array): Frame {
  if (bytes.byteLength > MAX_FRAME_BYTES) throw new SyncProtocolError(`frame of ${bytes.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`)
  if (bytes.byteLength === 0) throw new SyncProtocolError('empty frame')
  const payload = bytes.subarray(1)
  switch (bytes[0]) {
    case CODES.digest:
      return { type: 'digest', entries: json(digestSchema, payload, 'digest').map(([n, v, h, i]) => ({ name: n, version: v, hash: h, id: i })) }
    case CODES.want: return { type: 'want', names: json(wantSchema, payload, 'want') }
    case CODES.envelope: return { type: 'envelope', bytes: payload.slice() }
    case CODES.peers: return { type: 'peers', peers: json(peersSchema, payload, 'peers') }
    case CODES.done:
      if (payload.byteLength !== 0) throw new SyncProtocolError('done frame has a payload')
      return { type: 'done' }
    case CODES.fetch: {
      if (payload.byteLength > MAX_FETCH_FRAME_BYTES) throw new SyncProtocolError(`fetch frame of ${payload.byteLength} bytes exceeds ${MAX_FETCH_FRAME_BYTES}`)
      const [n, v, h] = json(fetchSchema, payload, 'fetch')
      return { type: 'fetch', name: n, version: v, hash: h }
    }
    case CODES.missing:
      if (payload.byteLength !== 0) throw new SyncProtocolError('missing frame has a payload')
      return { type: 'missing' }
    default: throw new SyncProtocolError(`unknown frame type ${bytes[0]}`)
  }
}
