import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { z } from '../vendor/zod.js'
import type { GrapevineLibp2p, PeerId } from '../net/libp2p.js'
import type { FleetNode } from '../receipt/index.js'
import { MAX_ENVELOPE_BYTES } from '../envelope/index.js'
import { policyName } from '../policy/index.js'

/**
 * `/grapevine/query/1.0.0`: one request frame, answered by frames until the responder closes.
 * `fleet` returns the responder's fleet view in chunks; `envelope` returns an archived version
 * (for rollback). Used by `fleet` and `rollback` when they join through --bootstrap.
 */
export const QUERY_PROTOCOL = '/grapevine/query/1.0.0'
const MAX_QUERY_FRAME = MAX_ENVELOPE_BYTES + 1024
/** Fleet nodes per response frame, so no frame comes near the frame bound. */
const FLEET_CHUNK = 500
const MAX_RESPONSE_FRAMES = 400
const QUERY_TIMEOUT_MS = 15_000

const request = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('fleet') }),
  z.strictObject({ op: z.literal('envelope'), name: policyName, version: z.number().int().positive() })
])
type Request = z.output<typeof request>

export interface QueryHandlers {
  fleet: () => FleetNode[]
  envelope: (name: string, version: number) => Promise<Uint8Array | undefined>
}

const enc = new TextEncoder()

export async function serveQueries (net: GrapevineLibp2p, handlers: QueryHandlers): Promise<void> {
  await net.handle(QUERY_PROTOCOL, ({ stream }) => {
    void (async () => {
      const signal = AbortSignal.timeout(QUERY_TIMEOUT_MS)
      try {
        let req: Request | undefined
        for await (const frame of lp.decode(stream.source, { maxDataLength: 4096 })) {
          req = request.parse(JSON.parse(new TextDecoder().decode(frame.subarray())))
          break
        }
        if (req === undefined) throw new Error('no request')
        const frames: Uint8Array[] = []
        if (req.op === 'fleet') {
          const nodes = handlers.fleet()
          for (let i = 0; i < nodes.length && frames.length < MAX_RESPONSE_FRAMES; i += FLEET_CHUNK) frames.push(enc.encode(JSON.stringify(nodes.slice(i, i + FLEET_CHUNK))))
        } else {
          const bytes = await handlers.envelope(req.name, req.version)
          if (bytes !== undefined) frames.push(bytes)
        }
        await pipe(frames, (src) => lp.encode(src), stream.sink)
        await stream.close({ signal })
      } catch (err) {
        stream.abort(err as Error)
      }
    })()
  }, { maxInboundStreams: 8 })
}

async function query (net: GrapevineLibp2p, peer: PeerId, req: Request, signal: AbortSignal): Promise<Uint8Array[]> {
  const stream = await net.dialProtocol(peer, QUERY_PROTOCOL, { signal })
  try {
    const out: Uint8Array[] = []
    await pipe([enc.encode(JSON.stringify(req))], (src) => lp.encode(src), stream.sink)
    for await (const frame of lp.decode(stream.source, { maxDataLength: MAX_QUERY_FRAME })) {
      out.push(frame.subarray())
      if (out.length > MAX_RESPONSE_FRAMES) throw new Error('too many response frames')
    }
    return out
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

const fleetChunk = z.array(z.object({
  id: z.string().max(128),
  name: z.string().max(200),
  tags: z.record(z.string(), z.string()),
  lastSeen: z.string(),
  policies: z.record(z.string(), z.object({ version: z.number(), hash: z.string(), outcome: z.string(), at: z.string() }).passthrough())
}).passthrough())

export async function queryFleet (net: GrapevineLibp2p, peer: PeerId, signal = AbortSignal.timeout(QUERY_TIMEOUT_MS)): Promise<FleetNode[]> {
  const frames = await query(net, peer, { op: 'fleet' }, signal)
  return frames.flatMap((f) => fleetChunk.parse(JSON.parse(new TextDecoder().decode(f))) as FleetNode[])
}

export async function queryEnvelope (net: GrapevineLibp2p, peer: PeerId, name: string, version: number, signal = AbortSignal.timeout(QUERY_TIMEOUT_MS)): Promise<Uint8Array | undefined> {
  const frames = await query(net, peer, { op: 'envelope', name, version }, signal)
  return frames[0]
}
