// `npm run bench:rollout`: staged rollouts on real agents (the live simulation engine: agent
// processes on 127.0.0.1 TCP), N = 100 by default (`-- --nodes N`). In one run, from one node:
// a plain publish, a good change through `--rollout 1,5%,25%,100% --bake 0`, then a bad change
// (its health check fails everywhere) staged with --auto-rollback, then the same bad change
// published plainly. Prints the time to 100% healthy of the staged good change against the plain
// publish's time to 100% applied, and each bad change's blast radius. Figures, not assertions.
import '../shim.js'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadScenario, runScenario } from '../sim/index.js'
import type { PublishResult } from '../sim/result.js'

const MOTD = fileURLToPath(new URL('../../simulations/policies/motd.yaml', import.meta.url))

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined }
const nodes = Number(flag('--nodes') ?? 100)
if (!Number.isInteger(nodes) || nodes < 4) throw new Error(`--nodes expects a whole number of at least 4: got "${flag('--nodes')}"`)
/** `--only bad`: just the bad change (staged, then plain), for a host too loaded to take four stages in good time. */
const only = flag('--only')
if (only !== undefined && only !== 'good' && only !== 'bad') throw new Error(`--only expects good or bad: got "${only}"`)
const good = only !== 'bad'
const bad = only !== 'good'

const scenario = `
name: rollout-bench
engine: live
nodes: { count: ${nodes}, tags: [{ role: web }, { role: app }] }
topology: { kind: random, peers: 3 }
network: { latency: { dist: uniform, min: 2ms, max: 20ms } }
agent: { beaconInterval: 10s }
policies: { motd: ${JSON.stringify(MOTD)} }
timeline:
  - { at: 500ms, do: publish, policy: motd, from: node-0, id: plain }
${good ? '  - { at: 10s, do: publish, policy: motd, from: node-0, vars: { release: 2 }, id: staged, rollout: { stages: "1,5%,25%,100%", bake: 0s, stageTimeout: 5m } }' : ''}
${bad ? `  - { at: ${good ? 60 : 10}s, do: publish, policy: motd, from: node-0, vars: { release: 3 }, id: bad-staged, unhealthyOn: all, rollout: { stages: "1,5%,25%,100%", bake: 0s, stageTimeout: 5m, autoRollback: true } }
  - { at: ${good ? 90 : 100}s, do: publish, policy: motd, from: node-0, vars: { release: 4 }, id: bad-plain, unhealthyOn: all }` : ''}
expect:
${good ? '  - { check: rollout, publish: staged, state: done, within: 50s }' : ''}
${bad ? `  - { check: rollout, publish: bad-staged, state: halted, within: ${good ? 30 : 90}s }
  - { check: blast-radius, publish: bad-staged, max: 1 }
  - { check: delivered, publish: bad-plain, within: 60s }` : ''}
`

// The agents share this machine's one disk, so their fsyncs queue behind each other; GRAPEVINE_BENCH_DIR=/dev/shm
// takes the disk out of the measurement (each real node has its own disk), as bench:mesh does.
const dir = await mkdtemp(join(process.env.GRAPEVINE_BENCH_DIR ?? tmpdir(), 'grapevine-bench-rollout-'))
try {
  const file = join(dir, 'rollout-bench.yaml')
  await writeFile(file, scenario)
  const s = await loadScenario(file)
  console.log(`staged rollouts, live engine, ${nodes} agents (this machine: shared, noisy; figures, not a pass mark)`)
  const { result, record } = await runScenario(s, { out: join(dir, 'out'), onProgress: (p) => { if (p.message !== undefined && !/% of/.test(p.message)) console.log(`  ${p.message}`) } })
  const by = (id: string): PublishResult | undefined => result.publishes.find((p) => p.id === id)
  const plain = by('plain')
  const staged = by('staged')
  const badStaged = by('bad-staged')
  const badPlain = by('bad-plain')
  const ms = (v: number | undefined): string => v === undefined ? 'never' : `${Math.round(v)} ms`
  const plainT100 = plain?.times.t100
  const stagedHealthy = staged?.health?.allHealthyMs
  console.log()
  if (good) {
    console.log(`good change, N = ${nodes}:`)
    console.log(`  plain publish:                            100% applied in ${ms(plainT100)}`)
    console.log(`  --rollout 1,5%,25%,100% --bake 0:         100% healthy in ${ms(stagedHealthy)}; rollout done in ${ms(staged?.rollout?.doneMs)}`)
    if (stagedHealthy !== undefined && plainT100 !== undefined && plainT100 > 0) console.log(`  ratio staged / plain:                     ${(stagedHealthy / plainT100).toFixed(1)}×`)
    for (const st of staged?.rollout?.stages ?? []) console.log(`    stage ${st.index + 1} (${st.text}): ${st.members} nodes, ${st.startedAt !== undefined && st.endedAt !== undefined ? `${Math.round(st.endedAt - st.startedAt)} ms` : '—'}`)
  }
  if (bad) {
    console.log(`bad change (its check fails on every node), N = ${nodes}:`)
    console.log(`  staged, --auto-rollback: blast radius ${badStaged?.health?.blastRadius ?? '?'} of ${nodes} (${badStaged?.rollout?.state ?? 'not started'}${badStaged?.rollout?.reason !== undefined ? `: ${badStaged.rollout.reason}` : ''})`)
    console.log(`  plain publish:           blast radius ${badPlain?.health?.blastRadius ?? '?'} of ${nodes}`)
  }
  for (const c of result.checks) console.log(`  check ${c.status}: ${c.detail}`)
  for (const e of record.errors) console.log(`  error: ${e}`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
