// `npm run bench:soak [-- --days 14 --nodes 3]`: weeks of an agent's life in minutes. Real
// agents (libp2p on 127.0.0.1 TCP, real state directories and applies) run on a virtual clock
// (AgentOptions.now and setTimer) that jumps from one timer to the next, so sync rounds,
// beacons, re-applies and peer maintenance run at their default intervals in simulated time,
// and a new version is published every simulated day. Prints the heap (after a full GC) and the
// process's active handles every simulated day: flat figures mean nothing grows per tick.
// Figures, not assertions. Needs --expose-gc for a heap figure worth reading.
import '../shim.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Agent } from '../node/agent.js'
import { VirtualTime } from '../node/virtual-time.js'
import { generateSigningKey, signPolicy } from '../envelope/index.js'
import { validatePolicyObject } from '../policy/index.js'

const DAY_MS = 24 * 60 * 60_000
/** Real time given to sockets once per simulated minute: a sync round's frames cross loopback in about a millisecond. */
const REAL_PAUSE_PER_MINUTE_MS = 5

/**
 * Between two timers: the work a timer started runs (promise callbacks, then the event loop's
 * I/O), and once a simulated minute the sockets get REAL_PAUSE_PER_MINUTE_MS of real time.
 */
function realTimeFor (time: () => number): () => Promise<void> {
  let nextPause: number | undefined
  return async () => {
    await new Promise((resolve) => setImmediate(resolve))
    nextPause ??= time() + 60_000
    if (time() >= nextPause) {
      nextPause = time() + 60_000
      await new Promise((resolve) => setTimeout(resolve, REAL_PAUSE_PER_MINUTE_MS))
    }
  }
}

interface Sample {
  day: number
  heapMiB: number
  handles: number
  byType: Record<string, number>
  agentTimers: number
  virtualTimers: number
}

function sample (day: number, agents: Agent[], time: VirtualTime): Sample {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
  const byType: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) byType[type] = (byType[type] ?? 0) + 1
  return {
    day,
    heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
    handles: Object.values(byType).reduce((a, b) => a + b, 0),
    byType,
    agentTimers: agents.reduce((n, a) => n + a.clock.pending, 0),
    virtualTimers: time.armed
  }
}

/** Least-squares slope of y over x. */
function slope (xs: number[], ys: number[]): number {
  const n = xs.length
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my)
    den += ((xs[i] as number) - mx) ** 2
  }
  return den === 0 ? 0 : num / den
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { days: { type: 'string', default: '14' }, nodes: { type: 'string', default: '3' } } })
  const days = Number(values.days)
  const n = Number(values.nodes)
  if (!(Number.isInteger(days) && days >= 2 && Number.isInteger(n) && n >= 2)) throw new Error('--days must be an integer ≥ 2 and --nodes an integer ≥ 2')
  if ((globalThis as { gc?: () => void }).gc === undefined) console.warn('warning: run node with --expose-gc (npm run bench:soak does) for heap figures after a full GC')

  const dir = await mkdtemp(join(process.env.GRAPEVINE_BENCH_DIR ?? tmpdir(), 'grapevine-bench-soak-'))
  const time: VirtualTime = new VirtualTime(Date.now(), realTimeFor(() => time.now()))
  const key = generateSigningKey()
  const agents: Agent[] = []
  const counts = { syncRounds: 0, applies: 0, reports: 0, accepted: 0 }
  const realStart = Date.now()
  try {
    for (let i = 0; i < n; i++) {
      const agent = await Agent.start({
        stateDir: join(dir, `n${i}`, 'state'),
        root: join(dir, `n${i}`, 'root'),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: agents.map((a) => a.multiaddrs[0] as string),
        trust: [key.id],
        name: `n${i}`,
        now: time.now,
        setTimer: time.setTimer
      })
      agent.on('sync', () => { counts.syncRounds++ })
      agent.on('applied', () => { counts.applies++ })
      agent.on('report', () => { counts.reports++ })
      agent.on('accepted', () => { counts.accepted++ })
      agents.push(agent)
    }
    const publish = async (version: number): Promise<void> => {
      const policy = validatePolicyObject({
        kind: 'policy',
        name: 'bench/soak',
        resources: [{ id: 'etc', type: 'directory', path: '/etc' }, { id: 'motd', type: 'file', path: '/etc/motd', content: `release ${version} on {{ node.name }}\n` }]
      })
      await agents[0]?.publish(signPolicy(policy, { version, key, now: time.now }))
    }

    const samples: Sample[] = []
    const start = time.now()
    let fired = 0
    for (let day = 0; day <= days; day++) {
      if (day > 0) {
        await publish(day)
        fired += await time.advance(start + day * DAY_MS - time.now())
      }
      const s = sample(day, agents, time)
      samples.push(s)
      const types = Object.entries(s.byType).sort().map(([t, c]) => `${t} ${c}`).join(', ')
      console.log(`day ${String(day).padStart(3)}: heap ${s.heapMiB.toFixed(1)} MiB, handles ${s.handles} (${types}), agent timers ${s.agentTimers}, virtual timers ${s.virtualTimers}; so far ${fired} ticks, ${counts.syncRounds} sync rounds, ${counts.applies} applies, ${counts.reports} reports, ${counts.accepted} versions taken; ${((Date.now() - realStart) / 1000).toFixed(0)} s real`)
    }
    // Day 1 on: day 0 is before the first publish, apply and JIT warm-up.
    const steady = samples.filter((s) => s.day >= 1)
    const first = steady[0] as Sample
    const last = steady.at(-1) as Sample
    console.log(JSON.stringify({
      nodes: n,
      simulatedDays: days,
      realSeconds: Math.round((Date.now() - realStart) / 1000),
      ticks: fired,
      ...counts,
      heapMiB: { day1: +first.heapMiB.toFixed(1), end: +last.heapMiB.toFixed(1), perDay: +slope(steady.map((s) => s.day), steady.map((s) => s.heapMiB)).toFixed(3) },
      handles: { day1: first.handles, end: last.handles },
      agentTimers: { day1: first.agentTimers, end: last.agentTimers }
    }))
  } finally {
    await Promise.all(agents.map(async (a) => await a.stop()))
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
