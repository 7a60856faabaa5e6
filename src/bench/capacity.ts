/**
 * `npm run bench:capacity`: how many live agents this machine holds.
 *
 * For each size N on a ladder, starts N real agents in the live engine's worker processes
 * (2 by default, as `grapevine sim` runs them), wires a random mesh (each node joins through
 * 3 earlier ones), waits for the gossip mesh and for the agents' first peer-maintenance round,
 * then measures: start time per agent, memory per agent (worker RSS growth over the empty
 * worker), idle CPU, event-loop delay, and how fast one small policy from node-0 reaches
 * everyone. The ladder stops at the first size the machine does not hold: a publish that does
 * not reach every node within a minute, an event loop that stalls for more than a second, or
 * RSS above three quarters of RAM.
 *
 * Flags: --ladder 25,50,100,200 (sizes), --workers N (2), --out FILE (JSON; default
 * out/capacity-<time>.json), --settle-ms N (120000: longest wait for the workers to go quiet).
 * Figures, not assertions: this machine is shared and noisy (see docs/capacity.md).
 */
import '../shim.js'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, freemem, loadavg, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { generateSigningKey, signPolicy, validateEnvelope } from '../envelope/index.js'
import { validatePolicyObject } from '../policy/index.js'
import { LiveFleet } from '../sim/fleet.js'
import { planTopology } from '../sim/topology.js'
import { prng, seedOf } from '../sim/random.js'
import { onlineTargets } from '../sim/analysis.js'
import { quantiles, summarize } from '../sim/metrics.js'
import { READY_HEARTBEATS, SETTLE_MIN_MS } from '../sim/constants.js'
import type { WorkerMemory } from '../sim/protocol.js'
import type { RecordPublish } from '../sim/result.js'

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}

interface Step {
  nodes: number
  workers: number
  startWallMs: number
  startPerAgentMs: { mean: number, p90: number, max: number }
  /** Agent start as the fleet saw it: wall time to start all N, divided by N, per worker (agents start 4 at a time in each). */
  wallPerAgentMs: number
  emptyWorkerRssMiB: number
  rssMiB: number
  perAgentMiB: number
  /** How long after wiring the workers took to go quiet (the join-beacon storm, the first maintenance round). */
  quietAfterMs: number
  idleCpuPercent: number
  loopDelayP99Ms: number
  connectionsPerNode: number
  /** Wiring dials (each node to 3 earlier ones) that failed; the agents retry them. */
  topologyDialsFailed: number
  publish?: { t50?: number, t90?: number, t99?: number, t100?: number, heldT100?: number, applied: number, of: number }
  holds: boolean
  why?: string
  load: [number, number]
}

/** Share of one core per worker below which the fleet counts as idle. */
const QUIET_CPU = 0.3

const mib = (b: number): number => Math.round(b / 1024 / 1024 * 10) / 10
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function measure (n: number, workers: number, settleMs: number, dir: string): Promise<Step> {
  const loadStart = loadavg()[0] as number
  const root = generateSigningKey()
  const fleet = await LiveFleet.open({ out: join(dir, `n${n}`), seed: 1, trust: [root.id], agent: {}, workers, agentsPerWorker: Math.ceil(n / workers) })
  try {
    const empty = await fleet.cluster.memory()
    const random = prng(seedOf(1, 'capacity', n))
    const plan = planTopology({ kind: 'random', peers: 3 }, n, random)
    const nodes = Array.from({ length: n }, (_, i) => fleet.add({ role: 'web' }, { neighbours: plan.edges.filter(([a]) => a === i).map(([, b]) => b), skeleton: ['/etc'] }))
    const t = Date.now()
    let started = 0
    await Promise.all(nodes.map(async (node) => {
      await fleet.start(node, [])
      started++
      if (started % 50 === 0) process.stderr.write(`  ${n}: ${started} agents up\n`)
    }))
    const startWallMs = Date.now() - t
    // Dials that fail here (under the start-up load, mostly the 10 s dial timeout) are retried
    // by each agent's peer maintenance, as --bootstrap peers are; counted, not fatal.
    const failedDials = new Map<number, number>()
    await Promise.all(nodes.map(async (node) => {
      if (node.neighbours.length === 0) return
      const failed = await fleet.cluster.connect(node.spec.index, node.neighbours.map((j) => nodes[j]?.addrs[0] as string))
      if (failed.length > 0) failedDials.set(node.spec.index, failed.length)
    }))
    await fleet.cluster.ready(nodes.map((x) => x.spec.index), READY_HEARTBEATS, 60_000)
    // Wait out the start-up storm: every agent's three join beacons are verified by every other
    // agent (N² signature checks on this one machine), and the first peer-maintenance round
    // dials. Quiet means the workers' CPU stayed under QUIET_CPU for one 2 s sample.
    const quietStart = Date.now()
    let cpu = await fleet.cluster.memory()
    for (;;) {
      await sleep(2000)
      const next = await fleet.cluster.memory()
      const used = (next.reduce((s, m) => s + m.cpuMs, 0) - cpu.reduce((s, m) => s + m.cpuMs, 0)) / 2000
      cpu = next
      if ((Date.now() - t >= SETTLE_MIN_MS && used < QUIET_CPU * workers) || Date.now() - quietStart > settleMs) break
    }
    const quietMs = Date.now() - quietStart
    // Idle cost: CPU and event-loop delay over 5 s.
    const before = await fleet.cluster.memory()
    await sleep(5000)
    const after = await fleet.cluster.memory()
    const cpuMs = after.reduce((s, m) => s + m.cpuMs, 0) - before.reduce((s, m) => s + m.cpuMs, 0)
    const peers = await fleet.cluster.peers(nodes.map((x) => x.spec.index))
    const rss = after.reduce((s, m) => s + m.rss, 0)
    const emptyRss = empty.reduce((s, m) => s + m.rss, 0)
    const starts = summarize(nodes.flatMap((x) => x.rec.startMs)) as NonNullable<ReturnType<typeof summarize>>

    // One small policy from node-0.
    const policy = validatePolicyObject({ kind: 'policy', name: 'bench/motd', resources: [{ id: 'motd', type: 'file', path: '/etc/motd', content: 'capacity bench: {{ node.name }}\n' }] })
    const bytes = signPolicy(policy, { version: 1, key: root })
    const env = validateEnvelope(bytes, { authorize: () => {} })
    fleet.t0 = Date.now()
    const res = await fleet.cluster.publish(0, bytes)
    fleet.recordPublish({ id: 'motd', name: env.name, version: 1, hash: env.hash, from: 0, signer: 'root', at: res.at, kind: 'policy' })
    const deadline = Date.now() + 60_000
    let record = fleet.toRecord()
    while (Date.now() < deadline) {
      record = fleet.toRecord()
      const { latencies, targeted } = onlineTargets(record, record.publishes[0] as RecordPublish)
      if (latencies.length >= targeted) break
      await sleep(100)
    }
    const p = record.publishes[0] as RecordPublish
    const { latencies, targeted } = onlineTargets(record, p)
    const held = record.deliveries.filter((d) => d.name === env.name).map((d) => d.at - p.at)
    const q = quantiles(latencies, targeted)
    const loop = Math.max(...after.map((m: WorkerMemory) => m.loopDelayP99Ms))
    // Name the nodes left behind, with the connections they had at rest: isolation or load.
    const applied = new Set(record.applies.filter((a) => a.name === env.name).map((a) => a.node))
    // Held but not applied (the apply side) or never held (delivery)?
    const holders = new Set(record.deliveries.filter((d) => d.name === env.name).map((d) => d.node))
    const behind = nodes.filter((x) => !applied.has(x.spec.index)).slice(0, 5).map((x) => {
      const dials = failedDials.get(x.spec.index)
      return `${x.spec.name} (${holders.has(x.spec.index) ? 'held it' : 'never held it'}, ${peers[x.spec.index] ?? 0} connections${dials !== undefined ? `, ${dials} of its ${x.neighbours.length} topology dials failed` : ''})`
    })
    const why = latencies.length < targeted
      ? `${targeted - latencies.length} of ${targeted} nodes had not applied the policy after 60 s: ${behind.join(', ')}`
      : loop > 1000 ? `event loop p99 delay ${Math.round(loop)} ms` : rss > totalmem() * 0.75 ? 'RSS above 75% of RAM' : undefined
    return {
      nodes: n,
      workers,
      startWallMs,
      startPerAgentMs: { mean: Math.round(starts.mean), p90: starts.p90, max: starts.max },
      wallPerAgentMs: Math.round(startWallMs / n * 10) / 10,
      emptyWorkerRssMiB: mib(emptyRss / workers),
      rssMiB: mib(rss),
      perAgentMiB: mib((rss - emptyRss) / n),
      quietAfterMs: quietMs,
      idleCpuPercent: Math.round(cpuMs / 5000 * 100),
      loopDelayP99Ms: Math.round(loop),
      connectionsPerNode: Math.round(Object.values(peers).reduce((a, b) => a + b, 0) / n * 10) / 10,
      topologyDialsFailed: [...failedDials.values()].reduce((a, b) => a + b, 0),
      publish: { ...q, ...(held.length >= n ? { heldT100: Math.max(...held) } : {}), applied: latencies.length, of: targeted },
      holds: why === undefined,
      ...(why !== undefined ? { why } : {}),
      load: [loadStart, loadavg()[0] as number]
    }
  } finally {
    await fleet.close()
  }
}

async function main (): Promise<void> {
  const ladder = (arg('--ladder') ?? '25,50,100,200').split(',').map(Number).filter((x) => x > 0)
  const workers = Number(arg('--workers') ?? Math.min(2, availableParallelism()))
  const settleMs = Number(arg('--settle-ms') ?? 120_000)
  const out = arg('--out') ?? join('out', `capacity-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  const dir = await mkdtemp(join(tmpdir(), 'grapevine-capacity-'))
  const steps: Step[] = []
  process.stderr.write(`capacity: ladder ${ladder.join(', ')} agents, ${workers} worker processes, ${availableParallelism()} CPUs, ${mib(totalmem())} MiB RAM (${mib(freemem())} free), load ${loadavg()[0]?.toFixed(1)}\n`)
  try {
    for (const n of ladder) {
      process.stderr.write(`  ${n} agents…\n`)
      const step = await measure(n, workers, settleMs, dir)
      steps.push(step)
      const p = step.publish
      process.stdout.write(`${String(n).padStart(5)} agents: start ${step.startPerAgentMs.mean} ms each (p90 ${step.startPerAgentMs.p90}; ${step.wallPerAgentMs} ms of wall time per agent), ${step.perAgentMiB} MiB each (${step.rssMiB} MiB RSS in all), quiet after ${Math.round(step.quietAfterMs / 1000)} s, then idle CPU ${step.idleCpuPercent}% of one core, loop p99 ${step.loopDelayP99Ms} ms, ${step.connectionsPerNode} connections/node (${step.topologyDialsFailed} wiring dials failed); publish: all held in ${p?.heldT100 ?? '—'} ms, applied T50 ${p?.t50 ?? '—'} ms, T99 ${p?.t99 ?? '—'} ms, T100 ${p?.t100 ?? '—'} ms (${p?.applied}/${p?.of})${step.holds ? '' : `  — DOES NOT HOLD: ${step.why}`}\n`)
      await rm(join(dir, `n${n}`), { recursive: true, force: true })
      if (!step.holds) break
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify({ machine: { cpus: availableParallelism(), ramMiB: mib(totalmem()), node: process.version }, steps }, null, 2) + '\n')
  const held = steps.filter((s) => s.holds)
  process.stdout.write(`largest size that held: ${held.length > 0 ? held[held.length - 1]?.nodes : 'none'} agents; figures in ${out}\n`)
}

main().catch((err) => {
  process.stderr.write(`bench:capacity failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
