import { fork, spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { SimulationError } from './errors.js'
import type { DigestEntry, FromWorker, Head, NodeSpec, ReportedNode, Request, Started, ToWorker, TrafficByNode, WorkerEvent, WorkerMemory } from './protocol.js'
import type { Traffic } from './result.js'

/**
 * The worker entry beside this module: compiled JS in dist/, or the TypeScript source through
 * tsx when this module itself runs from source (tests), so both run the code they were given.
 */
function workerEntry (): { file: string, execArgv: string[] } {
  const here = fileURLToPath(import.meta.url)
  if (here.endsWith('.ts')) {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
    return { file: join(dirname(here), 'worker.ts'), execArgv: ['--import', tsx] }
  }
  return { file: join(dirname(here), 'worker.js'), execArgv: [] }
}

interface Pending { resolve: (v: unknown) => void, reject: (e: Error) => void }

class WorkerHandle {
  private nextId = 1
  private readonly pending = new Map<number, Pending>()
  exited = false
  readonly ready: Promise<void>

  constructor (readonly index: number, readonly child: ChildProcess, onEvent: (e: WorkerEvent) => void, onExit: (w: WorkerHandle, code: number | null) => void) {
    let hello!: () => void
    this.ready = new Promise((resolve) => { hello = resolve })
    child.on('message', (msg: FromWorker) => {
      if (msg.type === 'hello') hello()
      else if (msg.type === 'event') onEvent(msg.event)
      else if (msg.type === 'res') {
        const p = this.pending.get(msg.id)
        if (p === undefined) return
        this.pending.delete(msg.id)
        if (msg.ok) p.resolve(msg.value)
        else p.reject(new SimulationError(msg.error))
      }
    })
    child.on('exit', (code) => {
      this.exited = true
      for (const p of this.pending.values()) p.reject(new SimulationError(`worker ${index} exited (code ${code ?? 'signal'})`))
      this.pending.clear()
      hello()
      onExit(this, code)
    })
  }

  async request<T> (req: Request): Promise<T> {
    if (this.exited) throw new SimulationError(`worker ${this.index} is gone`)
    const id = this.nextId++
    return await new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      const msg: ToWorker = { type: 'req', id, req }
      this.child.send(msg, (err) => {
        if (err !== null && err !== undefined) {
          this.pending.delete(id)
          reject(new SimulationError(`worker ${this.index}: ${err.message}`))
        }
      })
    })
  }
}

export interface ClusterOptions {
  workers: number
  /** Agents each worker will host at most: sizes its libuv threadpool. */
  agentsPerWorker?: number
  /**
   * How to run worker w (the netns engine: inside its host's namespace), given the node command
   * line that runs the worker; the IPC channel is inherited through whatever execs it. Default: fork.
   */
  launch?: (worker: number, argv: string[]) => [string, string[]]
  onEvent: (event: WorkerEvent) => void
}

/**
 * libuv's threadpool runs file I/O (every fsync of the state store and the applier). An agent
 * on its own host has 4 threads; agents sharing a worker would queue behind each other's
 * fsyncs, a delay no real fleet has, so each worker gets 4 threads per agent, up to a bound.
 */
export function threadpoolSize (agents: number): number {
  return Math.min(MAX_THREADPOOL, Math.max(4, 4 * agents))
}

const MAX_THREADPOOL = 256

/**
 * The live engine's process pool: node i lives in worker i mod W. Each worker is a separate
 * Node process (its own event loop and heap), so W workers use W cores; agents in different
 * workers talk over TCP on 127.0.0.1, exactly as on separate hosts.
 */
export class LiveCluster {
  private constructor (private readonly handles: WorkerHandle[], private readonly state: { closing: boolean }) {}

  static async open (opts: ClusterOptions): Promise<LiveCluster> {
    const { file, execArgv } = workerEntry()
    const handles: WorkerHandle[] = []
    const state = { closing: false }
    for (let i = 0; i < Math.max(1, opts.workers); i++) {
      const env = { ...process.env, UV_THREADPOOL_SIZE: String(threadpoolSize(opts.agentsPerWorker ?? 1)) }
      const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc']
      const launched = opts.launch?.(i, [process.execPath, ...execArgv, file])
      const child = launched !== undefined
        ? spawn(launched[0], launched[1], { env, serialization: 'advanced', stdio })
        : fork(file, [], { execArgv, env, serialization: 'advanced', stdio })
      handles.push(new WorkerHandle(i, child, opts.onEvent, (w, code) => {
        if (!state.closing) opts.onEvent({ kind: 'error', message: `worker ${w.index} exited unexpectedly (code ${code ?? 'signal'})`, at: Date.now() })
      }))
    }
    const cluster = new LiveCluster(handles, state)
    await Promise.all(handles.map(async (h) => { await h.ready }))
    const dead = handles.filter((h) => h.exited)
    if (dead.length > 0) {
      await cluster.close()
      throw new SimulationError(`${dead.length} worker process(es) failed to start (${file})`)
    }
    return cluster
  }

  get workers (): number {
    return this.handles.length
  }

  workerOf (node: number): number {
    return node % this.handles.length
  }

  private on (node: number): WorkerHandle {
    return this.handles[this.workerOf(node)] as WorkerHandle
  }

  async start (spec: NodeSpec): Promise<Started> {
    return await this.on(spec.index).request<Started>({ op: 'start', spec })
  }

  /** Stops an agent (it closes its connections, as a process that exits does) and returns its traffic counters. */
  async stop (node: number): Promise<Traffic> {
    return await this.on(node).request<Traffic>({ op: 'stop', index: node })
  }

  /** Dials these addresses from the node; returns the errors of the dials that failed. */
  async connect (node: number, addrs: string[]): Promise<string[]> {
    return await this.on(node).request<string[]>({ op: 'connect', index: node, addrs })
  }

  /** Replaces the node's block list: these peers are refused both ways, and connections to them dropped. */
  async block (node: number, peers: string[]): Promise<void> {
    await this.on(node).request({ op: 'block', index: node, peers })
  }

  async publish (node: number, bytes: Uint8Array): Promise<{ at: number, outcome: string, recipients: number }> {
    return await this.on(node).request({ op: 'publish', index: node, bytes })
  }

  /** The envelope the node holds for a name, if any. */
  async head (node: number, name: string): Promise<Head | undefined> {
    return await this.on(node).request<Head | null>({ op: 'head', index: node, name }) ?? undefined
  }

  /** The name, version, hash and id of every envelope the node holds. */
  async digest (node: number): Promise<DigestEntry[]> {
    return await this.on(node).request<DigestEntry[]>({ op: 'digest', index: node })
  }

  /** The node's fleet view, as `grapevine fleet` through it would show it. */
  async fleetView (node: number): Promise<ReportedNode[]> {
    return await this.on(node).request<ReportedNode[]>({ op: 'fleet', index: node })
  }

  /** A version of a policy the node holds or keeps in its archive. */
  async envelope (node: number, name: string, version: number): Promise<Uint8Array | undefined> {
    return await this.on(node).request<Uint8Array | null>({ op: 'envelope', index: node, name, version }) ?? undefined
  }

  async traffic (nodes: number[]): Promise<TrafficByNode> {
    const byWorker = new Map<number, number[]>()
    for (const n of nodes) byWorker.set(this.workerOf(n), [...(byWorker.get(this.workerOf(n)) ?? []), n])
    const parts = await Promise.all([...byWorker].map(async ([w, indexes]) => await (this.handles[w] as WorkerHandle).request<TrafficByNode>({ op: 'traffic', indexes })))
    return Object.assign({}, ...parts) as TrafficByNode
  }

  /** Waits for every listed agent's gossip mesh; returns the nodes still not ready at the deadline. */
  async ready (nodes: number[], heartbeats: number, timeoutMs: number): Promise<number[]> {
    const byWorker = new Map<number, number[]>()
    for (const n of nodes) byWorker.set(this.workerOf(n), [...(byWorker.get(this.workerOf(n)) ?? []), n])
    const parts = await Promise.all([...byWorker].map(async ([w, indexes]) => await (this.handles[w] as WorkerHandle).request<number[]>({ op: 'ready', indexes, heartbeats, timeoutMs })))
    return parts.flat()
  }

  /** How many peers each node is connected to. */
  async peers (nodes: number[]): Promise<Record<number, number>> {
    const byWorker = new Map<number, number[]>()
    for (const n of nodes) byWorker.set(this.workerOf(n), [...(byWorker.get(this.workerOf(n)) ?? []), n])
    const parts = await Promise.all([...byWorker].map(async ([w, indexes]) => await (this.handles[w] as WorkerHandle).request<Record<number, number>>({ op: 'peers', indexes })))
    return Object.assign({}, ...parts) as Record<number, number>
  }

  async memory (): Promise<WorkerMemory[]> {
    return await Promise.all(this.handles.filter((h) => !h.exited).map(async (h) => await h.request<WorkerMemory>({ op: 'memory' })))
  }

  async close (): Promise<void> {
    this.state.closing = true
    await Promise.all(this.handles.map(async (h) => {
      if (h.exited) return
      const exited = new Promise<void>((resolve) => { h.child.once('exit', () => { resolve() }) })
      await h.request({ op: 'shutdown' }).catch(() => {})
      const timer = setTimeout(() => { h.child.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(timer)
    }))
  }
}
