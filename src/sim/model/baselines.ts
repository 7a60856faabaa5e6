// The two central designs Grapevine is weighed against, on the model engine's network (the
// same latency, loss and uplink bandwidth per host): a master that pushes to every host with
// F parallel sessions (Fabric, Ansible forks), and hosts that poll one master every T
// (Puppet, CFEngine). Both are optimistic: only round trips, transfer, queueing at the
// master and the apply are counted, none of the tools' own per-host overheads.

import { performance } from 'node:perf_hooks'
import { quantiles, type Quantiles } from '../metrics.js'
import { prng, sampleLatency, seedOf, type LatencyDist } from '../random.js'
import { DEFAULT_MSS_BYTES, MAX_BACKOFFS } from '../constants.js'

export interface BaselineNet {
  latency: LatencyDist
  loss: number
  rto: number
  uplinkBytesPerS: number
}

export interface PushParams {
  /** Parallel sessions (Ansible `forks`: 5 by default). */
  forks: number
  /** Round trips before the payload moves: TCP, SSH key exchange, auth, channel open, exec (about 5). */
  sessionRtts: number
  /** Extra master time per host (the tool's own overhead); 0 keeps the baseline a lower bound. */
  perHostMs: number
  applyMs: number
}

export interface PullParams {
  /** Run interval: Puppet 30 min, CFEngine 5 min. */
  intervalMs: number
  /** Random delay added to each run, up to this (Puppet splaylimit, CFEngine splaytime); hosts' phases are spread over the interval either way. */
  splayMs: number
  /** Master CPU per request: a catalog compile (Puppet) or a file-digest check (CFEngine). */
  serveMs: number
  masterCores: number
  /** TLS connection set-up round trips, then one for the request. */
  connectRtts: number
  /** Request plus a "no change" answer, bytes. */
  pollBytes: number
  applyMs: number
}

export interface BaselineResult {
  kind: 'push' | 'pull'
  label: string
  nodes: number
  policyBytes: number
  /** ms after the publish: when each fraction of hosts had applied it. */
  times: Quantiles
  /** The master, over the publish until the last host applied. */
  busiest: { bytesSent: number, bytesReceived: number, connections: number, concurrent: number }
  /** Pull only: master utilisation N × serveMs / (T × cores); above 1 its queue grows without bound. */
  utilisation?: number
  wallMs: number
}

function lossDelay (bytes: number, net: BaselineNet, random: () => number): number {
  if (net.loss <= 0) return 0
  const segs = Math.max(1, Math.ceil(bytes / DEFAULT_MSS_BYTES))
  const u = random()
  let k = 0
  while (k < MAX_BACKOFFS && u < 1 - (1 - net.loss ** (k + 1)) ** segs) k++
  return net.rto * (2 ** k - 1)
}

/**
 * Central push: each of F workers takes the next host, opens a session (sessionRtts round
 * trips), streams the policy through the master's uplink (shared by all workers), waits for
 * the host to apply and report, then moves on. T100 ≈ ⌈N/F⌉ × per-host time.
 */
export function centralPush (nodes: number, policyBytes: number, net: BaselineNet, p: PushParams, seed = 1): BaselineResult {
  const wall = performance.now()
  const random = prng(seedOf(seed, 'push', nodes, p.forks))
  const lat = (): number => sampleLatency(net.latency, random)
  const free = new Float64Array(Math.max(1, Math.min(p.forks, nodes)))
  let upFree = 0
  const applied = new Float64Array(nodes)
  for (let j = 0; j < nodes; j++) {
    let w = 0
    for (let i = 1; i < free.length; i++) if (free[i]! < free[w]!) w = i
    let t = free[w]! + p.perHostMs
    for (let r = 0; r < p.sessionRtts; r++) t += lat() + lat()
    const start = Math.max(t, upFree)
    upFree = start + policyBytes * 1000 / net.uplinkBytesPerS
    const arrive = upFree + lat() + lossDelay(policyBytes, net, random)
    applied[j] = arrive + p.applyMs
    free[w] = applied[j]! + lat()
  }
  const times = quantiles(Array.from(applied), nodes)
  return {
    kind: 'push',
    label: `central push, ${p.forks} forks`,
    nodes,
    policyBytes,
    times,
    busiest: { bytesSent: nodes * policyBytes, bytesReceived: 0, connections: nodes, concurrent: free.length },
    wallMs: performance.now() - wall
  }
}

/**
 * Central pull: host i polls at phase_i + k·T + U(0, splay), phase_i uniform over T (a fleet
 * spread over the interval). The master serves requests on `masterCores` cores, FIFO; a
 * request served after the publish carries the new policy through the master's uplink. The
 * simulation starts one interval before the publish so the master's queue is warm.
 */
export function centralPull (nodes: number, policyBytes: number, net: BaselineNet, p: PullParams, seed = 1): BaselineResult {
  const wall = performance.now()
  const random = prng(seedOf(seed, 'pull', nodes, p.intervalMs))
  const lat = (): number => sampleLatency(net.latency, random)
  const T = p.intervalMs
  const publishAt = T
  // Polls from one interval before the publish to two after it (with splay), in time order.
  const polls: number[] = []
  const host: number[] = []
  for (let i = 0; i < nodes; i++) {
    const phase = random() * T
    for (let k = 0; k < 4; k++) {
      const t = phase + k * T + random() * p.splayMs
      polls.push(t)
      host.push(i)
    }
  }
  const order = Array.from(polls.keys()).sort((a, b) => (polls[a] as number) - (polls[b] as number))
  const cores = new Float64Array(Math.max(1, p.masterCores))
  const applied = new Float64Array(nodes).fill(NaN)
  let upFree = 0
  let bytesSent = 0
  let bytesReceived = 0
  let connections = 0
  let left = nodes
  let lastApply = publishAt
  for (const k of order) {
    const i = host[k] as number
    if (!Number.isNaN(applied[i]!)) continue
    let t = polls[k] as number
    for (let r = 0; r < p.connectRtts; r++) t += lat() + lat()
    t += lat()
    let c = 0
    for (let j = 1; j < cores.length; j++) if (cores[j]! < cores[c]!) c = j
    const served = Math.max(t, cores[c]!) + p.serveMs
    cores[c] = served
    const inWindow = served >= publishAt
    if (inWindow) {
      connections++
      bytesReceived += p.pollBytes / 2
    }
    if (!inWindow) continue
    const start = Math.max(served, upFree)
    upFree = start + policyBytes * 1000 / net.uplinkBytesPerS
    bytesSent += policyBytes
    applied[i] = upFree + lat() + lossDelay(policyBytes, net, random) + p.applyMs
    lastApply = Math.max(lastApply, applied[i]!)
    if (--left === 0) break
  }
  const latencies: number[] = []
  for (let i = 0; i < nodes; i++) if (!Number.isNaN(applied[i]!)) latencies.push(applied[i]! - publishAt)
  return {
    kind: 'pull',
    label: `central pull every ${fmtInterval(T)}`,
    nodes,
    policyBytes,
    times: quantiles(latencies, nodes),
    busiest: { bytesSent, bytesReceived, connections, concurrent: cores.length },
    utilisation: nodes * p.serveMs / (T * cores.length),
    wallMs: performance.now() - wall
  }
}

function fmtInterval (ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`
}

export interface BatchParams {
  /** Hosts per batch, as a share of the fleet (Salt `--batch-size 5%`, Ansible `serial: "5%"`). */
  batchPercent: number
  /** Round trips before the payload moves, as in central push. */
  sessionRtts: number
  applyMs: number
  /** Stop after the first batch with a failing host (Salt `--failhard`, Ansible `max_fail_percentage: 0`). */
  failhard: boolean
}

export interface BatchResult extends BaselineResult {
  /** Hosts the master pushed the change to: a bad change's reach. */
  blastRadius: number
  /** Stopped by failhard before the last batch. */
  halted: boolean
  batches: number
}

/**
 * Batched central push (Salt batch mode, Ansible `serial`): the master pushes to the next
 * batch of hosts all at once (one session each, its uplink shared), waits until every host of
 * the batch has applied and reported, then starts the next. With failhard, a batch where any
 * host fails is the last. `fails(i)`: host i's health check fails after the apply. Hosts are
 * taken in order, as the master's target list gives them.
 */
export function batchPush (nodes: number, policyBytes: number, net: BaselineNet, p: BatchParams, fails: (host: number) => boolean, seed = 1): BatchResult {
  const wall = performance.now()
  const random = prng(seedOf(seed, 'batch', nodes, p.batchPercent))
  const lat = (): number => sampleLatency(net.latency, random)
  const size = Math.max(1, Math.ceil((nodes * p.batchPercent) / 100))
  const applied: number[] = []
  let t = 0
  let upFree = 0
  let batches = 0
  let halted = false
  for (let first = 0; first < nodes && !halted; first += size) {
    batches++
    let end = t
    for (let j = first; j < Math.min(nodes, first + size); j++) {
      let s = t
      for (let r = 0; r < p.sessionRtts; r++) s += lat() + lat()
      const start = Math.max(s, upFree)
      upFree = start + policyBytes * 1000 / net.uplinkBytesPerS
      const done = upFree + lat() + lossDelay(policyBytes, net, random) + p.applyMs
      applied.push(done)
      // The host's report comes back to the master: the batch ends when the last one is in.
      end = Math.max(end, done + lat())
      if (fails(j) && p.failhard) halted = true
    }
    t = end
  }
  return {
    kind: 'push',
    label: `batched push, ${p.batchPercent}% per batch${p.failhard ? ', failhard' : ''}`,
    nodes,
    policyBytes,
    times: quantiles(applied, nodes),
    busiest: { bytesSent: applied.length * policyBytes, bytesReceived: 0, connections: applied.length, concurrent: size },
    wallMs: performance.now() - wall,
    blastRadius: applied.length,
    halted: halted && applied.length < nodes,
    batches
  }
}
