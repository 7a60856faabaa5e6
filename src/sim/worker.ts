// A worker process of the live engine: hosts a share of the simulated nodes, each a real
// production Agent (libp2p, gossipsub, sync, applier into its sandbox root). The coordinator
// drives it over IPC; it reports what its agents do as events.
import '../shim.js'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Agent } from '../node/agent.js'
import { policyTopic } from '../node/constants.js'
import { shapeStream } from './link.js'
import { prng, seedOf } from './random.js'
import type { FromWorker, Head, NodeSpec, Request, Started, ToWorker, WorkerEvent, WorkerMemory } from './protocol.js'
import type { Traffic } from './result.js'
import { DIAL_TIMEOUT_MS, SIM_INBOUND_LIMITS, START_CONCURRENCY } from './constants.js'
import { multiaddr } from '../net/libp2p.js'

interface GossipsubLike {
  getMeshPeers: (topic: string) => string[]
  addEventListener: (type: string, fn: () => void) => void
  removeEventListener: (type: string, fn: () => void) => void
}

const agents = new Map<number, Agent>()
const starts = new Map<number, number>()
const loop = monitorEventLoopDelay({ resolution: 20 })
loop.enable()

function send (msg: FromWorker): void {
  process.send?.(msg)
}

function emit (event: WorkerEvent): void {
  send({ type: 'event', event })
}

/** A small semaphore, so a burst of start requests does not starve the running agents. */
let running = 0
const waiting: Array<() => void> = []
async function limited<T> (fn: () => Promise<T>): Promise<T> {
  if (running >= START_CONCURRENCY) await new Promise<void>((resolve) => waiting.push(resolve))
  running++
  try {
    return await fn()
  } finally {
    running--
    waiting.shift()?.()
  }
}

function agentOf (index: number): Agent {
  const a = agents.get(index)
  if (a === undefined) throw new Error(`node-${index} is not running in this worker`)
  return a
}

async function start (spec: NodeSpec): Promise<Started> {
  if (agents.has(spec.index)) throw new Error(`node-${spec.index} is already running`)
  const n = (starts.get(spec.index) ?? 0) + 1
  starts.set(spec.index, n)
  const random = prng(seedOf(spec.seed, 'agent', spec.index, n))
  const linkRandom = prng(seedOf(spec.seed, 'link', spec.index, n))
  const link = spec.link
  const t = Date.now()
  const agent = await Agent.start({
    stateDir: spec.stateDir,
    root: spec.root,
    listen: spec.listen,
    bootstrap: spec.bootstrap,
    trust: spec.trust,
    tags: spec.tags,
    name: spec.name,
    transport: 'tcp',
    inboundLimits: SIM_INBOUND_LIMITS,
    random,
    ...(link !== undefined ? { shapeLink: (source) => shapeStream(source, link, linkRandom) } : {}),
    ...spec.agent
  })
  if (spec.blocked.length > 0) await agent.block(spec.blocked)
  const node = spec.index
  agent.on('accepted', ({ envelope, via }) => { emit({ kind: 'accepted', node, name: envelope.name, version: envelope.version, hash: envelope.hash, via, at: Date.now() }) })
  agent.on('applied', ({ envelope, report }) => {
    const failed = report.resources.filter((r) => r.status === 'failed')
    emit({
      kind: 'applied',
      node,
      name: envelope.name,
      version: envelope.version,
      hash: envelope.hash,
      // As its receipt says it: every resource applied, but a health check failed.
      outcome: report.health === 'unhealthy' && report.counts.failed === 0 ? 'unhealthy' : report.outcome,
      changed: report.counts.changed,
      failed: report.counts.failed,
      durationMs: report.durationMs,
      ...(failed.length > 0 ? { errors: failed.slice(0, 5).map((r) => ({ resource: r.id, error: r.error?.message ?? 'failed' })) } : {}),
      at: Date.now()
    })
  })
  agent.on('conflict', (c) => { emit({ kind: 'conflict', node, name: c.name, ...(c.version !== undefined ? { version: c.version } : {}), conflict: c.kind, at: Date.now() }) })
  agent.on('rejected', (r) => { emit({ kind: 'rejected', node, reason: r.reason, via: r.via, error: r.error, at: Date.now() }) })
  agent.on('fork', (f) => { emit({ kind: 'fork', node, name: f.name, version: f.offered.version, reason: f.reason, at: Date.now() }) })
  agents.set(node, agent)
  return {
    peerId: agent.peerId.toString(),
    addrs: agent.multiaddrs,
    held: agent.digest().map((d) => ({ name: d.name, version: d.version, hash: d.hash })),
    at: t,
    startMs: Date.now() - t
  }
}

async function stop (index: number): Promise<Traffic> {
  const agent = agentOf(index)
  const traffic = await agent.traffic()
  agents.delete(index)
  await agent.stop()
  return traffic
}

/** Each agent has a gossip mesh peer (when it has any connection) and has seen `heartbeats` heartbeats since asked. */
async function ready (indexes: number[], heartbeats: number, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs
  const waits = indexes.map(async (i) => {
    const agent = agents.get(i)
    if (agent === undefined) return i
    const pubsub = agent.libp2p.services.pubsub as unknown as GossipsubLike
    let beats = 0
    const onBeat = (): void => { beats++ }
    pubsub.addEventListener('gossipsub:heartbeat', onBeat)
    try {
      const topic = policyTopic(agent.mesh)
      const done = (): boolean => beats >= heartbeats && (agent.libp2p.getPeers().length === 0 || pubsub.getMeshPeers(topic).length > 0)
      while (!done()) {
        if (Date.now() > deadline) return i
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      return undefined
    } finally {
      pubsub.removeEventListener('gossipsub:heartbeat', onBeat)
    }
  })
  return (await Promise.all(waits)).filter((i): i is number => i !== undefined)
}

async function handle (req: Request): Promise<unknown> {
  switch (req.op) {
    case 'start': return await limited(async () => await start(req.spec))
    case 'stop': return await stop(req.index)
    case 'connect': {
      const agent = agentOf(req.index)
      // As --bootstrap: the agent keeps these peers, so its peer maintenance retries a dial that
      // fails now. Under a fleet's start-up load many time out, and a node whose every topology
      // dial failed, and that no one dialled, would otherwise stay alone for the whole run.
      agent.addPeers(req.addrs)
      // Dial only: the agent syncs on every new connection by itself, as it would after --bootstrap.
      const results = await Promise.allSettled(req.addrs.map(async (a) => { await agent.libp2p.dial(multiaddr(a), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) }) }))
      return results.flatMap((r) => r.status === 'rejected' ? [(r.reason as Error).message] : [])
    }
    case 'block': {
      const agent = agentOf(req.index)
      agent.unblock()
      await agent.block(req.peers)
      return null
    }
    case 'publish': {
      const at = Date.now()
      const res = await agentOf(req.index).publish(req.bytes)
      return { at, outcome: res.outcome, recipients: res.recipients }
    }
    case 'head': {
      const env = agentOf(req.index).envelope(req.name)
      const head: Head | null = env !== undefined ? { version: env.version, id: env.id } : null
      return head
    }
    case 'digest': return agentOf(req.index).digest()
    case 'fleet': return agentOf(req.index).fleet.list()
    case 'envelope': return await agentOf(req.index).archivedEnvelope(req.name, req.version) ?? null
    case 'traffic': {
      const out: Record<number, Traffic> = {}
      await Promise.all(req.indexes.map(async (i) => {
        const a = agents.get(i)
        if (a !== undefined) out[i] = await a.traffic()
      }))
      return out
    }
    case 'peers': {
      const out: Record<number, number> = {}
      for (const i of req.indexes) { const a = agents.get(i); if (a !== undefined) out[i] = a.libp2p.getPeers().length }
      return out
    }
    case 'ready': return await ready(req.indexes, req.heartbeats, req.timeoutMs)
    case 'memory': {
      const cpu = process.cpuUsage()
      const m: WorkerMemory = { rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed, agents: agents.size, loopDelayP99Ms: loop.percentile(99) / 1e6, cpuMs: (cpu.user + cpu.system) / 1000 }
      loop.reset()
      return m
    }
    case 'shutdown': {
      await Promise.allSettled([...agents.values()].map(async (a) => { await a.stop() }))
      agents.clear()
      setImmediate(() => process.exit(0))
      return null
    }
  }
}

process.on('message', (msg: ToWorker) => {
  if (msg?.type !== 'req') return
  handle(msg.req).then(
    (value) => { send({ type: 'res', id: msg.id, ok: true, value }) },
    (err: Error) => { send({ type: 'res', id: msg.id, ok: false, error: err?.message ?? String(err) }) }
  )
})
process.on('unhandledRejection', (err) => { emit({ kind: 'error', message: `worker: ${(err as Error)?.message ?? String(err)}`, at: Date.now() }) })
// The coordinator going away ends the worker: agents must not outlive a run.
process.on('disconnect', () => { process.exit(0) })
// Ctrl-C in a terminal reaches the whole process group: the coordinator stops the agents and
// reports what they did, then closes this worker (disconnect, above). Dying here first would
// make an interrupted run report its workers as failures.
process.on('SIGINT', () => {})
send({ type: 'hello' })
