import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Register } from '../register.js'
import type { HostModel, RunOutput, SimResult } from '../../sim/index.js'
import { CliError, EXIT, colour, print, printJson } from '../output.js'
import { EXIT_INTERRUPTED as INTERRUPTED_EXIT } from './mesh.js'

function positiveInt (flag: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`${flag} must be a positive integer: got "${v}"`, EXIT.USAGE)
    return Number(v)
  }
}

function nonNegativeInt (flag: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new CliError(`${flag} must be a non-negative integer: got "${v}"`, EXIT.USAGE)
    return Number(v)
  }
}

function positiveNumber (flag: string) {
  return (v: string): number => {
    const n = Number(v)
    if (!(n > 0) || !Number.isFinite(n)) throw new CliError(`${flag} must be a positive number: got "${v}"`, EXIT.USAGE)
    return n
  }
}

type Engine = 'live' | 'model' | 'netns'

function engineName (v: string): Engine {
  if (v !== 'live' && v !== 'model' && v !== 'netns') throw new CliError(`--engine must be "live", "model" or "netns": got "${v}"`, EXIT.USAGE)
  return v
}

/** `dedicated`, `shared` (this machine's cores) or `shared:N`. */
function hostModel (v: string): { kind: 'dedicated' } | { kind: 'shared', cores?: number } {
  if (v === 'dedicated') return { kind: 'dedicated' }
  const m = /^shared(?::(\d+))?$/.exec(v)
  if (m === null || (m[1] !== undefined && Number(m[1]) < 1)) throw new CliError(`--host must be "dedicated", "shared" or "shared:CORES" (like "shared:2"): got "${v}"`, EXIT.USAGE)
  return m[1] !== undefined ? { kind: 'shared', cores: Number(m[1]) } : { kind: 'shared' }
}

/** A path, or a shipped scenario's name: `smoke` is simulations/smoke.yaml (here, or in the package). */
export function resolveScenarioPath (arg: string): string {
  if (existsSync(arg)) return arg
  const shipped = fileURLToPath(new URL('../../../simulations/', import.meta.url))
  for (const candidate of [join('simulations', `${arg}.yaml`), join(shipped, `${arg}.yaml`), join(shipped, arg)]) {
    if (existsSync(candidate)) return candidate
  }
  throw new CliError(`no scenario file "${arg}" (and no simulations/${arg}.yaml)`, EXIT.UNAVAILABLE)
}

function stamp (): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')
}

const ms = (v: number | undefined): string => v === undefined ? '—' : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(2)} s`

interface SimOptions {
  out?: string
  seed?: number
  nodes?: number
  engine?: Engine
  workers?: number
  settle?: string
  announceThreshold?: number
  host?: ReturnType<typeof hostModel>
  deadlineScale: number
  json?: boolean
}

export const registerSim: Register = (program, done) => {
  program.command('sim')
    .description('Run a simulation scenario, with real agents on this machine (engine: live) or in the model engine (engine: model); writes results.json and an HTML report.')
    .argument('<scenario>', 'scenario file, or the name of one in simulations/ (smoke, churn, partition-heal, lossy, concurrent-admins, late-joiners, scale-internet, scale-churn, scale-calibration)')
    .option('--out <dir>', 'output directory (default ./out/sim-<name>-<time>)')
    .option('--engine <engine>', 'run the scenario in this engine, whatever its file says: live, model, or netns (real agents, one network namespace per simulated host, kernel delay and loss; needs root)', engineName)
    .option('--seed <n>', 'seed for topology, selections, agents\' jitter and the link model (default: the scenario\'s, else 1)', nonNegativeInt('--seed'))
    .option('--nodes <n>', 'override the scenario\'s node count', positiveInt('--nodes'))
    .option('--workers <n>', 'live engine: worker processes hosting the agents (default 2, or fewer cores)', positiveInt('--workers'))
    .option('--settle <duration>', 'live and netns engines: before the clock starts, wait at most this long for the agents\' first peer-maintenance round to pass ("0" starts at once; default auto)')
    .option('--announce-threshold <bytes>', 'override the agents\' announce threshold (envelopes over it are announced and fetched; 0 gossips them whole)', nonNegativeInt('--announce-threshold'))
    .option('--host <model>', 'model engine: dedicated (one agent per host) or shared[:CORES] (every agent on one machine, as the live engine runs them; default this machine\'s cores). Default: shared for a file written for the live engine, else dedicated', hostModel)
    .option('--deadline-scale <f>', 'multiply every check deadline, for slow or loaded machines', positiveNumber('--deadline-scale'), 1)
    .option('--json', 'print the result as JSON on stdout (progress goes to stderr)')
    .action(async (arg: string, opts: SimOptions) => {
      const sim = await import('../../sim/index.js')
      const file = resolveScenarioPath(arg)
      let scenario
      try {
        scenario = await sim.loadScenario(file)
      } catch (err) {
        if (err instanceof sim.InvalidScenarioError) {
          process.stderr.write(`${err.problems.length} problem${err.problems.length === 1 ? '' : 's'} in ${err.file}:\n${err.message}\n`)
          done(EXIT.INVALID)
          return
        }
        throw err
      }
      const engine = opts.engine ?? scenario.engine
      // Options for the other engine are refused rather than ignored: a run that silently
      // differs from the command line is worse than a usage error.
      const only = (flag: string, given: boolean, owner: Engine, also?: Engine): void => {
        if (!given || engine === owner || engine === also) return
        const why = opts.engine !== undefined ? `--engine ${engine}` : `${file} says engine: ${engine}`
        throw new CliError(`${flag} is for the ${owner}${also !== undefined ? ` and ${also}` : ''} engine${also !== undefined ? 's' : ''}, and this run uses the ${engine} engine (${why}); leave ${flag} out${opts.engine === undefined ? ` or add --engine ${owner}` : ''}`, EXIT.USAGE)
      }
      only('--workers', opts.workers !== undefined, 'live')
      only('--settle', opts.settle !== undefined, 'live', 'netns')
      only('--host', opts.host !== undefined, 'model')
      if (engine === 'netns') {
        // Said before anything is made: namespaces, veths and iptables need root.
        const netns = await import('../../sim/netns/index.js')
        try {
          netns.requireRoot()
        } catch (err) {
          throw new CliError((err as Error).message, EXIT.NOPERM)
        }
      }
      const count = opts.nodes ?? scenario.nodes.count
      if (engine !== 'model' && count > sim.MAX_NODES) {
        const what = `${count} live agents do not fit one machine (at most ${sim.MAX_NODES}, docs/capacity.md); add --engine model to run it in the model engine`
        throw opts.nodes !== undefined ? new CliError(`--nodes ${count}: ${what}`, EXIT.USAGE) : new CliError(`${file}: nodes.count: ${what}`, EXIT.INVALID)
      }
      if (engine === 'model' && count > sim.MAX_MODEL_NODES) throw new CliError(`--nodes ${count}: the model engine runs at most ${sim.MAX_MODEL_NODES} nodes`, EXIT.USAGE)
      const out = resolve(opts.out ?? join('out', `sim-${scenario.name}-${stamp()}`))
      const progress = opts.json === true ? process.stderr : process.stdout
      const printer = sim.progressPrinter(progress)
      let output: RunOutput
      let about: string
      const agent = opts.announceThreshold !== undefined ? { ...scenario.agent, announceThreshold: opts.announceThreshold } : scenario.agent
      if (engine === 'model') {
        // A file written for the live engine is being compared with live runs on this machine
        // (calibration), so it gets the shared-host model; a model file describes real hosts.
        const host: HostModel = opts.host?.kind === 'dedicated' || (opts.host === undefined && scenario.engine === 'model')
          ? { kind: 'dedicated' }
          : { kind: 'shared', cores: opts.host?.cores ?? availableParallelism() }
        const hostText = `${sim.describeHost(host)}${opts.host === undefined ? ` (the default for a file written for the ${scenario.engine} engine)` : ''}`
        progress.write(`model engine: ${count} nodes, ${hostText}\n`)
        let run
        try {
          run = await sim.runModelScenario({ ...scenario, agent }, { out, seed: opts.seed, nodes: opts.nodes, deadlineScale: opts.deadlineScale, host, onProgress: printer.update })
        } finally {
          printer.end()
        }
        output = run
        about = `model engine, ${hostText}; simulated ${ms(run.record.end)} in ${ms(run.stats.wallMs)} (${run.stats.events.toLocaleString('en-US')} events)`
      } else {
        const settleMs = opts.settle === undefined || opts.settle === 'auto' ? 'auto' : sim.parseDuration(opts.settle)
        if (settleMs === undefined) throw new CliError(`--settle must be "auto" or a duration like "10s" or "0": got "${opts.settle ?? ''}"`, EXIT.USAGE)
        const abort = new AbortController()
        const onSignal = (): void => { abort.abort() }
        process.once('SIGINT', onSignal)
        process.once('SIGTERM', onSignal)
        try {
          output = await sim.runScenario({ ...scenario, engine, agent }, {
            out,
            seed: opts.seed,
            nodes: opts.nodes,
            workers: opts.workers,
            deadlineScale: opts.deadlineScale,
            settleMs,
            onProgress: printer.update,
            signal: abort.signal
          })
        } catch (err) {
          // The netns engine's prerequisites (root, ip, iptables, the delayer's compiler and headers, a
          // kernel that lets this process make namespaces): one line, what failed or what to install.
          const name = (err as Error).name
          if (name === 'NetnsUnavailableError' || name === 'DelayerBuildError' || name === 'NetworkCommandError') throw new CliError((err as Error).message, name === 'NetnsUnavailableError' && process.getuid?.() !== 0 ? EXIT.NOPERM : EXIT.UNAVAILABLE)
          throw err
        } finally {
          printer.end()
          process.off('SIGINT', onSignal)
          process.off('SIGTERM', onSignal)
        }
        const e = output.result.engine
        const load = e.load !== undefined ? `, load ${e.load[0].toFixed(1)} → ${e.load[1].toFixed(1)}` : ''
        about = e.network !== undefined
          ? `netns engine, ${e.network.hosts} host namespaces × ${e.network.perHost} agent${e.network.perHost === 1 ? '' : 's'} on ${e.cpus ?? '?'} CPUs, delay by ${e.network.delay}; network set up in ${ms(e.network.setupMs)}, torn down in ${ms(e.network.teardownMs)}${load}`
          : `live engine, ${e.workers ?? '?'} worker process${e.workers === 1 ? '' : 'es'} on ${e.cpus ?? '?'} CPUs${load}`
      }
      const r = output.result
      if (opts.json === true) printJson({ ...r, files: output.files })
      else printSummary(r, output.files.report, about)
      // An interrupted run decided nothing: not a pass (0), nor a failed check (1).
      done(r.interrupted === true ? INTERRUPTED_EXIT : r.passed ? EXIT.OK : EXIT.INVALID)
    })
}

function printSummary (r: SimResult, report: string, about: string): void {
  print()
  print(`${colour.bold(r.scenario.name)}: ${r.scenario.nodes} nodes, ${r.scenario.topology}; ${r.scenario.network}`)
  print(`  ${about}; seed ${r.scenario.seed}`)
  for (const p of r.publishes.filter((x) => x.id !== 'trust')) {
    const via = Object.entries(p.via).map(([k, v]) => `${v} ${k}`).join(', ')
    print(`  ${p.id} (${p.name} v${p.version}): ${p.applied}/${p.targeted} applied  T50 ${ms(p.times.t50)}  T90 ${ms(p.times.t90)}  T99 ${ms(p.times.t99)}  T100 ${ms(p.times.t100)}${p.held?.t100 !== undefined ? ` (all held in ${ms(p.held.t100)})` : ''}  via ${via || '—'}` +
      `${p.traffic !== undefined ? `  dup/node ${p.traffic.duplicatesPerNode.toFixed(1)}${p.traffic.publisherBytes !== undefined ? `  publisher sent ${(p.traffic.publisherBytes / 1024).toFixed(1)} KiB` : ''}` : ''}` +
      `${p.traffic?.receivedPerNode?.meanX !== undefined ? `  received/node ${p.traffic.receivedPerNode.meanX.toFixed(2)}× (max ${(p.traffic.receivedPerNode.maxX ?? 0).toFixed(2)}×)` : ''}` +
      `${p.catchUp.length > 0 ? `  catch-up ${p.catchUp.length} (slowest ${ms(Math.max(...p.catchUp.map((c) => c.ms)))})` : ''}${p.missing.length > 0 ? colour.red(`  missing ${p.missing.length}`) : ''}`)
  }
  for (const c of r.convergence) print(`  one version again ${c.ms !== undefined ? ms(c.ms) : colour.red('never')} after ${c.after}`)
  for (const c of r.checks) print(`  ${c.status === 'pass' ? colour.green('✓') : colour.red('✗')} ${c.text}: ${c.detail}`)
  if (r.failures.length > 0) print(colour.red(`  ${r.failures.length} failure(s); first: ${r.failures[0]}`))
  print()
  const verdict = r.interrupted === true ? colour.yellow('INTERRUPTED') : r.passed ? colour.green('PASSED') : colour.red('FAILED')
  print(`${verdict} (${r.engine.kind} engine)  report: ${relative(process.cwd(), report) || report}  (results.json beside it)`)
}
