// `npm run sim:scale`: the scale sweep. Runs the model engine at N = 100 … 100,000 on the
// Internet network of simulations/scale-internet.yaml, the central push and pull baselines on
// the same network, the 1 MiB policy with and without announce-and-fetch, and the calibration
// against live runs (simulations/scale-calibration.yaml, figures measured with the live engine
// in simulations/scale-calibration-live.json). Writes scale.json and scale.html to
// ./out/scale-<timestamp>/.
//
//   npm run sim:scale -- [--nodes 100,1000,10000,100000] [--big 1000,10000] [--out DIR] [--seed N]

import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { loadScenario, type Scenario } from '../scenario.js'
import { expectedHops, quantiles, type Quantiles } from '../metrics.js'
import { meanLatency } from '../random.js'
import { escapeHtml as esc, formatBytes, formatMs } from '../report.js'
import { describeNetwork } from '../summary.js'
import type { RecordPublish } from '../result.js'
import { simulate, type ModelRun } from './index.js'
import { sharedHostOverrides } from './host.js'
import { centralPull, centralPush, type BaselineNet, type BaselineResult, type PullParams, type PushParams } from './baselines.js'
import { barChart, logLogChart } from './chart.js'
import { DEDICATED_CPU, DEFAULT_UPLINK_BYTES_PER_S, MESH_D } from './constants.js'
import { announces } from '../../node/rules.js'

export { sharedHostOverrides } from './host.js'

/** Seeds (offsets) of the meshes the calibration averages over. */
const CALIBRATION_SEEDS = [0, 1, 2]

const SMALL = 4096
const BIG = 1024 * 1024

/** Ansible's default forks, and a large fleet's setting. */
const PUSH: PushParams[] = [5, 50].map((forks) => ({ forks, sessionRtts: 5, perHostMs: 0, applyMs: DEDICATED_CPU.applyMs + DEDICATED_CPU.applyIoMs }))

/**
 * Pull masters with 8 cores, their per-request cost set so that they saturate at the capacity
 * the vendors quote (DESIGN.md): a Puppet primary about 4,000 agents at a 30 min run interval
 * (8 × 1,800 s / 4,000 = 3.6 s of compile per agent run), a CFEngine hub about 5,000 agents
 * at 5 min (8 × 300 s / 5,000 = 0.48 s).
 */
const PULL: Array<PullParams & { tool: string }> = [
  { tool: 'CFEngine-style', intervalMs: 5 * 60_000, splayMs: 0, serveMs: 480, masterCores: 8, connectRtts: 2, pollBytes: 4096, applyMs: DEDICATED_CPU.applyMs + DEDICATED_CPU.applyIoMs },
  { tool: 'Puppet-style', intervalMs: 30 * 60_000, splayMs: 0, serveMs: 3600, masterCores: 8, connectRtts: 2, pollBytes: 4096, applyMs: DEDICATED_CPU.applyMs + DEDICATED_CPU.applyIoMs }
]

export interface GossipFigures {
  nodes: number
  policyBytes: number
  dissemination: 'gossip' | 'announce'
  times: Quantiles
  /** ⌈ln N / ln D⌉, the physical-limit model's hop count. */
  hops: number
  /** Hops the accepted copies actually took: mean, and the farthest node. */
  hopsMean: number
  hopsMax: number
  physicalLimitMs: number
  busiest: { node: number, bytes: number, connections: number }
  publisherBytesSent: number
  perNode: { policyBytesMean: number, policyBytesMax: number, messagesMean: number, duplicatesMean: number, bytesMean: number }
  via: Record<string, number>
  wallMs: number
  events: number
}

function args (a: string[]): { nodes: number[], big: number[], churn: number[], out?: string, seed: number, calibrate: boolean } {
  const get = (flag: string): string | undefined => {
    const i = a.indexOf(flag)
    return i >= 0 ? a[i + 1] : undefined
  }
  const list = (s: string | undefined, d: number[]): number[] => s === undefined ? d : s.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 1)
  const out = get('--out')
  return {
    nodes: list(get('--nodes'), [100, 1000, 10_000, 100_000]),
    big: list(get('--big'), [1000, 10_000, 100_000]),
    churn: list(get('--churn'), [10_000, 100_000]),
    ...(out !== undefined ? { out } : {}),
    seed: Number(get('--seed') ?? 1),
    calibrate: !a.includes('--no-calibration')
  }
}

/** Physical limit (DESIGN.md): H × (one-way latency + verify + transfer of one copy), H = ⌈ln N / ln D⌉. */
export function physicalLimitMs (nodes: number, latencyMs: number, bytes: number, uplink: number, verifyMs: number): number {
  return expectedHops(nodes, MESH_D) * (latencyMs + verifyMs + bytes * 1000 / uplink)
}

export function gossipFigures (run: ModelRun, scenario: Scenario): GossipFigures {
  const { record, engine } = run
  const p = record.publishes[0]
  if (p === undefined) throw new Error(`${scenario.file}: the sweep needs a publish in the timeline`)
  const lat = record.applies.filter((a) => a.name === p.name && a.version === p.version).map((a) => a.at - p.at)
  const n = record.nodes.length
  const win = p.traffic?.byNode ?? {}
  let busiest = { node: -1, bytes: -1, connections: 0 }
  let bytesSum = 0
  for (const [k, t] of Object.entries(win)) {
    const b = t.gossipBytesSent + t.gossipBytesReceived + t.syncBytesSent + t.syncBytesReceived
    bytesSum += b
    if (b > busiest.bytes) busiest = { node: Number(k), bytes: b, connections: engine.g.conn.len[Number(k)] ?? 0 }
  }
  let maxConn = 0
  for (let i = 0; i < n; i++) maxConn = Math.max(maxConn, engine.g.conn.len[i]!)
  busiest.connections = Math.max(busiest.connections, maxConn)
  const tr = engine.traffic
  let pb = 0
  let pbMax = 0
  let msgs = 0
  let dups = 0
  for (let i = 0; i < n; i++) {
    if (i === p.from) continue
    pb += tr.policyRecv[i]!
    pbMax = Math.max(pbMax, tr.policyRecv[i]!)
    msgs += tr.policyMsgs[i]!
    dups += tr.policyDups[i]!
  }
  const others = Math.max(1, n - 1)
  const via: Record<string, number> = {}
  for (const d of record.deliveries) via[d.via] = (via[d.via] ?? 0) + 1
  const m = engine.msgs[run.messages[0] as number]!
  const params = run.stats.params
  let hopSum = 0
  let hopMax = 0
  let holders = 0
  for (let i = 0; i < n; i++) {
    if (i === p.from || Number.isNaN(m.acceptedAt[i]!)) continue
    holders++
    hopSum += m.hops[i]!
    hopMax = Math.max(hopMax, m.hops[i]!)
  }
  return {
    nodes: n,
    policyBytes: m.bytes,
    dissemination: announces(m.bytes, params.announceThreshold) ? 'announce' : 'gossip',
    times: quantiles(lat, n),
    hops: expectedHops(n, MESH_D),
    hopsMean: hopSum / Math.max(1, holders),
    hopsMax: hopMax,
    physicalLimitMs: physicalLimitMs(n, meanLatency(params.net.latency), m.bytes, params.net.uplinkBytesPerS, params.cpu.verifyMs),
    busiest,
    publisherBytesSent: (win[p.from]?.gossipBytesSent ?? 0) + (win[p.from]?.syncBytesSent ?? 0),
    perNode: { policyBytesMean: pb / others, policyBytesMax: pbMax, messagesMean: msgs / others, duplicatesMean: dups / others, bytesMean: bytesSum / Math.max(1, Object.keys(win).length) },
    via,
    wallMs: run.stats.wallMs,
    events: run.stats.events
  }
}

interface LiveFigures {
  nodes: number
  /** bench:mesh (one process, connections topped up) or live (grapevine sim, worker processes). */
  engine: 'bench:mesh' | 'live'
  cores: number
  source: string
  accepted: Quantiles
  applied?: Quantiles
  messagesPerNode?: number
  duplicatesPerNode?: number
}

interface CalibrationRow {
  nodes: number
  live: LiveFigures
  model: { accepted: Quantiles, applied: Quantiles, messagesPerNode: number, duplicatesPerNode: number, wallMs: number }
  /** (model − live) / live for T50, T90, T99, T100 of acceptance. */
  diff: Record<'t50' | 't90' | 't99' | 't100', number | undefined>
}

async function calibration (seed: number, log: (s: string) => void): Promise<{ rows: CalibrationRow[], note: string }> {
  let live: { note: string, runs: LiveFigures[] }
  try {
    live = JSON.parse(await readFile(join('simulations', 'scale-calibration-live.json'), 'utf8')) as typeof live
  } catch {
    return { rows: [], note: 'simulations/scale-calibration-live.json not found: no live figures to compare with' }
  }
  const scenario = await loadScenario(join('simulations', 'scale-calibration.yaml'))
  const rows: CalibrationRow[] = []
  for (const l of live.runs) {
    // Both live setups let peer maintenance top connections up before the publish (bench:mesh for 9 s, grapevine sim until it settles).
    // Three seeds (three random meshes), averaged: one live run is one mesh too.
    const runs = CALIBRATION_SEEDS.map((k) => simulate({ ...scenario, engine: 'model' }, { nodes: l.nodes, seed: seed + k, params: sharedHostOverrides(l.cores) }))
    const figs = runs.map((run) => {
      const p = run.record.publishes[0] as RecordPublish
      const n = run.record.nodes.length
      const tr = run.engine.traffic
      let m = 0
      let d = 0
      for (let i = 0; i < n; i++) if (i !== p.from) { m += tr.policyMsgs[i]!; d += tr.policyDups[i]! }
      return {
        accepted: quantiles(run.record.deliveries.filter((x) => x.via !== 'local' && x.name === p.name).map((x) => x.at - p.at), n - 1),
        applied: quantiles(run.record.applies.filter((a) => a.name === p.name).map((a) => a.at - p.at), n),
        msgs: m / (n - 1),
        dups: d / (n - 1),
        wallMs: run.stats.wallMs
      }
    })
    const mean = (f: (x: typeof figs[number]) => number | undefined): number | undefined => {
      const xs = figs.map(f)
      return xs.some((x) => x === undefined) ? undefined : xs.reduce((a: number, x) => a + (x as number), 0) / xs.length
    }
    const avgQ = (k: 'accepted' | 'applied'): Quantiles => {
      const out: Quantiles = {}
      for (const q of ['t50', 't90', 't99', 't100'] as const) { const v = mean((x) => x[k][q]); if (v !== undefined) out[q] = v }
      return out
    }
    const accepted = avgQ('accepted')
    const msgs = mean((x) => x.msgs) as number
    const dups = mean((x) => x.dups) as number
    const n = l.nodes
    const pct = (m: number | undefined, x: number | undefined): number | undefined => m === undefined || x === undefined || x === 0 ? undefined : (m - x) / x
    rows.push({
      nodes: l.nodes,
      live: l,
      model: { accepted, applied: avgQ('applied'), messagesPerNode: msgs, duplicatesPerNode: dups, wallMs: mean((x) => x.wallMs) as number },
      diff: { t50: pct(accepted.t50, l.accepted.t50), t90: pct(accepted.t90, l.accepted.t90), t99: pct(accepted.t99, l.accepted.t99), t100: pct(accepted.t100, l.accepted.t100) }
    })
    log(`calibration N=${l.nodes} (${l.engine}): live T50/T90/T100 ${formatMs(l.accepted.t50)}/${formatMs(l.accepted.t90)}/${formatMs(l.accepted.t100)}, model ${formatMs(accepted.t50)}/${formatMs(accepted.t90)}/${formatMs(accepted.t100)}; messages per node live ${l.messagesPerNode?.toFixed(1) ?? '—'}, model ${msgs.toFixed(1)} (${n} nodes, mean of ${figs.length} meshes)`)
  }
  return { rows, note: live.note }
}

export interface ChurnFigures {
  nodes: number
  simulatedMs: number
  wallMs: number
  events: number
  up: number
  /** Running nodes holding the last publish at the end. */
  holders: number
  /** When the last running node got the last publish, ms after that publish. */
  convergedAt?: number
}

/** Times the engine on simulations/scale-churn.yaml: churn, a partition, joiners and sync over its whole duration. */
export function churnRun (scenario: Scenario, nodes: number, seed: number): ChurnFigures {
  const run = simulate(scenario, { nodes, seed, until: scenario.duration ?? 120_000 })
  const e = run.engine
  const last = run.messages[run.messages.length - 1]
  const m = last !== undefined ? e.msgs[last] : undefined
  if (last === undefined || m === undefined) throw new Error(`${scenario.file}: no publish took place (is the publisher up?)`)
  let up = 0
  let holders = 0
  let latest = 0
  for (let i = 0; i < e.nodes; i++) {
    if (e.up[i] === 0) continue
    up++
    if (e.current[m.name]![i] === last) {
      holders++
      latest = Math.max(latest, m.acceptedAt[i]!)
    }
  }
  return { nodes, simulatedMs: run.record.end, wallMs: run.stats.wallMs, events: run.stats.events, up, holders, ...(holders === up ? { convergedAt: latest - m.at } : {}) }
}

function baselineNet (s: Scenario): BaselineNet {
  return { latency: s.network.latency, loss: s.network.loss, rto: s.network.rto, uplinkBytesPerS: DEFAULT_UPLINK_BYTES_PER_S }
}

/** The sweep, as `npm run sim:scale` runs it (argv: the command's arguments). */
export async function runScaleSweep (argv: string[]): Promise<void> {
  const opts = args(argv)
  const started = new Date()
  const out = opts.out ?? join('out', `scale-${started.toISOString().replace(/[:.]/g, '-')}`)
  const log = (s: string): void => { process.stderr.write(`${s}\n`) }
  const scenario = await loadScenario(join('simulations', 'scale-internet.yaml'))
  const net = baselineNet(scenario)
  log(`scale sweep: ${describeNetwork(scenario.network)}, 100 Mbit/s uplinks; N = ${opts.nodes.join(', ')}`)

  const sweep: Array<{ nodes: number, gossip: GossipFigures, push: BaselineResult[], pull: Array<BaselineResult & { tool: string }> }> = []
  for (const n of opts.nodes) {
    const t = performance.now()
    const run = simulate(scenario, { nodes: n, seed: opts.seed, policyBytes: SMALL, ignoreChecks: true })
    const g = gossipFigures(run, scenario)
    const push = PUSH.map((p) => centralPush(n, SMALL, net, p, opts.seed))
    const pull = PULL.map((p) => ({ ...centralPull(n, SMALL, net, p, opts.seed), tool: p.tool }))
    sweep.push({ nodes: n, gossip: g, push, pull })
    log(`N=${n}: gossip T99 ${formatMs(g.times.t99)} T100 ${formatMs(g.times.t100)}, hops mean ${g.hopsMean.toFixed(1)} max ${g.hopsMax} (⌈ln N / ln 6⌉ = ${g.hops}) (model ran ${(g.wallMs / 1000).toFixed(1)} s, ${g.events} events); push F=5 T100 ${formatMs(push[0]?.times.t100)}; pull 5 min T100 ${formatMs(pull[0]?.times.t100)} [${((performance.now() - t) / 1000).toFixed(1)} s]`)
  }

  const big: Array<{ nodes: number, gossip: GossipFigures, announce: GossipFigures }> = []
  for (const n of opts.big) {
    // Whole envelopes (--announce-threshold 0), against the agent's default threshold, which a 1 MiB envelope is over.
    const gossip = gossipFigures(simulate(scenario, { nodes: n, seed: opts.seed, policyBytes: BIG, ignoreChecks: true, params: { announceThreshold: 0 } }), scenario)
    const announce = gossipFigures(simulate(scenario, { nodes: n, seed: opts.seed, policyBytes: BIG, ignoreChecks: true }), scenario)
    big.push({ nodes: n, gossip, announce })
    log(`1 MiB at N=${n}: received per node ${(gossip.perNode.policyBytesMean / BIG).toFixed(2)} × (gossip), ${(announce.perNode.policyBytesMean / BIG).toFixed(2)} × (announce-and-fetch); T99 ${formatMs(gossip.times.t99)} vs ${formatMs(announce.times.t99)}`)
  }

  const churnScenario = await loadScenario(join('simulations', 'scale-churn.yaml'))
  const churn: ChurnFigures[] = []
  for (const n of opts.churn) {
    const c = churnRun(churnScenario, n, opts.seed)
    churn.push(c)
    log(`churn N=${n}: ${(c.simulatedMs / 1000).toFixed(0)} s simulated in ${(c.wallMs / 1000).toFixed(1)} s (${c.events} events); last publish held by ${c.holders}/${c.up} running nodes, all by ${c.convergedAt === undefined ? 'never' : formatMs(c.convergedAt)}`)
  }

  const cal = opts.calibrate ? await calibration(opts.seed, log) : { rows: [], note: 'skipped (--no-calibration)' }

  const report = {
    format: 1,
    startedAt: started.toISOString(),
    machine: { cpus: availableParallelism(), model: cpus()[0]?.model ?? 'unknown', node: process.version },
    network: describeNetwork(scenario.network) + ', 100 Mbit/s uplinks',
    meanLatencyMs: meanLatency(scenario.network.latency),
    sweep,
    big,
    churn,
    calibration: cal
  }
  await mkdir(out, { recursive: true })
  await writeFile(join(out, 'scale.json'), JSON.stringify(report, null, 2) + '\n')
  await writeFile(join(out, 'scale.html'), renderScale(report))
  process.stdout.write(table(report) + `\nwrote ${join(out, 'scale.json')} and ${join(out, 'scale.html')}\n`)
}

type Report = {
  startedAt: string
  machine: { cpus: number, model: string, node: string }
  network: string
  meanLatencyMs: number
  sweep: Array<{ nodes: number, gossip: GossipFigures, push: BaselineResult[], pull: Array<BaselineResult & { tool: string }> }>
  big: Array<{ nodes: number, gossip: GossipFigures, announce: GossipFigures }>
  churn: ChurnFigures[]
  calibration: { rows: CalibrationRow[], note: string }
}

const fmtN = (n: number): string => n.toLocaleString('en-US')
const pct = (x: number | undefined): string => x === undefined ? '—' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(0)}%`

function table (r: Report): string {
  const lines: string[] = ['', 'N        | gossip T99 / T100   | busiest bytes / conns | push F=5 T100 | push F=50 T100 | master bytes | pull 5 min T100 (ρ) | pull 30 min T100 (ρ) | model wall']
  for (const s of r.sweep) {
    const [p5, p50] = s.push
    const [c, pu] = s.pull
    lines.push([
      fmtN(s.nodes).padEnd(8),
      `${formatMs(s.gossip.times.t99)} / ${formatMs(s.gossip.times.t100)}`.padEnd(19),
      `${formatBytes(s.gossip.busiest.bytes)} / ${s.gossip.busiest.connections}`.padEnd(21),
      formatMs(p5?.times.t100).padEnd(13),
      formatMs(p50?.times.t100).padEnd(14),
      formatBytes(p5?.busiest.bytesSent ?? 0).padEnd(12),
      `${formatMs(c?.times.t100)} (${c?.utilisation?.toFixed(2)})`.padEnd(19),
      `${formatMs(pu?.times.t100)} (${pu?.utilisation?.toFixed(2)})`.padEnd(20),
      `${(s.gossip.wallMs / 1000).toFixed(1)} s`
    ].join(' | '))
  }
  return lines.join('\n')
}

export function renderScale (r: Report): string {
  const col = { gossip: '#2563eb', push5: '#dc2626', push50: '#f97316', pull5: '#059669', pull30: '#7c3aed', phys: '#111827', announce: '#0891b2' }
  const pts = (f: (s: Report['sweep'][number]) => number | undefined): Array<[number, number]> => r.sweep.flatMap((s) => { const v = f(s); return v === undefined ? [] : [[s.nodes, v] as [number, number]] })
  const timeChart = (q: 't99' | 't100'): string => logLogChart([
    { label: 'gossip (Grapevine)', colour: col.gossip, points: pts((s) => s.gossip.times[q]) },
    { label: 'push, 5 forks', colour: col.push5, points: pts((s) => s.push[0]?.times[q]) },
    { label: 'push, 50 forks', colour: col.push50, points: pts((s) => s.push[1]?.times[q]) },
    { label: 'pull every 5 min', colour: col.pull5, points: pts((s) => s.pull[0]?.times[q]) },
    { label: 'pull every 30 min', colour: col.pull30, points: pts((s) => s.pull[1]?.times[q]) },
    { label: 'physical limit', colour: col.phys, dashed: true, points: pts((s) => s.gossip.physicalLimitMs) }
  ], { title: `Time until ${q === 't99' ? '99%' : '100%'} of hosts applied a 4 KiB policy, against fleet size (log-log). Dashed: H × (latency + verify + transfer), H = ⌈ln N / ln 6⌉.`, x: 'hosts (N)', y: q === 't99' ? 'time to 99%' : 'time to 100%', formatX: fmtN, formatY: formatMs })
  const bytesChart = logLogChart([
    { label: 'gossip: busiest node', colour: col.gossip, points: pts((s) => s.gossip.busiest.bytes) },
    { label: 'gossip: mean node', colour: col.announce, points: pts((s) => s.gossip.perNode.bytesMean) },
    { label: 'push: master', colour: col.push5, points: pts((s) => s.push[0]?.busiest.bytesSent) },
    { label: 'pull: master', colour: col.pull5, points: pts((s) => (s.pull[0]?.busiest.bytesSent ?? 0) + (s.pull[0]?.busiest.bytesReceived ?? 0)) }
  ], { title: 'Bytes at the busiest node for one 4 KiB publish (the publisher for gossip, the master otherwise).', x: 'hosts (N)', y: 'bytes', formatX: fmtN, formatY: formatBytes })
  const connChart = logLogChart([
    { label: 'gossip: most connections held', colour: col.gossip, points: pts((s) => s.gossip.busiest.connections) },
    { label: 'push: master sessions', colour: col.push5, points: pts((s) => s.push[0]?.busiest.connections) },
    { label: 'pull: master connections', colour: col.pull5, points: pts((s) => s.pull[0]?.busiest.connections) }
  ], { title: 'Connections at the busiest node per publish (gossip reuses the connections it holds).', x: 'hosts (N)', y: 'connections', formatX: fmtN, formatY: (v) => fmtN(Math.round(v)) })
  const bigChart = r.big.length === 0
    ? ''
    : barChart(r.big.map((b) => ({ label: `N = ${fmtN(b.nodes)}`, values: [b.gossip.perNode.policyBytesMean / BIG, b.announce.perNode.policyBytesMean / BIG] })),
      [{ label: 'gossip the envelope', colour: col.gossip }, { label: 'announce-and-fetch', colour: col.announce }],
      { title: 'Policy bytes received per node, in copies of a 1 MiB policy (aim: at most 1.5).', format: (v) => `${v.toFixed(2)} ×` })
  const calChart = r.calibration.rows.length === 0
    ? ''
    : barChart(r.calibration.rows.flatMap((c) => (['t50', 't90', 't99', 't100'] as const).map((q) => ({ label: `N=${c.nodes} ${c.live.engine} ${q.toUpperCase()}`, values: [c.live.accepted[q] ?? NaN, c.model.accepted[q] ?? NaN] })).filter((row) => Number.isFinite(row.values[0]))),
      [{ label: 'live', colour: '#6b7280' }, { label: 'model', colour: col.gossip }],
      { title: 'Calibration: time until each fraction of nodes accepted the policy, live agents on this host against the model (shared-host CPU).', format: formatMs })
  const row = (cells: string[]): string => `<tr>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`
  const sweepRows = r.sweep.map((s) => row([
    fmtN(s.nodes),
    `${formatMs(s.gossip.times.t99)} / ${formatMs(s.gossip.times.t100)}`,
    formatMs(s.gossip.physicalLimitMs),
    `${s.gossip.hopsMean.toFixed(1)} / ${s.gossip.hopsMax} / ${s.gossip.hops}`,
    `${formatBytes(s.gossip.busiest.bytes)} / ${s.gossip.busiest.connections}`,
    `${s.gossip.perNode.messagesMean.toFixed(1)} (${s.gossip.perNode.duplicatesMean.toFixed(1)})`,
    ...s.push.map((p) => `${formatMs(p.times.t99)} / ${formatMs(p.times.t100)}`),
    `${formatBytes(s.push[0]?.busiest.bytesSent ?? 0)} / ${fmtN(s.push[0]?.busiest.connections ?? 0)}`,
    ...s.pull.map((p) => `${formatMs(p.times.t99)} / ${formatMs(p.times.t100)}${(p.utilisation ?? 0) > 1 ? ` <b>overloaded ρ=${p.utilisation?.toFixed(1)}</b>` : ` ρ=${p.utilisation?.toFixed(2)}`}`),
    `${(s.gossip.wallMs / 1000).toFixed(1)} s`
  ])).join('')
  const bigRows = r.big.map((b) => [b.gossip, b.announce].map((g) => row([
    fmtN(b.nodes), g.dissemination === 'gossip' ? 'gossip the envelope' : 'announce-and-fetch',
    `${(g.perNode.policyBytesMean / BIG).toFixed(2)} × (max ${(g.perNode.policyBytesMax / BIG).toFixed(1)} ×)`,
    formatBytes(g.publisherBytesSent), `${formatMs(g.times.t99)} / ${formatMs(g.times.t100)}`, formatMs(g.physicalLimitMs)
  ])).join('')).join('')
  const calRows = r.calibration.rows.map((c) => row([
    `${fmtN(c.nodes)} (${esc(c.live.engine)})`,
    (['t50', 't90', 't99', 't100'] as const).map((q) => `${formatMs(c.live.accepted[q])} / ${formatMs(c.model.accepted[q])} (${pct(c.diff[q])})`).join('<br>'),
    `${c.live.messagesPerNode?.toFixed(2) ?? '—'} / ${c.model.messagesPerNode.toFixed(2)}`,
    `${c.live.duplicatesPerNode?.toFixed(2) ?? '—'} / ${c.model.duplicatesPerNode.toFixed(2)}`,
    esc(c.live.source)
  ])).join('')
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Grapevine scale sweep</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#111827}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d1d5db;padding:4px 8px;text-align:right;vertical-align:top}th{background:#f3f4f6}figure{margin:1.5em 0}figcaption{color:#4b5563;font-size:13px}</style></head><body>
<h1>Grapevine at scale: gossip against central push and pull</h1>
<p>Model engine (src/sim/model), ${esc(r.startedAt)}, on ${r.machine.cpus} × ${esc(r.machine.model)}, Node ${esc(r.machine.node)}. Network: ${esc(r.network)}. One policy published from one host; times are from the publish until the host applied it. Baselines run on the same network: push opens F parallel sessions from one master (5 round trips each, then the transfer through the master's uplink); pull hosts poll one 8-core master every T, spread evenly over T, with per-request cost set so the master saturates at the vendors' quoted capacity (ρ = load; above 1 the queue grows without bound, and the figure shown is after one interval only).</p>
<h2>Time to 99% and 100%</h2>${timeChart('t99')}${timeChart('t100')}
<h2>The busiest node</h2>${bytesChart}${connChart}
<table><tr><th>N</th><th>gossip T99 / T100</th><th>physical limit</th><th>hops: mean / max / ⌈ln N / ln 6⌉</th><th>gossip busiest node bytes / connections</th><th>gossip copies received per node (duplicates)</th><th>push 5 forks T99 / T100</th><th>push 50 forks T99 / T100</th><th>push master bytes / sessions</th><th>pull 5 min T99 / T100</th><th>pull 30 min T99 / T100</th><th>model run time</th></tr>${sweepRows}</table>
<h2>A 1 MiB policy: gossip against announce-and-fetch</h2>${bigChart}
<table><tr><th>N</th><th>dissemination</th><th>policy bytes received per node</th><th>publisher sent</th><th>T99 / T100</th><th>physical limit</th></tr>${bigRows}</table>
<h2>Engine speed under churn</h2><p>simulations/scale-churn.yaml played in full (kill 10%, two publishes, a partition healed after 30 s, restarts, 100 joiners, anti-entropy throughout).</p>
<table><tr><th>N</th><th>simulated</th><th>wall time</th><th>events</th><th>last publish held by</th><th>last running node had it after</th></tr>${r.churn.map((c) => row([fmtN(c.nodes), formatMs(c.simulatedMs), formatMs(c.wallMs), fmtN(c.events), `${fmtN(c.holders)} / ${fmtN(c.up)}`, formatMs(c.convergedAt)])).join('')}</table>
<h2>Calibration against live agents</h2><p>${esc(r.calibration.note)}</p>${calChart}
<table><tr><th>N</th><th>accepted T50, T90, T99, T100: live / model (difference)</th><th>policy messages per node live / model</th><th>duplicates per node live / model</th><th>live source</th></tr>${calRows}</table>
</body></html>
`
}
