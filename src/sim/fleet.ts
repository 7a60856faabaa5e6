import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { LiveCluster } from './cluster.js'
import { nodeOutcomes, onlineTargets } from './analysis.js'
import type { LinkModel } from './link.js'
import type { AgentSettings, NodeSpec, WorkerEvent, WorkerMemory } from './protocol.js'
import type { RecordNode, RecordPublish, RunRecord, Traffic } from './result.js'
import { PUBLISH_WINDOW_MS } from './constants.js'

export const ZERO_TRAFFIC: Traffic = { gossipBytesSent: 0, gossipBytesReceived: 0, syncBytesSent: 0, syncBytesReceived: 0, policyDuplicates: 0, policyMessages: 0 }

const OPTIONAL_TRAFFIC = ['fetchBytesSent', 'fetchBytesReceived', 'announceMessages', 'announceDuplicates'] as const

function combine (a: Traffic, b: Traffic, sign: 1 | -1): Traffic {
  const out: Traffic = {
    gossipBytesSent: a.gossipBytesSent + sign * b.gossipBytesSent,
    gossipBytesReceived: a.gossipBytesReceived + sign * b.gossipBytesReceived,
    syncBytesSent: a.syncBytesSent + sign * b.syncBytesSent,
    syncBytesReceived: a.syncBytesReceived + sign * b.syncBytesReceived,
    policyDuplicates: a.policyDuplicates + sign * b.policyDuplicates,
    policyMessages: a.policyMessages + sign * b.policyMessages
  }
  // Announce-and-fetch counters: carried when either side has them.
  for (const k of OPTIONAL_TRAFFIC) if (a[k] !== undefined || b[k] !== undefined) out[k] = (a[k] ?? 0) + sign * (b[k] ?? 0)
  return out
}

export function addTraffic (a: Traffic, b: Traffic): Traffic {
  return combine(a, b, 1)
}

export function subTraffic (a: Traffic, b: Traffic): Traffic {
  return combine(a, b, -1)
}

export interface FleetNode {
  spec: NodeSpec
  /** Sandbox directories that exist before the first start. */
  skeleton: string[]
  rec: RecordNode
  cluster: number
  /** The peers this node was configured with: its bootstrap list on restart. */
  neighbours: number[]
  addrs: string[]
  up: boolean
  /** Traffic of earlier incarnations (before restarts). */
  pastTraffic: Traffic
}

export interface FleetOptions {
  /** Each node gets out/nodes/node-i/{state,root}. */
  out: string
  seed: number
  /** Root key ids every agent trusts. */
  trust: string[]
  agent: AgentSettings
  link?: LinkModel
  workers: number
  /** Most agents a worker will host (sizes its thread pool). */
  agentsPerWorker: number
  /** Where node i listens (the netns engine: its host's address); default 127.0.0.1. */
  listen?: (node: number) => string[]
  /** How to run worker w (LiveCluster's `launch`). */
  launch?: (worker: number, argv: string[]) => [string, string[]]
  onEvent?: (e: WorkerEvent) => void
}

type OpenPublish = RecordPublish & { window: 'open' | 'closing' | 'closed', before?: Record<number, Traffic> }

/**
 * Real agents in worker processes, and the record of what they did: the part of the live
 * engine that scenarios and the demo share. Times are kept in epoch ms; toRecord() shifts
 * them to the run's time zero.
 */
export class LiveFleet {
  readonly nodes: FleetNode[] = []
  /** Epoch ms of time zero; the owner moves it when its clock starts. */
  t0 = Date.now()
  readonly errors: string[] = []
  readonly warnings: string[] = []
  private readonly publishes: OpenPublish[] = []
  private readonly deliveries: RunRecord['deliveries'] = []
  private readonly applies: RunRecord['applies'] = []
  private readonly conflicts: RunRecord['conflicts'] = []
  private readonly forks: NonNullable<RunRecord['forks']> = []
  private readonly rejections: RunRecord['rejections'] = []
  private readonly markers: RunRecord['markers'] = []

  private constructor (readonly cluster: LiveCluster, private readonly opts: FleetOptions) {}

  static async open (opts: FleetOptions): Promise<LiveFleet> {
    const sink: { fleet?: LiveFleet } = {}
    const cluster = await LiveCluster.open({ workers: opts.workers, agentsPerWorker: opts.agentsPerWorker, ...(opts.launch !== undefined ? { launch: opts.launch } : {}), onEvent: (e) => { sink.fleet?.onEvent(e) } })
    sink.fleet = new LiveFleet(cluster, opts)
    return sink.fleet
  }

  private onEvent (e: WorkerEvent): void {
    switch (e.kind) {
      case 'accepted': this.deliveries.push({ node: e.node, name: e.name, version: e.version, hash: e.hash, via: e.via, at: e.at }); break
      case 'applied': this.applies.push({ node: e.node, name: e.name, version: e.version, hash: e.hash, at: e.at, outcome: e.outcome, changed: e.changed, failed: e.failed, durationMs: e.durationMs, ...(e.errors !== undefined ? { errors: e.errors } : {}) }); break
      case 'conflict': this.conflicts.push({ node: e.node, name: e.name, ...(e.version !== undefined ? { version: e.version } : {}), at: e.at, kind: e.conflict }); break
      case 'fork': this.forks.push({ node: e.node, name: e.name, version: e.version, at: e.at, reason: e.reason }); break
      case 'rejected': this.rejections.push({ node: e.node, reason: e.reason, via: e.via, at: e.at, error: e.error }); break
      case 'error': this.errors.push(`${e.node !== undefined ? `node-${e.node}: ` : ''}${e.message}`); break
    }
    this.opts.onEvent?.(e)
  }

  /** Declares a node (not started yet). */
  add (tags: Record<string, string>, extra: { cluster?: number, neighbours?: number[], skeleton?: string[] } = {}): FleetNode {
    const index = this.nodes.length
    const dir = join(this.opts.out, 'nodes', `node-${index}`)
    const spec: NodeSpec = {
      index,
      name: `node-${index}`,
      stateDir: join(dir, 'state'),
      root: join(dir, 'root'),
      tags,
      trust: this.opts.trust,
      listen: this.opts.listen?.(index) ?? ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
      agent: this.opts.agent,
      ...(this.opts.link !== undefined ? { link: this.opts.link } : {}),
      seed: this.opts.seed,
      blocked: []
    }
    const node: FleetNode = {
      spec,
      skeleton: (extra.skeleton ?? []).map((p) => join(spec.root, p)),
      rec: { index, name: spec.name, tags, up: [], startMs: [], traffic: ZERO_TRAFFIC },
      cluster: extra.cluster ?? 0,
      neighbours: extra.neighbours ?? [],
      addrs: [],
      up: false,
      pastTraffic: ZERO_TRAFFIC
    }
    this.nodes.push(node)
    return node
  }

  /** Starts (or restarts, with the same state directory) a node, joining through these running nodes. */
  async start (n: FleetNode, bootstrap: number[], blocked: string[] = []): Promise<void> {
    if (n.rec.up.length === 0) await Promise.all(n.skeleton.map(async (d) => await mkdir(d, { recursive: true })))
    n.spec.bootstrap = bootstrap.flatMap((j) => this.nodes[j]?.up === true ? (this.nodes[j]?.addrs.slice(0, 1) ?? []) : [])
    n.spec.blocked = blocked
    const started = await this.cluster.start(n.spec)
    n.up = true
    n.addrs = started.addrs
    n.rec.peerId = started.peerId
    n.rec.worker = this.cluster.workerOf(n.spec.index)
    n.rec.up.push([started.at])
    n.rec.startMs.push(started.startMs)
    for (const h of started.held) this.deliveries.push({ node: n.spec.index, name: h.name, version: h.version, hash: h.hash, via: 'disk', at: started.at })
  }

  /** Stops a node as a process exit would (connections close); its traffic so far is kept. */
  async stop (n: FleetNode): Promise<void> {
    if (!n.up) return
    n.up = false
    try {
      n.pastTraffic = addTraffic(n.pastTraffic, await this.cluster.stop(n.spec.index))
    } finally {
      const last = n.rec.up[n.rec.up.length - 1]
      if (last !== undefined) last[1] = Date.now()
    }
  }

  get running (): FleetNode[] {
    return this.nodes.filter((n) => n.up)
  }

  async traffic (): Promise<Record<number, Traffic>> {
    return await this.cluster.traffic(this.running.map((n) => n.spec.index))
  }

  mark (id: string, what: string, detail: string, at = Date.now()): void {
    this.markers.push({ id, do: what, at, detail })
  }

  /** Records a publish that happened at `at` (epoch ms); `before` is every running node's traffic just before it. */
  recordPublish (p: RecordPublish, before?: Record<number, Traffic>): RecordPublish {
    const open: OpenPublish = { ...p, window: 'open', ...(before !== undefined ? { before } : {}) }
    this.publishes.push(open)
    return open
  }

  /** Closes each publish's traffic window once every targeted node applied it, or after PUBLISH_WINDOW_MS. */
  async closeWindows (record: RunRecord, force: boolean): Promise<void> {
    const now = Date.now()
    await Promise.all(this.publishes.map(async (p, i) => {
      if (p.window !== 'open') return
      const { latencies, targeted } = onlineTargets(record, record.publishes[i] as RecordPublish)
      if (!force && !(targeted > 0 && latencies.length >= targeted) && now - p.at < PUBLISH_WINDOW_MS) return
      p.window = 'closing'
      const after = await this.traffic().catch(() => ({} as Record<number, Traffic>))
      const byNode: Record<number, Traffic> = {}
      if (p.before !== undefined) {
        for (const [k, t] of Object.entries(after)) {
          const b = p.before[Number(k)]
          if (b !== undefined) byNode[Number(k)] = subTraffic(t, b)
        }
        p.traffic = { window: [p.at, Date.now()], byNode }
      }
      p.window = 'closed'
    }))
  }

  get windowsOpen (): boolean {
    return this.publishes.some((p) => p.window !== 'closed')
  }

  /**
   * Every running targeted node has applied every publish (late ones included), or has had
   * PUBLISH_WINDOW_MS since the last publish or start to do so.
   */
  settled (record: RunRecord, now = Date.now()): boolean {
    const last = Math.max(...this.publishes.map((p) => p.at), ...this.nodes.flatMap((n) => n.rec.up.map(([s]) => s)))
    if (now - last > PUBLISH_WINDOW_MS) return true
    return record.publishes.every((p) => nodeOutcomes(record, p).every((o) => o.class !== 'missing'))
  }

  /** The record so far, in ms since time zero. */
  toRecord (now = Date.now()): RunRecord {
    const t0 = this.t0
    const shift = <T extends { at: number }>(xs: T[]): T[] => xs.map((x) => ({ ...x, at: x.at - t0 }))
    return {
      t0,
      end: now - t0,
      nodes: this.nodes.map((n) => ({ ...n.rec, up: n.rec.up.map(([s, e]) => e === undefined ? [s - t0] : [s - t0, e - t0]) })),
      publishes: this.publishes.map(({ window: _w, before: _b, ...p }) => ({
        ...p,
        at: p.at - t0,
        ...(p.traffic !== undefined ? { traffic: { window: [p.traffic.window[0] - t0, p.traffic.window[1] - t0] as [number, number], byNode: p.traffic.byNode } } : {})
      })),
      deliveries: shift(this.deliveries),
      applies: shift(this.applies),
      conflicts: shift(this.conflicts),
      forks: shift(this.forks),
      rejections: shift(this.rejections),
      markers: shift(this.markers),
      errors: this.errors.slice(),
      warnings: this.warnings.slice()
    }
  }

  /** Final traffic totals into the record, and the workers' memory. */
  async finish (): Promise<WorkerMemory[]> {
    const [traffic, memory] = await Promise.all([this.traffic().catch(() => ({} as Record<number, Traffic>)), this.cluster.memory().catch(() => [])])
    for (const n of this.nodes) n.rec.traffic = addTraffic(n.pastTraffic, traffic[n.spec.index] ?? ZERO_TRAFFIC)
    return memory
  }

  async close (): Promise<void> {
    await this.cluster.close()
  }
}
