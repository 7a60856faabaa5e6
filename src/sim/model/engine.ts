// The model engine: a seeded discrete-event simulation of how the agent disseminates a policy
// (gossipsub mesh forwarding, flood-publish, IHAVE/IWANT gossip, anti-entropy sync), at the
// level of messages, over a network of latency, bandwidth and loss, with churn and
// partitions. State lives in typed arrays indexed by node; events in a binary heap.

import { EventQueue, emptyEvent } from './heap.js'
import { NeighbourLists, MESH_STRIDE, allowed, buildGraph, connectNodes, formMesh, repairMesh, topUpNode, type Graph } from './network.js'
import { sampleLatency, type LatencyDist } from '../random.js'
import { MAX_BACKOFFS } from '../constants.js'
import { DEFAULT_MSS_BYTES } from '../constants.js'
import type { Topology } from '../scenario.js'
import { linkOf, selectEnvelope } from '../../envelope/selector.js'
import { announces, fetchCandidates, forwards, receiptRoute, rotates, rotationDrop, syncDelay, type Via } from '../../node/rules.js'
import { jittered, TASK_JITTER } from '../../node/clock.js'
import { FETCH_TIMEOUT_MS } from '../../sync/constants.js'
import { ARCHIVED_VERSIONS } from '../../store/state.js'
import { CONNECT_RTTS, DIGEST_ENTRY_BYTES, FORCE_FIELD_BYTES, MSG_ID_BYTES, PREV_FIELD_BYTES, RPC_OVERHEAD_BYTES, STAGED_FIELD_BYTES, SYNC_RTTS } from './constants.js'

export interface CpuCosts {
  /** First copy of a policy envelope: decode, hash, signature, schema, version rule, taking it. */
  verifyMs: number
  /** First copy of a receipt or beacon: decode and signature only (validateReport costs half of validateEnvelope). */
  receiptVerifyMs: number
  /** A copy already seen, dropped by message id. */
  duplicateMs: number
  /** Encoding and encrypting one copy for one peer. */
  sendMs: number
  /** Applying a policy (plan, write, verify), off the gossip path. */
  applyMs: number
  /** Extra per KiB of message handled (hashing, copying), on top of the above. */
  perKiBMs: number
  /**
   * CPU each agent burns per second whatever it is doing (gossipsub heartbeats and scoring,
   * identify, timers). On a shared host it steals that share of the cores from the message path.
   */
  backgroundMsPerS: number
  /** Disk time of an apply (atomic writes, fsyncs, state and history), on the node's disk, or the one shared disk. */
  applyIoMs: number
  /**
   * Disk time to store an accepted envelope durably, queued when it is accepted; its apply
   * waits for it (the agent's Intake.saving). 0 (absent): counted in applyIoMs.
   */
  saveIoMs?: number
}

export interface GossipParams {
  D: number
  Dlo: number
  Dhi: number
  Dlazy: number
  gossipFactor: number
  historyGossip: number
  heartbeatMs: number
  floodPublish: boolean
  /** Mean periodic sync interval (0 disables); rounds happen every interval × U(0.5, 1.5). */
  syncIntervalMs: number
  targetPeers: number
  /** Dial peers until targetPeers connections (the steady state of a running fleet). */
  topUp: boolean
  /** Peer maintenance interval (top-up and rotation ticks, jittered as the agent's), from the first partition on. */
  reconnectMs: number
  /** The agent's PEER_ROTATION_CHANCE; 0 models agents that never rotate (how a healed cut stayed split). */
  rotationChance: number
}

export interface NetParams {
  latency: LatencyDist
  loss: number
  rto: number
  /** Per-node upload bandwidth, bytes/s. */
  uplinkBytesPerS: number
  /**
   * Extra one-way delay of a message between two hosts when the link is delayed at all
   * (latency not a constant 0): 0 for a real network. The netns engine's delay is a user-space
   * NFQUEUE delayer sharing this machine's cores with every agent, and the kernel's per-packet
   * delay meets TCP's ACK clocking; fitted on the shared host (constants.ts NETNS_SHARED_NET).
   */
  shapedHopMs?: number
}

export interface EngineParams {
  gossip: GossipParams
  net: NetParams
  cpu: CpuCosts
  /** 'node': every agent has its own CPU; a number: all agents share that many cores (live runs on one host). */
  cpuShare: 'node' | number
  /**
   * Agents per host (the scenario's nodes.perHost; 1 when absent): node i is on host
   * i mod ceil(N / perHost), as the netns engine places them. Agents on one host talk over
   * loopback (no latency, no loss, loopbackBytesPerS) and, with perHost > 1, run in one
   * single-threaded process and share one disk: the netns engine's one worker process per host.
   * On dedicated hosts that is the host's disk; on a shared host there is one disk anyway.
   */
  perHost: number
  /** Bandwidth between two agents on one host, bytes/s. */
  loopbackBytesPerS: number
  /**
   * Envelopes over this many bytes go as a signed header, the body fetched from the announcer
   * (announce-and-fetch); smaller ones, or all with 0, are gossiped whole. As the agent's --announce-threshold.
   */
  announceThreshold: number
  headerBytes: number
  receipts: boolean
  receiptBytes: number
}

/** One published envelope (receipts are events, not messages: see sendReceipt). */
export interface ModelMessage {
  /** Policy name index. */
  name: number
  version: number
  /** Content hash (`sha256:…`) and envelope id: what the version rule (selectEnvelope) compares. */
  hash: string
  id: string
  /** The id of the envelope it supersedes: what its publisher held for the name (absent for a first version). */
  prev?: string
  /** A signed reason to replace whatever a node holds, chain or not. */
  force?: string
  /** Signed by a root key: linkOf's `root` link. */
  root: boolean
  /**
   * Published with a staged rollout: a targeted node holds it and applies nothing until the
   * scenario layer, from the rollout record the node holds, calls `enforce` (docs/rollout.md).
   */
  staged?: boolean
  /** A rollout record: held, gossiped and synced like a policy, never applied, no receipt. */
  record?: boolean
  /** The whole envelope, chain fields included (chainFieldBytes). */
  bytes: number
  origin: number
  at: number
  /** Per node: SEEN (gossipsub seen cache), HAVE (holds this envelope), FETCHING, ASKED (IWANT sent). */
  state: Uint8Array
  /** Per node: arrival time of the first copy (gossip) or the accept time; NaN before. */
  acceptedAt: Float64Array
  /** Per node: hops from the publisher of the copy it accepted (0 for the publisher; sync counts as a hop). */
  hops: Uint8Array
  /** Per node: the peer it first took this envelope from, where its receipts go (-1: none, the publisher). */
  upstream: Int32Array
  targeted: Uint8Array | undefined
}

export const SEEN = 1
export const HAVE = 2
const FETCHING = 4
const ASKED = 8
/** The first copy is being validated (or its body fetched): gossipsub notes who else sends it meanwhile. */
const VALIDATING = 16

/** Bytes the chain fields add to an envelope's signed header (and so to an announcement). */
export function chainFieldBytes (m: Pick<ModelMessage, 'prev' | 'force' | 'staged'>): number {
  return (m.prev !== undefined ? PREV_FIELD_BYTES : 0) + (m.force !== undefined ? FORCE_FIELD_BYTES + Buffer.byteLength(m.force) : 0) + (m.staged === true ? STAGED_FIELD_BYTES : 0)
}

/**
 * Envelopes one peer sends another over one sync stream, oldest first, and when each arrives.
 * The receiver takes each before it reads the next (the agent awaits ingest per frame).
 */
interface SyncStream {
  msgs: number[]
  at: number[]
  next: number
  /** A catch-up's envelope to settle once the stream is read (-1: none): still unlinked, it is a fork. */
  settle: number
}

const enum Ev {
  Timeline = 1,
  Arrive,
  Validated,
  IHave,
  IWant,
  GossipTick,
  SyncTimer,
  SyncCompare,
  SyncArrive,
  SyncValidated,
  FetchStart,
  FetchReq,
  BodyArrive,
  FetchFailed,
  Heartbeat,
  Maintain,
  Connected,
  ApplyDone,
  ReceiptArrive,
  /** An accepted envelope is on disk (saveIoMs): its apply starts. */
  Saved
}

export interface Traffic {
  gossipSent: Float64Array
  gossipRecv: Float64Array
  syncSent: Float64Array
  syncRecv: Float64Array
  /** Receipts received from peers (routed towards the publisher, who receives them all). */
  receiptsRecv: Float64Array
  /** Bytes of policy content received (gossip copies, fetched bodies, sync envelopes): the 1 MiB figure. */
  policyRecv: Float64Array
  policyMsgs: Float64Array
  policyDups: Float64Array
  /** Connections each node opened or accepted during the run, initial ones included. */
  connections: Float64Array
}

/** The ways an envelope reaches a node in the model: a subset of the agent's Via. */
export type ModelVia = Extract<Via, 'gossip' | 'sync' | 'local'>

export interface Hooks {
  /** A node accepted a policy message (delivery). */
  onAccept: (node: number, msg: number, via: ModelVia, at: number) => void
  onApply: (node: number, msg: number, at: number) => void
  /** Two contents under one version met at `node` (selectEnvelope returned a conflict); `msg` is the one that lost. */
  onConflict: (node: number, msg: number, at: number) => void
  /** `node` held back a newer `msg` that does not extend what it holds (linkOf): once per node and message. */
  onFork: (node: number, msg: number, reason: 'unlinked' | 'jump', at: number) => void
  /** A timeline event fell due. */
  onTimeline: (index: number, at: number) => void
  /**
   * A report of `reporter`'s apply of `msg` is at `node` now: its own (node = reporter), or a
   * receipt passing through or arriving at the publisher. What the node's fleet view learns.
   */
  onReport?: (node: number, msg: number, reporter: number, at: number) => void
}

/**
 * The simulator's state and event handlers. The scenario layer (index.ts) drives it: it
 * creates nodes, schedules timeline events, and turns what happened into a RunRecord.
 */
export class Engine {
  readonly q: EventQueue
  readonly p: EngineParams
  readonly capacity: number
  nodes: number
  readonly g: Graph
  readonly mesh: NeighbourLists
  readonly up: Uint8Array
  /** Partition group while cut off (0 = free): nodes in different non-zero groups cannot talk. */
  readonly pgroup: Int32Array
  readonly upFree: Float64Array
  readonly cpuFree: Float64Array
  readonly cores: Float64Array
  readonly diskFree: Float64Array
  /** Hosts the first `nodes` agents were placed on (ceil(N / perHost)); node i is on host i mod hosts. */
  readonly hosts: number
  private readonly shapedHopMs: number
  /** Shared host: how much slower message work runs because of every agent's background load. */
  private slowdown = 1
  readonly phase: Float64Array
  readonly syncArmed: Uint8Array
  /** Per node: the message index currently held for each policy name, -1 for none. */
  readonly current: Int32Array[] = []
  readonly msgs: ModelMessage[] = []
  /**
   * Per (message, node) while it validates its first copy: the peers whose duplicates arrived
   * meanwhile. Gossipsub does not forward to them (its message cache's originating peers).
   */
  private readonly originating = new Map<number, number[]>()
  /** Per (message, node) fetching an announced body: the announcer and the candidates not yet asked (fetchCandidates). */
  private readonly fetches = new Map<number, { announcer: number, left: number[] }>()
  /** Sync streams being read, by id (an event's third argument). */
  private readonly streams = new Map<number, SyncStream>()
  private streamIds = 0
  /** Per (message, node): held back as a fork (reported once, as the agent's book does). */
  private readonly forked = new Set<number>()
  /** Per policy name, per node: the message a staged rollout made the node enforce (enforce), -1 for none. */
  private readonly enforcing = new Map<number, Int32Array>()
  /** Receipts in flight, by id (an event's second argument): the message reported on and the node that reported. */
  private readonly receiptMsg: number[] = []
  private readonly receiptNode: number[] = []
  /**
   * Peer maintenance runs from the first partition on: until one, the graph stays what it was
   * built as (topped up to the target, where rotation only swaps a random link for another).
   */
  private maintaining = false
  /** When each link (min · capacity + max) opened, for links opened once maintenance runs; older ones count as 0. */
  private readonly linkSince = new Map<number, number>()
  readonly traffic: Traffic
  now = 0
  events = 0
  private readonly ev = emptyEvent()

  constructor (readonly random: () => number, p: EngineParams, topology: Topology, nodes: number, capacity: number, readonly hooks: Hooks, names: number) {
    this.p = p
    this.capacity = capacity
    this.nodes = nodes
    this.q = new EventQueue(Math.max(1024, nodes * 8))
    this.g = buildGraph(topology, nodes, capacity, p.gossip.targetPeers, p.gossip.topUp, random)
    this.mesh = new NeighbourLists(capacity, MESH_STRIDE)
    this.up = new Uint8Array(capacity)
    this.pgroup = new Int32Array(capacity)
    this.upFree = new Float64Array(capacity)
    this.cpuFree = new Float64Array(capacity)
    this.cores = new Float64Array(typeof p.cpuShare === 'number' ? Math.max(1, p.cpuShare) : 0)
    this.diskFree = new Float64Array(typeof p.cpuShare === 'number' ? 1 : capacity)
    this.hosts = Math.max(1, Math.ceil(nodes / Math.max(1, p.perHost)))
    const l = p.net.latency
    this.shapedHopMs = l.dist === 'constant' && l.ms <= 0 ? 0 : p.net.shapedHopMs ?? 0
    this.phase = new Float64Array(capacity)
    this.syncArmed = new Uint8Array(capacity)
    for (let i = 0; i < names; i++) this.current.push(new Int32Array(capacity).fill(-1))
    const f = (): Float64Array => new Float64Array(capacity)
    this.traffic = { gossipSent: f(), gossipRecv: f(), syncSent: f(), syncRecv: f(), receiptsRecv: f(), policyRecv: f(), policyMsgs: f(), policyDups: f(), connections: f() }
    for (let i = 0; i < nodes; i++) {
      this.up[i] = 1
      this.phase[i] = random() * p.gossip.heartbeatMs
      this.traffic.connections[i] = this.g.conn.len[i]!
    }
    formMesh(this.g, this.mesh, nodes, p.gossip, (u, v) => this.live(u, v), random)
    this.updateSlowdown()
    for (let i = 0; i < nodes; i++) this.armSync(i, 0)
  }

  // ---- the network ---------------------------------------------------------

  /** u and v are connected, both up, and no partition stands between them. */
  live (u: number, v: number): boolean {
    if (this.up[u] === 0 || this.up[v] === 0) return false
    const a = this.pgroup[u]!
    const b = this.pgroup[v]!
    return a === 0 || b === 0 || a === b
  }

  /** The host node `v` runs on. */
  hostOf (v: number): number {
    return this.p.perHost > 1 ? v % this.hosts : v
  }

  /** u and v run on one host: their messages go over loopback. */
  sameHost (u: number, v: number): boolean {
    return this.p.perHost > 1 && u % this.hosts === v % this.hosts
  }

  /** One-way delay from u to v: none on loopback. */
  private latency (u: number, v: number): number {
    return this.sameHost(u, v) ? 0 : sampleLatency(this.p.net.latency, this.random) + this.shapedHopMs
  }

  /**
   * Extra delay from segment loss on a reliable stream: the unluckiest of the message's
   * segments waits rto × (2^k − 1) after k consecutive losses. Draws k from the distribution
   * of the maximum directly (one draw per message, not one per segment), the same law as
   * link.ts's lossDelay.
   */
  private lossDelay (bytes: number, u: number, v: number): number {
    const p = this.p.net.loss
    if (p <= 0 || this.sameHost(u, v)) return 0
    const segs = Math.max(1, Math.ceil(bytes / DEFAULT_MSS_BYTES))
    const r = this.random()
    let k = 0
    while (k < MAX_BACKOFFS && r < 1 - (1 - p ** (k + 1)) ** segs) k++
    return this.p.net.rto * (2 ** k - 1)
  }

  /** Runs `cost` ms of CPU for `node` from `t`; returns when it is done. */
  cpu (node: number, t: number, cost: number): number {
    if (cost <= 0) return t
    // Several agents on a host run in one single-threaded process: their work queues on it.
    const thread = this.hostOf(node)
    if (this.cores.length === 0) {
      const done = Math.max(t, this.cpuFree[thread]!) + cost
      this.cpuFree[thread] = done
      return done
    }
    cost *= this.slowdown
    let best = 0
    for (let i = 1; i < this.cores.length; i++) if (this.cores[i]! < this.cores[best]!) best = i
    const start = this.p.perHost > 1 ? Math.max(t, this.cores[best]!, this.cpuFree[thread]!) : Math.max(t, this.cores[best]!)
    const done = start + cost
    this.cores[best] = done
    if (this.p.perHost > 1) this.cpuFree[thread] = done
    return done
  }

  private updateSlowdown (): void {
    if (this.cores.length === 0) return
    let up = 0
    for (let i = 0; i < this.nodes; i++) up += this.up[i]!
    const busy = up * this.p.cpu.backgroundMsPerS / 1000 / this.cores.length
    this.slowdown = 1 / Math.max(0.05, 1 - busy)
  }

  /** Runs `cost` ms of disk I/O for `node` from `t` (one disk per node, or one for all on a shared host). */
  disk (node: number, t: number, cost: number): number {
    if (cost <= 0) return t
    const i = this.diskFree.length === 1 ? 0 : this.hostOf(node)
    const done = Math.max(t, this.diskFree[i]!) + cost
    this.diskFree[i] = done
    return done
  }

  private kib (bytes: number): number {
    return this.p.cpu.perKiBMs * bytes / 1024
  }

  /** Sends `bytes` from u to v at t: CPU to encode, then the uplink queue, then the link. Returns the arrival time. */
  private transmit (u: number, v: number, t: number, bytes: number, kind: 'gossip' | 'sync', cpuMs = this.p.cpu.sendMs + this.kib(bytes)): number {
    return this.uplink(u, v, t, bytes, kind, cpuMs) + this.latency(u, v) + this.lossDelay(bytes, u, v)
  }

  /** CPU to encode, then the uplink queue: when the last byte has left u. */
  private uplink (u: number, v: number, t: number, bytes: number, kind: 'gossip' | 'sync', cpuMs = this.p.cpu.sendMs + this.kib(bytes)): number {
    const ready = this.cpu(u, t, cpuMs)
    let done: number
    if (this.sameHost(u, v)) {
      // Loopback does not use the host's uplink.
      done = ready + bytes * 1000 / this.p.loopbackBytesPerS
    } else {
      done = Math.max(ready, this.upFree[u]!) + bytes * 1000 / this.p.net.uplinkBytesPerS
      this.upFree[u] = done
    }
    if (kind === 'gossip') this.traffic.gossipSent[u]! += bytes
    else this.traffic.syncSent[u]! += bytes
    return done
  }

  /** A small control message (IHAVE, IWANT, fetch request): latency only, bytes counted. */
  private control (u: number, v: number, t: number, bytes: number, kind: 'gossip' | 'sync'): number {
    if (kind === 'gossip') {
      this.traffic.gossipSent[u]! += bytes
      this.traffic.gossipRecv[v]! += bytes
    } else {
      this.traffic.syncSent[u]! += bytes
      this.traffic.syncRecv[v]! += bytes
    }
    return t + this.latency(u, v) + this.lossDelay(bytes, u, v)
  }

  private wireBytes (m: ModelMessage): number {
    return (announces(m.bytes, this.p.announceThreshold) ? this.headerBytes(m) : m.bytes) + RPC_OVERHEAD_BYTES
  }

  /** The signed header alone, as announced. */
  private headerBytes (m: ModelMessage): number {
    return this.p.headerBytes + chainFieldBytes(m)
  }

  // ---- scheduling ------------------------------------------------------------

  schedule (t: number, kind: number, a = 0, b = 0, c = 0): void {
    this.q.push(t, kind, a, b, c)
  }

  scheduleTimeline (t: number, index: number): void {
    this.schedule(t, Ev.Timeline, index)
  }

  nextHeartbeat (node: number, t: number): number {
    const hb = this.p.gossip.heartbeatMs
    const ph = this.phase[node]!
    return ph + (Math.floor((t - ph) / hb) + 1) * hb
  }

  private armSync (node: number, t: number): void {
    const iv = this.p.gossip.syncIntervalMs
    if (iv <= 0 || this.syncArmed[node] === 1) return
    this.syncArmed[node] = 1
    this.schedule(t + syncDelay(iv, this.random), Ev.SyncTimer, node)
  }

  /** Runs events until `until` (inclusive) or until `stop` says so; returns the time reached. */
  run (until: number, stop?: () => boolean, checkEvery = 4096): number {
    const e = this.ev
    let n = 0
    while (this.q.peekTime() <= until) {
      this.q.pop(e)
      this.now = e.time
      this.events++
      this.dispatch(e.kind, e.a, e.b, e.c)
      if (stop !== undefined && ++n % checkEvery === 0 && stop()) break
    }
    return this.now
  }

  private dispatch (kind: number, a: number, b: number, c: number): void {
    switch (kind as Ev) {
      case Ev.Timeline: this.hooks.onTimeline(a, this.now); return
      case Ev.Arrive: this.arrive(a, b, c); return
      case Ev.Validated: this.validated(a, b, c, 'gossip'); return
      case Ev.IHave: this.ihave(a, b, c); return
      case Ev.IWant: this.iwant(a, b, c); return
      case Ev.GossipTick: this.gossipTick(a, b, c); return
      case Ev.SyncTimer: this.syncTimer(a); return
      case Ev.SyncCompare: this.syncCompare(a, b, c); return
      case Ev.SyncArrive: this.syncArrive(a, b, c); return
      case Ev.SyncValidated: this.syncTaken(a, b, c); return
      case Ev.FetchStart: this.fetchStart(a, b, c); return
      case Ev.FetchReq: this.fetchReq(a, b, c); return
      case Ev.BodyArrive: this.bodyArrive(a, b, c); return
      case Ev.FetchFailed: this.fetchNext(a, c); return
      case Ev.Heartbeat: this.heartbeat(a); return
      case Ev.Maintain: this.maintain(a); return
      case Ev.Connected: this.connected(a, b); return
      case Ev.ApplyDone: this.applyDone(a, c, b === 1); return
      case Ev.ReceiptArrive: this.receiptArrive(a, b, c); return
      case Ev.Saved: this.startApply(a, c); return
    }
  }

  // ---- messages ------------------------------------------------------------

  addMessage (m: Omit<ModelMessage, 'state' | 'acceptedAt' | 'hops' | 'upstream'>): number {
    this.msgs.push({ ...m, state: new Uint8Array(this.capacity), acceptedAt: new Float64Array(this.capacity).fill(NaN), hops: new Uint8Array(this.capacity), upstream: new Int32Array(this.capacity).fill(-1) })
    return this.msgs.length - 1
  }

  /** A node publishes: takes the envelope locally, then sends it to every topic peer (flood-publish) or its mesh. */
  publish (node: number, msg: number): void {
    const m = this.msgs[msg]!
    const t = this.now
    m.state[node]! |= SEEN
    if (!this.accept(node, msg, t, 'local', -1)) return
    if (forwards('local', false, t - m.at)) this.relay(node, -1, msg, t, this.p.gossip.floodPublish)
  }

  /**
   * A whole copy of `msg` reaches `v` from `from` now, by gossip or in a sync round: the model's
   * `agent.ingest(bytes, via)`. The scenario layer never needs it; tests drive single decisions with it.
   */
  receive (v: number, from: number, msg: number, via: 'gossip' | 'sync'): void {
    if (via === 'gossip') this.arrive(v, from, msg)
    else this.syncArrive(v, from, this.openStream([msg], [this.now], -1))
  }

  /** Forwards to mesh peers (or all connections) except the source, and advertises the id for the next heartbeats. */
  private relay (node: number, from: number, msg: number, t: number, flood: boolean): void {
    const m = this.msgs[msg]!
    const bytes = this.wireBytes(m)
    const rows = flood ? this.g.conn : this.mesh
    const n = rows.len[node]!
    const key = msg * this.capacity + node
    const skip = this.originating.get(key)
    this.originating.delete(key)
    for (let i = 0; i < n; i++) {
      const v = rows.get(node, i)
      if (v === from || !this.live(node, v) || skip?.includes(v) === true) continue
      this.schedule(this.transmit(node, v, t, bytes, 'gossip'), Ev.Arrive, v, node, msg)
    }
    if (this.p.gossip.historyGossip > 0) this.schedule(this.nextHeartbeat(node, t), Ev.GossipTick, node, this.p.gossip.historyGossip, msg)
  }

  private arrive (v: number, from: number, msg: number): void {
    if (this.up[v] === 0) return
    const m = this.msgs[msg]!
    const bytes = this.wireBytes(m)
    const tr = this.traffic
    tr.gossipRecv[v]! += bytes
    tr.policyMsgs[v]!++
    const announce = announces(m.bytes, this.p.announceThreshold)
    if (!announce) tr.policyRecv[v]! += m.bytes
    if ((m.state[v]! & SEEN) !== 0) {
      tr.policyDups[v]!++
      this.cpu(v, this.now, this.p.cpu.duplicateMs)
      if ((m.state[v]! & VALIDATING) !== 0) {
        const key = msg * this.capacity + v
        const peers = this.originating.get(key)
        if (peers === undefined) this.originating.set(key, [from])
        else peers.push(from)
      }
      return
    }
    m.state[v]! |= SEEN | VALIDATING
    // Whole envelope: verify it. Announce: verify the header's signature, then fetch the body.
    const done = this.cpu(v, this.now, this.p.cpu.verifyMs + this.kib(announce ? this.headerBytes(m) : m.bytes))
    if (announce) this.schedule(done, Ev.FetchStart, v, from, msg)
    else this.schedule(done, Ev.Validated, v, from, msg)
  }

  /**
   * The validator's verdict is in: take it by the version rule, then send it on if the agent
   * would (forwards). Gossipsub forwards what its validator accepted to its mesh, but not to the
   * peer it came from (for a fetched body: the announcer) nor to those whose copies arrived
   * meanwhile. What the agent took by sync it publishes itself, to every topic peer, unless
   * gossipsub has seen that message id already (publish refuses a duplicate).
   */
  private validated (v: number, from: number, msg: number, via: 'gossip' | 'sync'): void {
    if (this.up[v] === 0) return
    const m = this.msgs[msg]!
    const key = msg * this.capacity + v
    const f = via === 'gossip' ? this.fetches.get(key) : undefined
    const source = f?.announcer ?? from
    if (via === 'gossip') {
      m.state[v]! &= ~VALIDATING
      this.fetches.delete(key)
    }
    const seen = (m.state[v]! & SEEN) !== 0
    const held = this.current[m.name]![v]!
    if (!this.accept(v, msg, this.now, via, from)) {
      // A fetched body that sync brought meanwhile: the announcement validator accepts what is held.
      if (f !== undefined && held === msg) this.relay(v, source, msg, this.now, false)
      else if (via === 'gossip') this.originating.delete(key)
      return
    }
    m.hops[v] = Math.min(255, m.hops[from]! + 1)
    if (!forwards(via, held >= 0, this.now - m.at)) return
    if (via === 'gossip') this.relay(v, source, msg, this.now, false)
    else if (!seen) this.relay(v, -1, msg, this.now, this.p.gossip.floodPublish)
  }

  /**
   * The version rule (selectEnvelope, conflicts included), then the chain rule for a newer
   * version (linkOf), as the agent's book; records the delivery, remembers where receipts go
   * (`from`, -1 for none) and schedules the apply. False when not taken.
   */
  private accept (v: number, msg: number, t: number, via: ModelVia, from: number): boolean {
    const m = this.msgs[msg]!
    const cur = this.current[m.name]!
    const held = cur[v]!
    const current = held >= 0 ? this.msgs[held] : undefined
    const selection = selectEnvelope(current, m)
    if (selection.conflict !== undefined) this.hooks.onConflict(v, selection.accept ? held : msg, t)
    if (!selection.accept) return false
    const link = current !== undefined && m.version > current.version ? linkOf(current, m, m.root) : undefined
    if (link === 'unlinked' || link === 'jump') {
      this.unlinked(v, msg, link, via, from, t)
      return false
    }
    cur[v] = msg
    m.state[v]! |= HAVE | SEEN
    m.acceptedAt[v] = t
    m.upstream[v] = from
    this.hooks.onAccept(v, msg, via, t)
    const targeted = m.targeted === undefined || m.targeted[v] === 1
    // A record, or a staged version for this node: what it enforces is the scenario layer's call (enforce).
    const saved = this.disk(v, t, this.p.cpu.saveIoMs ?? 0)
    if (m.record === true || (m.staged === true && targeted)) return true
    if (targeted) {
      // The agent applies an envelope once it is stored (Intake.saving); without a save cost, at once.
      if (saved > t) this.schedule(saved, Ev.Saved, v, 0, msg)
      else this.startApply(v, msg, t)
    } else if (this.p.receipts) {
      this.sendReceipt(v, this.newReceipt(msg, v), -1, t)
    }
    return true
  }

  /** The apply of `msg` at `v`: its CPU (on the node's, host's or shared cores), then its disk. */
  private startApply (v: number, msg: number, t = this.now): void {
    this.schedule(this.disk(v, this.cpu(v, t, this.p.cpu.applyMs), this.p.cpu.applyIoMs), Ev.ApplyDone, v, 0, msg)
  }

  /**
   * A newer version that does not extend the held one (the agent's intake): by gossip the node
   * may lack the versions between, so it syncs with the sender, whose answer carries them
   * (catchUp, then settle). Otherwise (by sync, published locally, a jump) it is a fork.
   */
  private unlinked (v: number, msg: number, reason: 'unlinked' | 'jump', via: ModelVia, from: number, t: number): void {
    if (reason === 'unlinked' && via === 'gossip' && from >= 0) this.startSync(v, from, t, msg)
    else this.fork(v, msg, reason, t)
  }

  /** After the catch-up with the peer that offered `msg`: still newer than what `v` holds, it is a fork. */
  private settle (v: number, msg: number): void {
    const m = this.msgs[msg]!
    const held = this.current[m.name]![v]!
    if (this.up[v] === 1 && held >= 0 && this.msgs[held]!.version < m.version) this.fork(v, msg, 'unlinked', this.now)
  }

  private fork (v: number, msg: number, reason: 'unlinked' | 'jump', t: number): void {
    const key = msg * this.capacity + v
    if (this.forked.has(key)) return
    this.forked.add(key)
    this.hooks.onFork(v, msg, reason, t)
  }

  /**
   * `v` applies `msg` because a staged rollout's record says so: the version it holds, or an
   * older one it archived (nodes outside the stage, a rollback). A later enforce supersedes it.
   */
  enforce (v: number, msg: number, t: number): void {
    const m = this.msgs[msg]!
    let row = this.enforcing.get(m.name)
    if (row === undefined) this.enforcing.set(m.name, row = new Int32Array(this.capacity).fill(-1))
    row[v] = msg
    this.schedule(this.disk(v, this.cpu(v, t, this.p.cpu.applyMs), this.p.cpu.applyIoMs), Ev.ApplyDone, v, 1, msg)
  }

  private applyDone (v: number, msg: number, enforced: boolean): void {
    if (this.up[v] === 0) return
    const m = this.msgs[msg]!
    if (enforced ? this.enforcing.get(m.name)?.[v] !== msg : this.current[m.name]![v] !== msg) return
    this.hooks.onApply(v, msg, this.now)
    this.hooks.onReport?.(v, msg, v, this.now)
    if (this.p.receipts) this.sendReceipt(v, this.newReceipt(msg, v), -1, this.now)
  }

  private newReceipt (msg: number, reporter: number): number {
    this.receiptMsg.push(msg)
    this.receiptNode.push(reporter)
    return this.receiptMsg.length - 1
  }

  /**
   * `v` passes a receipt for `msg` (its own, or one that came from `from`; -1 for its own) back
   * along the envelope's path by the agent's receiptRoute: to the peer it took the envelope from,
   * unless that is none (the publisher), the sender, or no longer connected. Then it keeps it.
   */
  private sendReceipt (v: number, receipt: number, from: number, t: number): void {
    const up = this.msgs[this.receiptMsg[receipt]!]!.upstream[v]!
    const to = receiptRoute(up < 0 ? undefined : up, from < 0 ? undefined : from, (w) => this.live(v, w))
    if (to === undefined) return
    this.schedule(this.transmit(v, to, t, this.p.receiptBytes + RPC_OVERHEAD_BYTES, 'gossip'), Ev.ReceiptArrive, to, receipt, v)
  }

  private receiptArrive (v: number, receipt: number, from: number): void {
    if (this.up[v] === 0) return
    this.traffic.gossipRecv[v]! += this.p.receiptBytes + RPC_OVERHEAD_BYTES
    this.traffic.receiptsRecv[v]!++
    const t = this.cpu(v, this.now, this.p.cpu.receiptVerifyMs)
    this.hooks.onReport?.(v, this.receiptMsg[receipt]!, this.receiptNode[receipt]!, t)
    this.sendReceipt(v, receipt, from, t)
  }

  // ---- IHAVE / IWANT -------------------------------------------------------

  /** A heartbeat while the id is in the gossip window: IHAVE to D_lazy (or gossipFactor of) non-mesh peers. */
  private gossipTick (v: number, left: number, msg: number): void {
    if (this.up[v] === 0) return
    const cands: number[] = []
    const n = this.g.conn.len[v]!
    for (let i = 0; i < n; i++) {
      const w = this.g.conn.get(v, i)
      if (this.live(v, w) && !this.mesh.has(v, w)) cands.push(w)
    }
    const target = Math.max(this.p.gossip.Dlazy, Math.floor(this.p.gossip.gossipFactor * cands.length))
    for (let k = 0; k < target && cands.length > 0; k++) {
      const j = Math.floor(this.random() * cands.length)
      const w = cands[j]!
      cands[j] = cands[cands.length - 1]!
      cands.pop()
      this.schedule(this.control(v, w, this.now, RPC_OVERHEAD_BYTES + MSG_ID_BYTES, 'gossip'), Ev.IHave, w, v, msg)
    }
    if (left > 1) this.schedule(this.now + this.p.gossip.heartbeatMs, Ev.GossipTick, v, left - 1, msg)
  }

  private ihave (w: number, v: number, msg: number): void {
    if (this.up[w] === 0) return
    const m = this.msgs[msg]!
    if ((m.state[w]! & (SEEN | ASKED)) !== 0) return
    m.state[w]! |= ASKED
    this.schedule(this.control(w, v, this.now, RPC_OVERHEAD_BYTES + MSG_ID_BYTES, 'gossip'), Ev.IWant, v, w, msg)
  }

  private iwant (v: number, w: number, msg: number): void {
    const m = this.msgs[msg]!
    if (!this.live(v, w)) {
      m.state[w]! &= ~ASKED
      return
    }
    this.schedule(this.transmit(v, w, this.now, this.wireBytes(m), 'gossip'), Ev.Arrive, w, v, msg)
  }

  // ---- announce-and-fetch ----------------------------------------------------

  /**
   * `v` verified an announcement from `announcer` and fetches the body as the agent does: the
   * announcer first, then other connected peers in random order, at most MAX_FETCH_PEERS in
   * all (fetchCandidates), one at a time.
   */
  private fetchStart (v: number, announcer: number, msg: number): void {
    const m = this.msgs[msg]!
    if (this.up[v] === 0 || (m.state[v]! & FETCHING) !== 0) return
    const others: number[] = []
    const n = this.g.conn.len[v]!
    for (let i = 0; i < n; i++) {
      const w = this.g.conn.get(v, i)
      if (this.live(v, w)) others.push(w)
    }
    m.state[v]! |= FETCHING
    this.fetches.set(msg * this.capacity + v, { announcer, left: fetchCandidates(announcer, others, this.random) })
    this.fetchNext(v, msg)
  }

  /**
   * Asks the next candidate. Before each, as the agent: stop if it holds the envelope now (sync
   * brought it: the validator accepts, gossipsub forwards the announcement) or a newer version.
   * With no candidate left the validator ignores the announcement and anti-entropy brings it.
   */
  private fetchNext (v: number, msg: number): void {
    const m = this.msgs[msg]!
    const key = msg * this.capacity + v
    const f = this.fetches.get(key)
    if (f === undefined || this.up[v] === 0) return
    const held = this.current[m.name]![v]!
    const next = held === msg || (held >= 0 && this.msgs[held]!.version > m.version) ? undefined : f.left.shift()
    if (next === undefined) {
      this.fetches.delete(key)
      m.state[v]! &= ~(FETCHING | VALIDATING)
      if (held === msg) this.relay(v, f.announcer, msg, this.now, false)
      else this.originating.delete(key)
      return
    }
    // A peer gone (stopped, cut off) answers nothing: the agent waits out the fetch timeout.
    if (!this.live(v, next)) {
      this.schedule(this.now + FETCH_TIMEOUT_MS, Ev.FetchFailed, v, next, msg)
      return
    }
    this.schedule(this.control(v, next, this.now, RPC_OVERHEAD_BYTES + MSG_ID_BYTES, 'sync'), Ev.FetchReq, next, v, msg)
  }

  /** At candidate `w`: a request for the body from `v`. It serves the envelope if it holds exactly that one, else answers "missing". */
  private fetchReq (w: number, v: number, msg: number): void {
    const m = this.msgs[msg]!
    if (!this.live(w, v)) {
      this.schedule(this.now + FETCH_TIMEOUT_MS, Ev.FetchFailed, v, w, msg)
      return
    }
    if (this.current[m.name]![w] === msg) this.schedule(this.transmit(w, v, this.now, m.bytes + RPC_OVERHEAD_BYTES, 'sync'), Ev.BodyArrive, v, w, msg)
    else this.schedule(this.control(w, v, this.now, RPC_OVERHEAD_BYTES, 'sync'), Ev.FetchFailed, v, w, msg)
  }

  private bodyArrive (v: number, holder: number, msg: number): void {
    const m = this.msgs[msg]!
    if (this.up[v] === 0 || !this.fetches.has(msg * this.capacity + v)) return
    this.traffic.syncRecv[v]! += m.bytes + RPC_OVERHEAD_BYTES
    this.traffic.policyRecv[v]! += m.bytes
    m.state[v]! &= ~FETCHING
    // The body is checked against the signed hash: a hash, not a second signature check.
    this.schedule(this.cpu(v, this.now, this.kib(m.bytes)), Ev.Validated, v, holder, msg)
  }

  // ---- anti-entropy ----------------------------------------------------------

  private syncTimer (v: number): void {
    this.syncArmed[v] = 0
    if (this.up[v] === 0) return
    this.armSync(v, this.now)
    const live: number[] = []
    const n = this.g.conn.len[v]!
    for (let i = 0; i < n; i++) {
      const w = this.g.conn.get(v, i)
      if (this.live(v, w)) live.push(w)
    }
    if (live.length === 0) return
    this.startSync(v, live[Math.floor(this.random() * live.length)]!, this.now)
  }

  /**
   * A sync round: digests cross (one round trip), then each side pulls what the other has newer.
   * A catch-up names the envelope `settle` to decide once the round has brought what it could.
   */
  startSync (v: number, w: number, t: number, settle = -1): void {
    const dv = this.digestSize(v) * DIGEST_ENTRY_BYTES + RPC_OVERHEAD_BYTES
    const dw = this.digestSize(w) * DIGEST_ENTRY_BYTES + RPC_OVERHEAD_BYTES
    this.traffic.syncSent[v]! += dv
    this.traffic.syncRecv[w]! += dv
    this.traffic.syncSent[w]! += dw
    this.traffic.syncRecv[v]! += dw
    // Opening the stream and crossing digests: one round trip; the wants and envelopes are the second (SYNC_RTTS).
    this.schedule(t + this.rtts(SYNC_RTTS - 1, v, w), Ev.SyncCompare, v, w, settle)
  }

  private digestSize (v: number): number {
    let k = 0
    for (const cur of this.current) if (cur[v]! >= 0) k++
    return k
  }

  private syncCompare (v: number, w: number, settle: number): void {
    if (!this.live(v, w)) {
      if (settle >= 0) this.settle(v, settle)
      return
    }
    const late = settle >= 0 ? this.msgs[settle]!.name : -1
    for (const [name, cur] of this.current.entries()) {
      const a = cur[v]!
      const b = cur[w]!
      if (a === b) continue
      // Each side asks for what the other's digest entry would win by the version rule (sync's
      // namesToFetch): the want crosses, the envelopes come back, along the chain where it links.
      const ma = a >= 0 ? this.msgs[a] : undefined
      const mb = b >= 0 ? this.msgs[b] : undefined
      if (mb !== undefined && selectEnvelope(ma, mb).accept) {
        this.sendChain(w, v, this.chainSince(w, b, ma), name === late ? settle : -1)
        if (name === late) settle = -1
      } else if (ma !== undefined && selectEnvelope(mb, ma).accept) {
        this.sendChain(v, w, this.chainSince(v, a, mb), -1)
      }
    }
    if (settle >= 0) this.settle(v, settle)
  }

  /**
   * What `w` sends a peer that holds `since` for the name of `head` (journal.ts chainSince):
   * the versions between, from what `w` archived, then `head`, oldest first, where they link
   * up from `since`; else `head` alone, and the peer sees a fork rather than a silent jump.
   */
  private chainSince (w: number, head: number, since: ModelMessage | undefined): number[] {
    const h = this.msgs[head]!
    if (since === undefined || since.version >= h.version || h.prev === undefined || h.prev === since.id) return [head]
    const archive = this.archived(w, h.name)
    const chain = [head]
    for (let m = h; m.prev !== since.id;) {
      const before = archive.get(m.prev ?? '')
      if (before === undefined) return [head]
      const b = this.msgs[before]!
      if (b.version >= m.version || b.version <= since.version) return [head]
      chain.push(before)
      m = b
    }
    return chain.reverse()
  }

  /**
   * What `w`'s archive holds for a name, by envelope id: per version the envelope it took last,
   * for the newest ARCHIVED_VERSIONS versions (store/state.ts saveEnvelope).
   */
  private archived (w: number, name: number): Map<string, number> {
    const last = new Map<number, number>()
    for (const [i, m] of this.msgs.entries()) {
      if (m.name !== name || (m.state[w]! & HAVE) === 0) continue
      const k = last.get(m.version)
      if (k === undefined || this.msgs[k]!.acceptedAt[w]! <= m.acceptedAt[w]!) last.set(m.version, i)
    }
    const kept = [...last].sort(([x], [y]) => y - x).slice(0, ARCHIVED_VERSIONS)
    return new Map(kept.map(([, i]) => [this.msgs[i]!.id, i]))
  }

  /**
   * `from` sends `msgs` to `to` on one sync stream, after the want crosses: they leave its
   * uplink back to back and arrive in order (a late segment holds back the rest).
   */
  private sendChain (from: number, to: number, msgs: number[], settle: number): void {
    const wantAt = this.control(to, from, this.now, RPC_OVERHEAD_BYTES + MSG_ID_BYTES, 'sync')
    const at: number[] = []
    let latency = -1
    for (const msg of msgs) {
      const bytes = this.msgs[msg]!.bytes + RPC_OVERHEAD_BYTES
      const sent = this.uplink(from, to, wantAt, bytes, 'sync')
      if (latency < 0) latency = this.latency(from, to)
      at.push(Math.max(at[at.length - 1] ?? 0, sent + latency + this.lossDelay(bytes, from, to)))
    }
    this.schedule(at[0]!, Ev.SyncArrive, to, from, this.openStream(msgs, at, settle))
  }

  private openStream (msgs: number[], at: number[], settle: number): number {
    const id = this.streamIds++
    this.streams.set(id, { msgs, at, next: 0, settle })
    return id
  }

  /** The next envelope of a sync stream has arrived at `v`: verify it. */
  private syncArrive (v: number, from: number, stream: number): void {
    const s = this.streams.get(stream)!
    if (this.up[v] === 0) {
      this.streams.delete(stream)
      return
    }
    const m = this.msgs[s.msgs[s.next]!]!
    this.traffic.syncRecv[v]! += m.bytes + RPC_OVERHEAD_BYTES
    this.traffic.policyRecv[v]! += m.bytes
    this.schedule(this.cpu(v, this.now, this.p.cpu.verifyMs + this.kib(m.bytes)), Ev.SyncValidated, v, from, stream)
  }

  /** Verified: take it, then read the next one; after the last, settle a catch-up. */
  private syncTaken (v: number, from: number, stream: number): void {
    const s = this.streams.get(stream)!
    this.validated(v, from, s.msgs[s.next]!, 'sync')
    if (++s.next < s.msgs.length && this.up[v] === 1) {
      this.schedule(Math.max(this.now, s.at[s.next]!), Ev.SyncArrive, v, from, stream)
      return
    }
    this.streams.delete(stream)
    if (s.settle >= 0) this.settle(v, s.settle)
  }

  // ---- churn and partitions --------------------------------------------------

  /** A node stops: its links and mesh go; what it holds stays on disk, its seen cache does not. */
  kill (v: number): void {
    if (this.up[v] === 0) return
    this.up[v] = 0
    for (let i = this.mesh.len[v]! - 1; i >= 0; i--) {
      const w = this.mesh.get(v, i)
      this.mesh.remove(w, v)
      this.schedule(this.nextHeartbeat(w, this.now), Ev.Heartbeat, w)
    }
    this.mesh.clear(v)
    for (const [i, m] of this.msgs.entries()) {
      m.state[v]! &= HAVE
      this.fetches.delete(i * this.capacity + v)
    }
    this.upFree[v] = this.now
    // Its process is gone; with several agents per host the others keep it busy.
    if (this.p.perHost <= 1) this.cpuFree[v] = this.now
    this.updateSlowdown()
  }

  /** A node (re)starts: it reconnects to its peers (or, new, to `bootstrap`), syncs on each connection, and grafts at its heartbeat. */
  start (v: number, bootstrap: number[] = []): void {
    const fresh = v >= this.nodes
    if (fresh) {
      this.nodes = v + 1
      this.phase[v] = this.random() * this.p.gossip.heartbeatMs
    }
    this.up[v] = 1
    this.updateSlowdown()
    for (const b of bootstrap) if (connectNodes(this.g, v, b)) this.traffic.connections[v]!++
    if (this.p.gossip.topUp) {
      for (const w of topUpNode(this.g, v, this.nodes, this.capacity, this.p.gossip.targetPeers, this.random, (w) => this.up[w] === 1)) {
        this.traffic.connections[w]!++
        this.traffic.connections[v]!++
      }
    }
    const n = this.g.conn.len[v]!
    for (let i = 0; i < n; i++) {
      const w = this.g.conn.get(v, i)
      if (!this.live(v, w)) continue
      if (!fresh) this.traffic.connections[v]!++
      this.schedule(this.now + this.rtts(CONNECT_RTTS, v, w), Ev.Connected, v, w)
    }
    this.schedule(this.nextHeartbeat(v, this.now + this.rtts(CONNECT_RTTS, v, -1)), Ev.Heartbeat, v)
    this.armSync(v, this.now)
    if (fresh && this.maintaining) this.schedule(this.now + this.random() * this.p.gossip.reconnectMs, Ev.Maintain, v)
  }

  /** k round trips between u and v (-1: a peer on another host). */
  private rtts (k: number, u: number, v: number): number {
    let t = 0
    for (let i = 0; i < k; i++) t += this.latency(u, v) + this.latency(v, u)
    return t
  }

  /** A connection came up: the agent syncs on every new connection. */
  private connected (v: number, w: number): void {
    if (!this.live(v, w)) return
    this.startSync(v, w, this.now)
  }

  private heartbeat (v: number): void {
    if (this.up[v] === 0) return
    repairMesh(this.g, this.mesh, v, this.p.gossip, (a, b) => this.live(a, b), this.random)
  }

  /** No partition stands between u and v (either may be down). */
  private sameSide (u: number, v: number): boolean {
    const a = this.pgroup[u]!
    const b = this.pgroup[v]!
    return a === 0 || b === 0 || a === b
  }

  /**
   * Cuts the fleet into groups. The live harness cuts by blocking the other side, and a block
   * hangs up: links across the cut are gone, not paused, and each node's peer maintenance
   * refills its connections from its own side while the cut lasts.
   */
  partition (groups: number[][]): void {
    groups.forEach((g, i) => { for (const v of g) this.pgroup[v] = i + 1 })
    for (let v = 0; v < this.nodes; v++) {
      for (let i = this.g.conn.len[v]! - 1; i >= 0; i--) {
        const w = this.g.conn.get(v, i)
        if (!this.sameSide(v, w)) this.disconnect(v, w)
      }
    }
    for (let v = 0; v < this.nodes; v++) if (this.up[v] === 1) this.schedule(this.nextHeartbeat(v, this.now), Ev.Heartbeat, v)
    this.startMaintenance()
  }

  /** Lifts the partition at once, as the live harness unblocks; links across come back only as nodes dial them (maintain). */
  heal (): void {
    this.pgroup.fill(0)
  }

  private startMaintenance (): void {
    if (this.maintaining) return
    this.maintaining = true
    for (let v = 0; v < this.nodes; v++) this.schedule(this.now + this.random() * this.p.gossip.reconnectMs, Ev.Maintain, v)
  }

  private linkKey (u: number, v: number): number {
    return Math.min(u, v) * this.capacity + Math.max(u, v)
  }

  private disconnect (u: number, v: number): void {
    this.g.conn.remove(u, v)
    this.g.conn.remove(v, u)
    this.mesh.remove(u, v)
    this.mesh.remove(v, u)
    this.linkSince.delete(this.linkKey(u, v))
  }

  /** A link v dialled is up: counted, dated, and synced on once connected. */
  private opened (v: number, w: number): void {
    this.traffic.connections[v]!++
    this.traffic.connections[w]!++
    this.linkSince.set(this.linkKey(v, w), this.now)
    this.schedule(this.now + this.rtts(CONNECT_RTTS, v, w), Ev.Connected, v, w)
  }

  /**
   * One peer-maintenance tick, as src/node/peers.ts: below the target, dial random peers on this
   * side of any cut; at it, rotate by the agent's rules (rotates, rotationDrop): dial one random
   * unconnected peer and hang up the link held longest. The model's node knows the whole fleet.
   */
  private maintain (v: number): void {
    this.schedule(this.now + jittered(this.p.gossip.reconnectMs, this.random, TASK_JITTER), Ev.Maintain, v)
    if (this.up[v] === 0) return
    const target = this.p.gossip.targetPeers
    const reachable = (w: number): boolean => this.up[w] === 1 && this.sameSide(v, w)
    // Links to stopped peers stay in the graph (a restart reconnects them) but are not connections.
    let dead = 0
    for (let i = 0; i < this.g.conn.len[v]!; i++) if (this.up[this.g.conn.get(v, i)] === 0) dead++
    const connections = this.g.conn.len[v]! - dead
    if (connections < target) {
      for (const w of topUpNode(this.g, v, this.nodes, this.capacity, target + dead, this.random, reachable)) this.opened(v, w)
      return
    }
    if (!rotates(connections, target, this.nodes - 1 - this.g.conn.len[v]!, this.random, this.p.gossip.rotationChance)) return
    // The agent's candidates are known peers it is not connected to and has not blocked (the other side of a cut, a firewall).
    let w = -1
    for (let k = 0; k < 16 && w < 0; k++) {
      const x = Math.floor(this.random() * this.nodes)
      if (x !== v && this.sameSide(v, x) && allowed(this.g, v, x, this.capacity) && !this.g.conn.has(v, x)) w = x
    }
    // A dial to a stopped peer fails, and nothing is hung up.
    if (w < 0 || this.up[w] === 0 || !connectNodes(this.g, v, w)) return
    this.opened(v, w)
    const held: Array<{ peer: number, since: number }> = []
    for (let i = 0; i < this.g.conn.len[v]!; i++) {
      const x = this.g.conn.get(v, i)
      if (this.up[x] === 1) held.push({ peer: x, since: this.linkSince.get(this.linkKey(v, x)) ?? 0 })
    }
    const drop = rotationDrop(held, w, connections + 1, target)
    if (drop === undefined) return
    this.disconnect(v, drop)
    this.schedule(this.nextHeartbeat(v, this.now), Ev.Heartbeat, v)
    this.schedule(this.nextHeartbeat(drop, this.now), Ev.Heartbeat, drop)
  }
}
