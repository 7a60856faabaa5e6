import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { peerIdFromString, type GrapevineLibp2p } from '../net/libp2p.js'
import { keyIdOfPeer } from '../net/identity.js'
import { MAX_RECEIPT_BYTES, validateReport, type NodeReport } from '../receipt/index.js'
import { systemSetTimer, type SetTimer } from './clock.js'
import { scopedSignal } from '../sync/index.js'
import { InvalidRoutedReceiptError, ReceiptStreamTimeoutError, TooManyReceiptsError } from './errors.js'

/**
 * `/grapevine/receipts/1.0.0`: receipts travel back along the path their envelope came, each
 * node handing them to the peer it first took that envelope from, until they reach the node
 * that published it (an agent's API, or the `publish` command's own peer). A publish then costs
 * N receipts times the tree's depth, not N receipts delivered to every one of N nodes (N²),
 * which is what capped one host at ~200 live agents and fleets far below 10,000 (docs/scale.md).
 *
 * A stream carries length-prefixed signed receipts, one per frame, and is closed by its sender.
 */
export const RECEIPT_PROTOCOL = '/grapevine/receipts/1.0.0'

/** Receipts for one peer are held this long so that one stream carries a burst of them. */
export const RECEIPT_BATCH_MS = 20
/** Frames per stream, both ways: a sender splits a longer queue, a receiver drops a stream that exceeds it. */
export const MAX_RECEIPTS_PER_STREAM = 512
const RECEIPT_STREAM_TIMEOUT_MS = 10_000

/**
 * Validates a receipt or beacon from a peer: size, decode, schema, signature, and that the key
 * signing it is the key of the node it names (which needs libp2p's peer-id decoding).
 */
export function verifyNodeReport (bytes: Uint8Array): NodeReport | undefined {
  let report: NodeReport
  try {
    report = validateReport(bytes)
  } catch {
    return undefined
  }
  return keyIdOfPeer(report.node) === report.key ? report : undefined
}

/**
 * Serves the receipts protocol: `take` gets each frame and says whether it was a valid receipt.
 * A peer that sends an invalid one, or more frames than allowed, loses the stream at once.
 */
export async function serveReceipts (net: Pick<GrapevineLibp2p, 'handle'>, take: (bytes: Uint8Array, from: string) => boolean): Promise<void> {
  await net.handle(RECEIPT_PROTOCOL, ({ stream, connection }) => {
    void (async () => {
      const from = connection.remotePeer.toString()
      const timer = setTimeout(() => { stream.abort(new ReceiptStreamTimeoutError(`receipt stream not finished within ${RECEIPT_STREAM_TIMEOUT_MS} ms`)) }, RECEIPT_STREAM_TIMEOUT_MS)
      try {
        let frames = 0
        for await (const frame of lp.decode(stream.source, { maxDataLength: MAX_RECEIPT_BYTES })) {
          if (++frames > MAX_RECEIPTS_PER_STREAM) throw new TooManyReceiptsError(`more than ${MAX_RECEIPTS_PER_STREAM} receipts in one stream`)
          if (!take(frame.subarray(), from)) throw new InvalidRoutedReceiptError(`invalid receipt from ${from}`)
        }
        await stream.close()
      } catch (err) {
        stream.abort(err as Error)
      } finally {
        clearTimeout(timer)
      }
    })()
  }, { maxInboundStreams: 32 })
}

export interface ReceiptSenderEvents {
  /** Receipts that reached the peer, or that could not (the caller keeps those). */
  sent?: (peer: string, count: number) => void
  failed?: (peer: string, count: number, err: Error) => void
}

/** Queues receipts per peer and sends each burst on one stream. */
export class ReceiptSender {
  private readonly queues = new Map<string, Uint8Array[]>()

  constructor (private readonly net: Pick<GrapevineLibp2p, 'dialProtocol'>, private readonly events: ReceiptSenderEvents = {}, private readonly signal?: AbortSignal, private readonly setTimer: SetTimer = systemSetTimer) {}

  send (peer: string, bytes: Uint8Array): void {
    const queue = this.queues.get(peer)
    if (queue !== undefined) {
      queue.push(bytes)
      return
    }
    this.queues.set(peer, [bytes])
    this.setTimer(() => { void this.flush(peer) }, RECEIPT_BATCH_MS)
  }

  private async flush (peer: string): Promise<void> {
    const queue = this.queues.get(peer) ?? []
    this.queues.delete(peer)
    for (let i = 0; i < queue.length; i += MAX_RECEIPTS_PER_STREAM) {
      const batch = queue.slice(i, i + MAX_RECEIPTS_PER_STREAM)
      const scope = scopedSignal(RECEIPT_STREAM_TIMEOUT_MS, this.signal)
      const signal = scope.signal
      try {
        const stream = await this.net.dialProtocol(peerIdFromString(peer), RECEIPT_PROTOCOL, { signal })
        try {
          await pipe(batch, (src) => lp.encode(src), stream.sink)
        } catch (err) {
          stream.abort(err as Error)
          throw err
        }
        this.events.sent?.(peer, batch.length)
      } catch (err) {
        this.events.failed?.(peer, batch.length, err as Error)
      } finally {
        scope.done()
      }
    }
  }
}
