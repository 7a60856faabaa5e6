import { performance } from 'node:perf_hooks'
import { pushable } from 'it-pushable'
import { sampleLatency, type LatencyDist } from './random.js'
import { DEFAULT_MSS_BYTES, MAX_BACKOFFS, MAX_IN_FLIGHT } from './constants.js'

/**
 * What a simulated link does to the bytes a node sends. Agents talk over real TCP on
 * loopback, so the stream stays reliable and ordered; the model only decides *when* each
 * chunk is handed to the socket.
 */
export interface LinkModel {
  /** One-way latency, drawn per chunk. */
  latency: LatencyDist
  /** Probability that one TCP segment is lost (0..1). */
  loss: number
  /** Retransmission timeout (ms) paid by a lost segment; doubled for each repeat loss. */
  rto: number
  /** Segment size, bytes: a chunk of n bytes is ceil(n / mss) segments. */
  mss?: number
}

/**
 * Extra delay (ms) that loss adds to one chunk. Over a reliable stream a lost segment is not
 * missing data, it is a retransmission: the chunk waits one RTO, twice that if the
 * retransmission is lost too (exponential backoff), and so on. A chunk of several segments
 * waits for its unluckiest one. Pure, given the random source.
 */
export function lossDelay (bytes: number, model: Pick<LinkModel, 'loss' | 'rto' | 'mss'>, random: () => number): number {
  if (model.loss <= 0) return 0
  const segments = Math.max(1, Math.ceil(bytes / (model.mss ?? DEFAULT_MSS_BYTES)))
  let worst = 0
  for (let s = 0; s < segments; s++) {
    let wait = 0
    for (let k = 0; k < MAX_BACKOFFS && random() < model.loss; k++) wait += model.rto * 2 ** k
    if (wait > worst) worst = wait
  }
  return worst
}

/**
 * When a chunk written at `now` arrives: after its own delay, and never before the chunk
 * written before it (TCP delivers in order, so one retransmission holds up what follows).
 */
export function deliveryTime (previous: number, now: number, delay: number): number {
  return Math.max(previous, now + delay)
}

/** True when the model changes nothing, so the stream can pass through untouched. */
export function isPerfectLink (model: LinkModel): boolean {
  return model.loss <= 0 && model.latency.dist === 'constant' && model.latency.ms <= 0
}

/**
 * A transform for one connection's outbound bytes: every chunk is held until its delivery
 * time, in order. It reads ahead of the socket by up to MAX_IN_FLIGHT chunks: the sender's
 * data waits in this queue as it would in a kernel send buffer, and a sender that outruns the
 * link waits for room, as it would on a full one.
 */
export function shapeStream<T extends { byteLength: number }> (source: AsyncIterable<T>, model: LinkModel, random: () => number, now: () => number = () => performance.now()): AsyncIterable<T> {
  if (isPerfectLink(model)) return source
  const queue: Array<{ at: number, chunk: T }> = []
  let timer: ReturnType<typeof setTimeout> | undefined
  let last = 0
  let ended = false
  let endError: Error | undefined
  let stopped = false
  let room: (() => void) | undefined
  const wake = (): void => {
    const r = room
    room = undefined
    r?.()
  }
  const out = pushable<T>({
    objectMode: true,
    onEnd: () => {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      wake()
    }
  })
  const drain = (): void => {
    timer = undefined
    const t = now()
    while (queue.length > 0 && (queue[0] as { at: number }).at <= t) out.push((queue.shift() as { chunk: T }).chunk)
    if (queue.length < MAX_IN_FLIGHT) wake()
    arm()
  }
  const arm = (): void => {
    if (stopped || timer !== undefined) return
    const head = queue[0]
    if (head === undefined) {
      if (ended) out.end(endError)
      return
    }
    timer = setTimeout(drain, Math.max(0, head.at - now()))
  }
  void (async () => {
    try {
      for await (const chunk of source) {
        if (stopped) break
        const t = now()
        last = deliveryTime(last, t, sampleLatency(model.latency, random) + lossDelay(chunk.byteLength, model, random))
        queue.push({ at: last, chunk })
        arm()
        if (queue.length >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => { room = resolve })
      }
    } catch (err) {
      endError = err as Error
    }
    ended = true
    arm()
  })()
  return out
}
