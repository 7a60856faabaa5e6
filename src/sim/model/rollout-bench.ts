// `npm run sim:rollout`: staged rollouts at scale (issue 16, docs/scale.md "Staged rollouts").
// On the scale sweep's Internet network (simulations/scale-internet.yaml), at each N: a bad
// change (its health check fails everywhere) published plainly, staged with
// `--rollout 1,5%,25%,100% --max-failures 0`, and pushed by a master in batches of 5% with
// failhard; then a good change's time until every node runs it healthy, plainly, staged with
// bake 0 and bake 60 s, and by the batched push. Writes rollout.json to ./out/rollout-<time>/.
//
//   npm run sim:rollout -- [--nodes 10000,100000] [--bad 10000] [--out DIR] [--seed N]

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadScenario, type PublishEvent, type Scenario } from '../scenario.js'
import { parseMaxFailures, parseStages } from '../../rollout/index.js'
import { healthResult, rolloutResult } from '../rollout-result.js'
import type { RunRecord } from '../result.js'
import { simulate } from './index.js'
import { batchPush, type BatchParams } from './baselines.js'
import { DEDICATED_CPU, DEFAULT_UPLINK_BYTES_PER_S } from './constants.js'

const STAGES = '1,5%,25%,100%'
const RELEASE_2_AT = 60_000
const BATCH: BatchParams = { batchPercent: 5, sessionRtts: 5, applyMs: DEDICATED_CPU.applyMs + DEDICATED_CPU.applyIoMs, failhard: true }

export interface RolloutFigure {
  nodes: number
  change: 'bad' | 'good'
  plan: string
  /** Nodes that ever applied the change. */
  blastRadius: number
  /** ms from the publish until every node ran it healthy; absent when it never did (halted). */
  allHealthyMs?: number
  /** The staged plan's end state and the sum of its bake times. */
  state?: string
  bakeSumMs?: number
  /** ms from the publish until the last record (done) was signed: one bake after the last stage applied. */
  doneMs?: number
  wallMs: number
}

/** The sweep's scenario with release 1 everywhere, then release 2 from node-0, plain or staged. */
function scenarioFor (base: Scenario, change: 'bad' | 'good', rollout: { bakeMs: number } | undefined): Scenario {
  const release = (at: number, id: string, n: number, extra: Partial<PublishEvent> = {}): PublishEvent & { id: string } => ({
    at, id, do: 'publish', policy: 'motd', from: { kind: 'node', index: 0 }, admin: 'root', vars: { release: n }, ...extra
  })
  // Release 1 comes from another node, a minute earlier: its N receipts, verified one by one at
  // its publisher (about N × 0.5 ms of CPU), would otherwise delay release 2 at 100,000 nodes.
  const other = { from: { kind: 'last' as const, count: 1, percent: false } }
  const staged: Partial<PublishEvent> = rollout === undefined
    ? {}
    : { rollout: { stages: { text: STAGES, specs: parseStages(STAGES) }, bake: rollout.bakeMs, maxFailures: parseMaxFailures('0'), stageTimeout: 10 * 60_000, autoRollback: false } }
  return {
    ...base,
    // Room for four bakes and a slow last stage; a run ends earlier once nothing is left to decide.
    duration: RELEASE_2_AT + 4 * (rollout?.bakeMs ?? 0) + 120_000,
    expect: [],
    timeline: [
      release(1000, 'release-1', 1, other),
      release(RELEASE_2_AT, 'release-2', 2, { ...staged, ...(change === 'bad' ? { unhealthyOn: [{ kind: 'all' }] } : {}) })
    ]
  }
}

function allHealthyMs (record: RunRecord, at: number, name: string, version: number): number | undefined {
  const first = new Map<number, number>()
  for (const a of record.applies) if (a.name === name && a.version === version && a.outcome !== 'unhealthy' && a.failed === 0 && !first.has(a.node)) first.set(a.node, a.at)
  if (first.size < record.nodes.length) return undefined
  return Math.max(...first.values()) - at
}

function modelFigure (base: Scenario, nodes: number, seed: number, change: 'bad' | 'good', bakeMs: number | undefined): RolloutFigure {
  const s = scenarioFor(base, change, bakeMs === undefined ? undefined : { bakeMs })
  const run = simulate(s, { nodes, seed, ignoreChecks: true })
  const p = run.record.publishes.find((x) => x.id === 'release-2')
  if (p === undefined) throw new Error('release 2 was not published')
  const health = healthResult(run.record, p)
  const rollout = rolloutResult(run.record, p)
  const reach = health?.blastRadius ?? new Set(run.record.applies.filter((a) => a.name === p.name && a.version === p.version).map((a) => a.node)).size
  const healthy = allHealthyMs(run.record, p.at, p.name, p.version)
  return {
    nodes,
    change,
    plan: bakeMs === undefined ? 'plain publish' : `--rollout ${STAGES} --bake ${bakeMs / 1000}s`,
    blastRadius: reach,
    ...(healthy !== undefined ? { allHealthyMs: healthy } : {}),
    ...(rollout !== undefined ? { state: rollout.state, bakeSumMs: rollout.stages.length * rollout.bakeMs } : {}),
    ...(rollout?.doneMs !== undefined ? { doneMs: rollout.doneMs } : {}),
    wallMs: run.stats.wallMs
  }
}

function batchFigure (base: Scenario, nodes: number, seed: number, change: 'bad' | 'good'): RolloutFigure {
  const net = { latency: base.network.latency, loss: base.network.loss, rto: base.network.rto, uplinkBytesPerS: DEFAULT_UPLINK_BYTES_PER_S }
  const r = batchPush(nodes, 4096, net, BATCH, () => change === 'bad', seed)
  return {
    nodes,
    change,
    plan: `batched push, ${BATCH.batchPercent}% per batch, failhard`,
    blastRadius: r.blastRadius,
    ...(r.times.t100 !== undefined ? { allHealthyMs: r.times.t100 } : {}),
    state: r.halted ? 'halted' : 'done',
    wallMs: r.wallMs
  }
}

function args (a: string[]): { nodes: number[], bad: number[], out?: string, seed: number } {
  const get = (flag: string): string | undefined => {
    const i = a.indexOf(flag)
    return i >= 0 ? a[i + 1] : undefined
  }
  const list = (s: string | undefined, d: number[]): number[] => s === undefined ? d : s.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 1)
  const out = get('--out')
  return { nodes: list(get('--nodes'), [10_000, 100_000]), bad: list(get('--bad'), [10_000]), ...(out !== undefined ? { out } : {}), seed: Number(get('--seed') ?? 1) }
}

const fmt = (ms: number | undefined): string => ms === undefined ? 'never' : ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 1000).toFixed(1)} s`

/** The figures, as `npm run sim:rollout` runs them (argv: the command's arguments). */
export async function runRolloutBench (argv: string[]): Promise<RolloutFigure[]> {
  const opts = args(argv)
  const base = await loadScenario(join(process.cwd(), 'simulations', 'scale-internet.yaml'))
  const figures: RolloutFigure[] = []
  const say = (f: RolloutFigure): void => {
    figures.push(f)
    process.stderr.write(`N=${f.nodes} ${f.change} ${f.plan}: blast radius ${f.blastRadius}, all healthy ${fmt(f.allHealthyMs)}${f.state !== undefined ? `, ${f.state}` : ''} (${(f.wallMs / 1000).toFixed(1)} s wall)\n`)
  }
  for (const n of opts.bad) {
    say(modelFigure(base, n, opts.seed, 'bad', undefined))
    say(modelFigure(base, n, opts.seed, 'bad', 0))
    say(batchFigure(base, n, opts.seed, 'bad'))
  }
  for (const n of opts.nodes) {
    say(modelFigure(base, n, opts.seed, 'good', undefined))
    say(modelFigure(base, n, opts.seed, 'good', 0))
    say(modelFigure(base, n, opts.seed, 'good', 60_000))
    say(batchFigure(base, n, opts.seed, 'good'))
  }
  const out = opts.out ?? join('out', `rollout-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}`)
  await mkdir(out, { recursive: true })
  await writeFile(join(out, 'rollout.json'), JSON.stringify({ seed: opts.seed, network: base.network, figures }, null, 2) + '\n')
  process.stdout.write(`${table(figures)}\nwrote ${join(out, 'rollout.json')}\n`)
  return figures
}

/** The markdown table docs/scale.md quotes. */
export function table (figures: RolloutFigure[]): string {
  const rows = figures.map((f) => `| ${f.nodes.toLocaleString('en')} | ${f.change} | ${f.plan} | ${f.blastRadius.toLocaleString('en')} | ${fmt(f.allHealthyMs)}${f.state === 'halted' ? ' (halted)' : ''} | ${f.doneMs !== undefined ? fmt(f.doneMs) : '—'} |`)
  return ['| N | change | plan | blast radius | time to 100% healthy | rollout done |', '|---|---|---|---|---|---|', ...rows].join('\n')
}
