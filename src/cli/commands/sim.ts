import { existsSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Register } from '../main.js'
import { CliError, EXIT, colour, print, printJson } from '../output.js'

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

export const registerSim: Register = (program, done) => {
  program.command('sim')
    .description('Run a simulation scenario with real agents on this machine; writes results.json and an HTML report.')
    .argument('<scenario>', 'scenario file, or the name of one in simulations/ (smoke, churn, partition-heal, lossy, concurrent-admins, late-joiners)')
    .option('--out <dir>', 'output directory (default ./out/sim-<name>-<time>)')
    .option('--seed <n>', 'seed for topology, selections, agents\' jitter and the link model (default: the scenario\'s, else 1)', nonNegativeInt('--seed'))
    .option('--nodes <n>', 'override the scenario\'s node count', positiveInt('--nodes'))
    .option('--workers <n>', 'worker processes hosting the agents (default 2, or fewer cores)', positiveInt('--workers'))
    .option('--settle <duration>', 'before the clock starts, wait at most this long for the agents\' first peer-maintenance round to pass ("0" starts at once)', 'auto')
    .option('--deadline-scale <f>', 'multiply every check deadline, for slow or loaded machines', positiveNumber('--deadline-scale'), 1)
    .option('--json', 'print the result as JSON on stdout (progress goes to stderr)')
    .action(async (arg: string, opts: { out?: string, seed?: number, nodes?: number, workers?: number, settle: string, deadlineScale: number, json?: boolean }) => {
      const { loadScenario, runScenario, progressPrinter, parseDuration, InvalidScenarioError } = await import('../../sim/index.js')
      const settleMs = opts.settle === 'auto' ? 'auto' : parseDuration(opts.settle)
      if (settleMs === undefined) throw new CliError(`--settle must be "auto" or a duration like "10s" or "0": got "${opts.settle}"`, EXIT.USAGE)
      const file = resolveScenarioPath(arg)
      let scenario
      try {
        scenario = await loadScenario(file)
      } catch (err) {
        if (err instanceof InvalidScenarioError) {
          process.stderr.write(`${err.problems.length} problem${err.problems.length === 1 ? '' : 's'} in ${err.file}:\n${err.message}\n`)
          done(EXIT.INVALID)
          return
        }
        throw err
      }
      if (scenario.engine !== 'live') throw new CliError(`${file} is for the ${scenario.engine} engine; grapevine sim runs live agents (set engine: live)`, EXIT.INVALID)
      const out = resolve(opts.out ?? join('out', `sim-${scenario.name}-${stamp()}`))
      const printer = progressPrinter(opts.json === true ? process.stderr : process.stdout)
      const abort = new AbortController()
      const onSignal = (): void => { abort.abort() }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      let output
      try {
        output = await runScenario(scenario, {
          out,
          seed: opts.seed,
          nodes: opts.nodes,
          workers: opts.workers,
          deadlineScale: opts.deadlineScale,
          settleMs,
          onProgress: printer.update,
          signal: abort.signal
        })
      } finally {
        printer.end()
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
      const r = output.result
      if (opts.json === true) {
        printJson({ ...r, files: output.files })
      } else {
        print()
        print(`${colour.bold(r.scenario.name)}: ${r.scenario.nodes} nodes, ${r.scenario.topology}; ${r.scenario.network}`)
        for (const p of r.publishes.filter((x) => x.id !== 'trust')) {
          const via = Object.entries(p.via).map(([k, v]) => `${v} ${k}`).join(', ')
          print(`  ${p.id} (${p.name} v${p.version}): ${p.applied}/${p.targeted} applied  T50 ${ms(p.times.t50)}  T90 ${ms(p.times.t90)}  T99 ${ms(p.times.t99)}  T100 ${ms(p.times.t100)}${p.held?.t100 !== undefined ? ` (all held in ${ms(p.held.t100)})` : ''}  via ${via || '—'}` +
            `${p.traffic !== undefined ? `  dup/node ${p.traffic.duplicatesPerNode.toFixed(1)}${p.traffic.publisherBytes !== undefined ? `  publisher sent ${(p.traffic.publisherBytes / 1024).toFixed(1)} KiB` : ''}` : ''}` +
            `${p.catchUp.length > 0 ? `  catch-up ${p.catchUp.length} (slowest ${ms(Math.max(...p.catchUp.map((c) => c.ms)))})` : ''}${p.missing.length > 0 ? colour.red(`  missing ${p.missing.length}`) : ''}`)
        }
        for (const c of r.convergence) print(`  one version again ${c.ms !== undefined ? ms(c.ms) : colour.red('never')} after ${c.after}`)
        for (const c of r.checks) print(`  ${c.status === 'pass' ? colour.green('✓') : colour.red('✗')} ${c.text}: ${c.detail}`)
        if (r.failures.length > 0) print(colour.red(`  ${r.failures.length} failure(s); first: ${r.failures[0]}`))
        print()
        print(`${r.passed ? colour.green('PASSED') : colour.red('FAILED')}  report: ${relative(process.cwd(), output.files.report) || output.files.report}  (results.json beside it)`)
      }
      done(r.passed ? EXIT.OK : EXIT.INVALID)
    })
}
