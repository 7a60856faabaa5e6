import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import type { Uint8ArrayList } from 'uint8arraylist'
import { z } from '../vendor/zod.js'
import type { GrapevineLibp2p, PeerId } from '../net/libp2p.js'
import type { FleetNode } from '../receipt/index.js'
import { formatPath, policyName } from '../policy/index.js'
import { AGE_RECIPIENT } from '../secrets/constants.js'
import {
  FLEET_CHUNK, FLEET_FRAME_BYTES, FLEET_PAGE_BYTES, FLEET_PAGE_NODES, MAX_FLEET_PAGES, MAX_INBOUND_QUERY_STREAMS, MAX_REQUEST_BYTES, MAX_RESPONSE_FRAME_BYTES, MAX_RESPONSE_FRAMES, QUERY_PROTOCOL, QUERY_TIMEOUT_MS
} from './constants.js'
import { QueryTimeoutError, InvalidQueryError, InvalidQueryResponseError, TooManyResponseFramesError } from './errors.js'

const request = z.discriminatedUnion('op', [
  // Without `limit` (an older asker), the whole view; with it, one page of nodes by id after `after`.
  z.strictObject({ op: z.literal('fleet'), after: z.string().max(128).optional(), limit: z.number().int().positive().max(FLEET_PAGE_NODES).optional() }),
  z.strictObject({ op: z.literal('envelope'), name: policyName, version: z.number().int().positive() })
])
type Request = z.output<typeof request>

export interface QueryHandlers {
  fleet: () => FleetNode[]
  envelope: (name: string, version: number) => Promise<Uint8Array | undefined>
}

const enc = new TextEncoder()
const dec = new TextDecoder()

/** Pure: one request frame to a request, or an InvalidQueryError that says what is wrong with it. */
function parseRequest (frame: Uint8Array): Request {
  let raw: unknown
  try {
    raw = JSON.parse(dec.decode(frame))
  } catch (err) {
    throw new InvalidQueryError('query is not JSON', { cause: err })
  }
  const parsed = request.safeParse(raw)
  if (!parsed.success) {
    const first = parsed.error.issues[0]
    throw new InvalidQueryError(`query field ${formatPath(first?.path ?? []) || '(root)'}: ${first?.message ?? 'invalid'}`, { cause: parsed.error })
  }
  return parsed.data
}

async function readRequest (source: AsyncIterable<Uint8ArrayList>): Promise<Request> {
  for await (const frame of lp.decode(source, { maxDataLength: MAX_REQUEST_BYTES })) return parseRequest(frame.subarray())
  throw new InvalidQueryError('the stream ended before a query')
}

/** Answers queries on `net` from `handlers`; a query that fails is logged and its stream aborted. */
export async function serveQueries (net: GrapevineLibp2p, handlers: QueryHandlers, opts: { timeoutMs?: number } = {}): Promise<void> {
  const log = net.logger.forComponent('grapevine:query')
  const timeoutMs = opts.timeoutMs ?? QUERY_TIMEOUT_MS
  await net.handle(QUERY_PROTOCOL, ({ stream, connection }) => {
    void (async () => {
      // One deadline for the whole stream, reading the query included.
      const signal = AbortSignal.timeout(timeoutMs)
      const deadline = setTimeout(() => { stream.abort(new QueryTimeoutError(`query stream not finished within ${timeoutMs} ms`)) }, timeoutMs)
      deadline.unref?.()
      try {
        const req = await readRequest(stream.source)
        const frames: Uint8Array[] = []
        if (req.op === 'fleet') {
          frames.push(...(req.limit === undefined ? fleetFrames(handlers.fleet()) : fleetPage(handlers.fleet(), req.after, req.limit)))
        } else {
          const bytes = await handlers.envelope(req.name, req.version)
          if (bytes !== undefined) frames.push(bytes)
        }
        await pipe(frames, (src) => lp.encode(src), stream.sink)
        await stream.close({ signal })
      } catch (err) {
        log.error('query from %p failed: %e', connection.remotePeer, err)
        stream.abort(err as Error)
      } finally {
        clearTimeout(deadline)
      }
    })()
  }, { maxInboundStreams: MAX_INBOUND_QUERY_STREAMS })
}

/**
 * Pure: the fleet view as response frames of at most FLEET_CHUNK nodes and FLEET_FRAME_BYTES
 * bytes each, so no node, however many policies it reports, makes a frame the asker refuses.
 */
export function fleetFrames (nodes: readonly FleetNode[]): Uint8Array[] {
  const frames: Uint8Array[] = []
  let chunk: string[] = []
  let bytes = 2
  const flush = (): void => {
    if (chunk.length > 0) frames.push(enc.encode(`[${chunk.join(',')}]`))
    chunk = []
    bytes = 2
  }
  for (const node of nodes) {
    if (frames.length >= MAX_RESPONSE_FRAMES) break
    const json = JSON.stringify(node)
    const size = Buffer.byteLength(json) + 1
    if (size + 2 > FLEET_FRAME_BYTES) continue
    if (chunk.length >= FLEET_CHUNK || bytes + size > FLEET_FRAME_BYTES) flush()
    chunk.push(json)
    bytes += size
  }
  if (frames.length < MAX_RESPONSE_FRAMES) flush()
  return frames
}

/**
 * Pure: one page of the fleet view, by node id after `after`: at most `limit` nodes, ending
 * after the node that passes FLEET_PAGE_BYTES, as fleetFrames frames, then `{"next":id}` when
 * more nodes follow.
 */
export function fleetPage (nodes: readonly FleetNode[], after: string | undefined, limit: number, maxBytes = FLEET_PAGE_BYTES): Uint8Array[] {
  const rest = nodes.filter((n) => after === undefined || n.id > after).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const page: FleetNode[] = []
  let bytes = 0
  for (const n of rest) {
    if (page.length >= limit || bytes >= maxBytes) break
    page.push(n)
    bytes += Buffer.byteLength(JSON.stringify(n))
  }
  const frames = fleetFrames(page)
  const last = page.at(-1)
  if (last !== undefined && page.length < rest.length) frames.push(enc.encode(JSON.stringify({ next: last.id })))
  return frames
}

async function query (net: GrapevineLibp2p, peer: PeerId, req: Request, signal: AbortSignal): Promise<Uint8Array[]> {
  const stream = await net.dialProtocol(peer, QUERY_PROTOCOL, { signal })
  try {
    const out: Uint8Array[] = []
    await pipe([enc.encode(JSON.stringify(req))], (src) => lp.encode(src), stream.sink)
    for await (const frame of lp.decode(stream.source, { maxDataLength: MAX_RESPONSE_FRAME_BYTES })) {
      out.push(frame.subarray())
      if (out.length > MAX_RESPONSE_FRAMES) throw new TooManyResponseFramesError(`${peer.toString()} answered with more than ${MAX_RESPONSE_FRAMES} frames`)
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
  policies: z.record(z.string(), z.object({ version: z.number(), hash: z.string(), outcome: z.string(), at: z.string() }).passthrough()),
  // A node the answering agent does not vouch for does not count (docs/admission.md).
  admitted: z.boolean().default(false),
  // What a publisher seals secrets to: a peer that answers with something else than a key is refused.
  recipient: z.string().regex(AGE_RECIPIENT).optional()
}).passthrough())

const nextPage = z.strictObject({ next: z.string().max(128) })

/**
 * A peer's fleet view, a page at a time (FLEET_PAGE_NODES), each page a query with its own
 * deadline unless `signal` bounds them all; at most MAX_FLEET_PAGES pages.
 */
export async function queryFleet (net: GrapevineLibp2p, peer: PeerId, signal?: AbortSignal): Promise<FleetNode[]> {
  const out: FleetNode[] = []
  let after: string | undefined
  for (let page = 0; page < MAX_FLEET_PAGES; page++) {
    const frames = await query(net, peer, { op: 'fleet', limit: FLEET_PAGE_NODES, ...(after !== undefined ? { after } : {}) }, signal ?? AbortSignal.timeout(QUERY_TIMEOUT_MS))
    let next: string | undefined
    for (const f of frames) {
      let raw: unknown
      try {
        raw = JSON.parse(dec.decode(f))
        if (!Array.isArray(raw)) next = nextPage.parse(raw).next
        else out.push(...fleetChunk.parse(raw) as FleetNode[])
      } catch (err) {
        throw new InvalidQueryResponseError(`${peer.toString()} answered the fleet query with something other than a list of nodes`, { cause: err })
      }
    }
    if (next === undefined) return out
    // Each page must move on, or a peer could keep the asker paging for ever.
    if (after !== undefined && next <= after) throw new InvalidQueryResponseError(`${peer.toString()} answered a fleet page with a cursor that does not move on (${next})`)
    after = next
  }
  throw new InvalidQueryResponseError(`${peer.toString()} has more than ${MAX_FLEET_PAGES} pages of fleet (${out.length} nodes so far)`)
}

export async function queryEnvelope (net: GrapevineLibp2p, peer: PeerId, name: string, version: number, signal = AbortSignal.timeout(QUERY_TIMEOUT_MS)): Promise<Uint8Array | undefined> {
  const frames = await query(net, peer, { op: 'envelope', name, version }, signal)
  return frames[0]
}
