/**
 * `npm run bench:resources`: a no-op apply of 20 packages, 5 users (with their groups) and 5
 * services on this machine, whole process, beside `puppet apply` of the same state; and how
 * long gathering facts takes, beside `facter`.
 *
 * It changes the machine, so it runs as root only: the first apply creates the bench's users
 * and groups (gvbench1-5) and enables the 5 units it writes to /etc/systemd/system; the end of
 * the bench (or Ctrl-C) removes all of them. It refuses to start where any of those names or ids
 * is taken; `--cleanup` removes what an interrupted run left and exits. The packages are
 * Debian's `required` ones with `ensure: present`: nothing is installed or upgraded.
 *
 * Each figure is whole-process wall time, spawn to exit, the tools taking turns run by run (on a
 * shared machine, load that comes and goes weighs on both); the ratio is the median of the
 * run-by-run ratios. Every timed apply must be a no-op (exit 0, Puppet with
 * --detailed-exitcodes): the bench says so when one is not.
 *
 * Without `puppet` (or `facter`) the bench says so in one line and prints Grapevine's figures.
 * Puppet's `service` type is tried first; where it cannot manage a unit (its systemd provider
 * requires systemd as PID 1) the bench says why, and the manifest enables the units with an
 * exec guarded by `systemctl is-enabled` instead.
 *
 * Flags: --runs N (5), --json, --cleanup.
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import {
  BENCH_ACCOUNTS, BENCH_PACKAGES, BENCH_UNITS, UNIT_DIR, grapevinePolicy, puppetManifest, unitFileText,
  type Parts, type PuppetServices
} from './resources-policy.js'
import { median } from '../sim/metrics.js'

const CLI = fileURLToPath(new URL('../../bin/grapevine', import.meta.url))
const run = promisify(execFile)

const argAt = (name: string): string | undefined => { const i = process.argv.indexOf(name); return i < 0 ? undefined : process.argv[i + 1] }
const RUNS = Number(argAt('--runs') ?? 5)
const JSON_OUT = process.argv.includes('--json')
/** Bytes of a child's output kept: enough for Puppet's error lines and Grapevine's rusage line. */
const KEEP_OUTPUT = 64 * 1024

/**
 * Ctrl-C or SIGTERM while the applies run: the running tool is killed and no other starts, so
 * that the clean-up that follows is not undone by an apply still creating the bench's accounts.
 */
const interrupted = new AbortController()

interface Sample { ms: number, code: number | null, out: string, phases?: Record<string, number>, snapshot?: boolean }

/** One whole process, spawn to exit; its output is kept (bounded) to check it and read its own timings. */
async function timed (cmd: string, args: string[], env: Record<string, string> = {}): Promise<Sample> {
  interrupted.signal.throwIfAborted()
  const start = performance.now()
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, signal: interrupted.signal })
  child.once('error', () => {}) // the abort: 'close' follows, then the throw below
  let out = ''
  const keep = (b: Buffer): void => { out = (out + b.toString()).slice(-KEEP_OUTPUT) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  interrupted.signal.throwIfAborted()
  const ms = performance.now() - start
  return { ms, code, out, phases: grapevinePhases(out) ?? puppetPhases(out), ...(out.includes('"snapshot":true') ? { snapshot: true } : {}) }
}

/** GRAPEVINE_RUSAGE=1: the CLI's last stderr line is a JSON object with its phases. */
function grapevinePhases (out: string): Record<string, number> | undefined {
  const last = out.trim().split('\n').at(-1) ?? ''
  if (!last.startsWith('{')) return undefined
  try {
    const r = JSON.parse(last) as Record<string, unknown>
    return Object.fromEntries(['startupMs', 'loadMs', 'applyMs'].filter((k) => typeof r[k] === 'number').map((k) => [k, r[k] as number]))
  } catch {
    return undefined
  }
}

/** Puppet's own notices: "Compiled catalog for … in 0.38 seconds", "Applied catalog in 0.77 seconds". */
function puppetPhases (out: string): Record<string, number> | undefined {
  const applied = /Applied catalog in ([0-9.]+) seconds/.exec(out)
  if (applied === null) return undefined
  const compiled = /Compiled catalog for .* in ([0-9.]+) seconds/.exec(out)
  return { applyMs: Number(applied[1]) * 1000, ...(compiled !== null ? { compileMs: Number(compiled[1]) * 1000 } : {}) }
}


interface Figure { medianMs: number, minMs: number, maxMs: number, codes: number[], phases?: Record<string, number>, fromSnapshot: number }

function figure (samples: Sample[]): Figure {
  const ms = samples.map((s) => s.ms)
  const keys = [...new Set(samples.flatMap((s) => Object.keys(s.phases ?? {})))]
  const phases = Object.fromEntries(keys.map((k) => [k, Math.round(median(samples.map((s) => s.phases?.[k] ?? 0)))]))
  return { medianMs: Math.round(median(ms)), minMs: Math.round(Math.min(...ms)), maxMs: Math.round(Math.max(...ms)), codes: [...new Set(samples.map((s) => s.code ?? -1))], fromSnapshot: samples.filter((s) => s.snapshot === true).length, ...(keys.length > 0 ? { phases } : {}) }
}

/** The median of the run-by-run ratios a/b: holds when the machine's speed drifts between pairs. */
const pairRatio = (a: Sample[], b: Sample[]): number => median(a.map((s, i) => s.ms / (b[i] as Sample).ms))

async function commandPath (cmd: string): Promise<string | undefined> {
  try {
    return (await run('sh', ['-c', 'command -v "$1"', 'sh', cmd])).stdout.trim() || undefined
  } catch {
    return undefined
  }
}

async function versionOf (cmd: string): Promise<string> {
  try {
    return (await run(cmd, ['--version'])).stdout.trim().split('\n')[0] ?? '?'
  } catch (err) {
    return `(${cmd} --version failed: ${stripAnsi((err as { stderr?: string }).stderr ?? String(err)).trim().split('\n')[0] ?? ''})`
  }
}

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '') // eslint-disable-line no-control-regex

/** Puppet's error lines, without Facter's complaints about /proc/1/environ (unreadable in containers). */
const puppetErrors = (out: string): string[] => stripAnsi(out).split('\n').filter((l) => l.startsWith('Error:') && !l.includes('Facter:'))

// ---- facts ----

interface FactFigures { inProcessFirstMs: number, inProcessAgainMs: number, grapevine: Figure, facter?: Figure, ratio?: number }

async function benchFacts (facter: string | undefined): Promise<FactFigures> {
  // Loaded here, not at the top, so the first gathering is this process's first.
  const { FactGatherer } = await import('../facts/index.js')
  const gatherer = new FactGatherer()
  const first = (await gatherer.refresh()).ms
  const again: number[] = []
  for (let i = 0; i < 20; i++) again.push((await gatherer.refresh()).ms)
  const gv: Sample[] = []
  const ft: Sample[] = []
  await timed(CLI, ['facts', '--json'])
  if (facter !== undefined) await timed(facter, ['--json'])
  for (let i = 0; i < RUNS; i++) {
    gv.push(await timed(CLI, ['facts', '--json']))
    if (facter !== undefined) ft.push(await timed(facter, ['--json']))
  }
  return {
    inProcessFirstMs: +first.toFixed(2),
    inProcessAgainMs: +median(again).toFixed(2),
    grapevine: figure(gv),
    ...(facter !== undefined ? { facter: figure(ft), ratio: +pairRatio(gv, ft).toFixed(3) } : {})
  }
}

// ---- the machine's state ----

async function exists (db: 'passwd' | 'group', key: string | number): Promise<boolean> {
  try {
    await run('getent', [db, String(key)])
    return true
  } catch {
    return false
  }
}

/** What the bench would create and is already there: it never takes over (or removes) what it did not make. */
async function taken (): Promise<string[]> {
  const found: string[] = []
  for (const a of BENCH_ACCOUNTS) {
    for (const db of ['passwd', 'group'] as const) {
      if (await exists(db, a.name)) found.push(`${db === 'passwd' ? 'user' : 'group'} ${a.name}`)
      else if (await exists(db, a.id)) found.push(`${db === 'passwd' ? 'uid' : 'gid'} ${a.id}`)
    }
  }
  for (const unit of BENCH_UNITS) if (existsSync(join(UNIT_DIR, unit))) found.push(join(UNIT_DIR, unit))
  return found
}

async function missingPackages (): Promise<string[]> {
  const { stdout } = await run('dpkg-query', ['-W', '-f', '${Package} ${db:Status-Status}\n', ...BENCH_PACKAGES]).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
  const installed = new Set(stdout.split('\n').filter((l) => l.endsWith(' installed')).map((l) => l.split(' ')[0]))
  return BENCH_PACKAGES.filter((p) => !installed.has(p))
}

/**
 * Removes the bench's units, users and groups, whichever exist: they carry the bench's own names.
 * Goes on past a failure, so one stuck account does not leave the rest; says what it could not remove.
 */
async function cleanup (): Promise<string[]> {
  const failed: string[] = []
  const attempt = async (what: string, step: () => Promise<unknown>): Promise<void> => {
    await step().catch((err: { stderr?: string, message?: string }) => { failed.push(`${what}: ${(err.stderr ?? err.message ?? '').trim()}`) })
  }
  for (const unit of BENCH_UNITS) {
    const file = join(UNIT_DIR, unit)
    if (!existsSync(file)) continue
    await attempt(`systemctl disable ${unit}`, async () => await run('systemctl', ['--root=/', 'disable', unit]))
    await attempt(`rm ${file}`, async () => { await unlink(file) })
  }
  for (const a of BENCH_ACCOUNTS) {
    if (await exists('passwd', a.name)) await attempt(`userdel ${a.name}`, async () => await run('userdel', [a.name]))
    // userdel removes the user's private group (USERGROUPS_ENAB); the group goes here where it did not.
    if (await exists('group', a.name)) await attempt(`groupdel ${a.name}`, async () => await run('groupdel', [a.name]))
  }
  for (const f of failed) process.stderr.write(`clean-up: could not ${f}\n`)
  return failed
}

// ---- applies ----

interface Workload { name: string, grapevine: string, puppet?: string }
interface ApplyFigures { name: string, grapevine: Figure, puppet?: Figure, ratio?: number }

async function writeWorkloads (work: string, puppet: PuppetServices | undefined): Promise<Workload[]> {
  const sets: Array<[string, string, Parts]> = [
    ['packages, users, groups (30)', 'accounts', { accounts: true, services: false }],
    ['all 35, with 5 services', 'all', { accounts: true, services: true }],
    ['5 services alone', 'services', { accounts: false, services: true }]
  ]
  const workloads: Workload[] = []
  for (const [name, file, parts] of sets) {
    const yaml = join(work, `${file}.yaml`)
    await writeFile(yaml, grapevinePolicy(parts))
    const pp = join(work, `${file}.pp`)
    if (puppet !== undefined) await writeFile(pp, puppetManifest(parts, puppet))
    workloads.push({ name, grapevine: yaml, ...(puppet !== undefined ? { puppet: pp } : {}) })
  }
  return workloads
}

async function benchApplies (work: string, puppetBin: string | undefined, notes: string[]): Promise<ApplyFigures[]> {
  const state = join(work, 'state')
  const vardir = join(work, 'puppet-var')
  const gvApply = async (file: string): Promise<Sample> => await timed(CLI, ['apply', file, '--state', state, '--name', 'bench'], { GRAPEVINE_RUSAGE: '1' })
  const ppApply = async (file: string): Promise<Sample> => await timed(puppetBin as string, ['apply', '--detailed-exitcodes', '--color=false', '--vardir', vardir, file])

  for (const unit of BENCH_UNITS) await writeFile(join(UNIT_DIR, unit), unitFileText(unit))
  // The first apply makes the state every timed run finds: users, groups, units enabled.
  const all = join(work, 'first.yaml')
  await writeFile(all, grapevinePolicy({ accounts: true, services: true }))
  const first = await gvApply(all)
  if (first.code !== 2) throw new Error(`the first grapevine apply exited ${String(first.code)}, expected 2 (changes):\n${first.out}`)

  let services: PuppetServices | undefined
  if (puppetBin !== undefined) {
    const probe = join(work, 'probe.pp')
    await writeFile(probe, puppetManifest({ accounts: false, services: true }, 'service'))
    const tried = await ppApply(probe)
    services = tried.code === 0 ? 'service' : 'exec'
    if (services === 'exec') {
      notes.push(`puppet's service type cannot manage the units here (exit ${String(tried.code)}: ${puppetErrors(tried.out)[0] ?? 'no error line'}); the Puppet manifests enable them with an exec each, unless => 'systemctl is-enabled --quiet UNIT'`)
    }
  }
  const workloads = await writeWorkloads(work, services)
  const samples = workloads.map(() => ({ gv: [] as Sample[], pp: [] as Sample[] }))
  for (let round = -1; round < RUNS; round++) { // round -1: one warm-up of each, not counted
    for (const [i, w] of workloads.entries()) {
      const pair = samples[i] as { gv: Sample[], pp: Sample[] }
      // Alternate which tool goes first, so neither always follows the other's cache misses.
      const order = round % 2 === 0 ? ['gv', 'pp'] as const : ['pp', 'gv'] as const
      for (const tool of order) {
        if (tool === 'pp' && w.puppet === undefined) continue
        const s = tool === 'gv' ? await gvApply(w.grapevine) : await ppApply(w.puppet as string)
        if (round >= 0) pair[tool].push(s)
      }
    }
  }
  return workloads.map((w, i) => {
    const { gv, pp } = samples[i] as { gv: Sample[], pp: Sample[] }
    for (const [tool, list] of [['grapevine', gv], ['puppet', pp]] as const) {
      const bad = list.filter((s) => s.code !== 0)
      if (bad.length > 0) notes.push(`NOT A NO-OP: ${tool} "${w.name}" exited ${bad.map((s) => String(s.code)).join(', ')} in ${bad.length} of ${list.length} runs:\n${stripAnsi(bad[0]?.out ?? '').slice(-2000)}`)
    }
    return { name: w.name, grapevine: figure(gv), ...(pp.length > 0 ? { puppet: figure(pp), ratio: +pairRatio(gv, pp).toFixed(3) } : {}) }
  })
}

// ---- output ----

const ms = (f: Figure): string => `${f.medianMs} ms [${f.minMs}-${f.maxMs}]`

function print (head: string[], facts: FactFigures, applies: ApplyFigures[] | undefined, notes: string[]): void {
  const out = [...head, '', 'fact gathering (median [min-max])']
  out.push(`  grapevine, in process: ${facts.inProcessFirstMs} ms the first time, ${facts.inProcessAgainMs} ms again`)
  out.push(`  grapevine facts --json, whole process: ${ms(facts.grapevine)}`)
  if (facts.facter !== undefined) out.push(`  facter --json, whole process:           ${ms(facts.facter)} (exit ${facts.facter.codes.join(',')}); grapevine/facter ${String(facts.ratio)}`)
  if (applies !== undefined) {
    out.push('', `no-op apply, whole process, median [min-max] of ${RUNS} runs each, taking turns`)
    for (const a of applies) {
      const p = a.grapevine.phases
      const inside = p !== undefined ? ` (start ${p.startupMs ?? '?'}, load ${p.loadMs ?? '?'}, apply ${p.applyMs ?? '?'}; from the startup snapshot ${a.grapevine.fromSnapshot} of ${RUNS})` : ''
      out.push(`  ${a.name}`, `    grapevine apply  ${ms(a.grapevine)}${inside}`)
      if (a.puppet !== undefined) {
        const c = a.puppet.phases
        out.push(`    puppet apply     ${ms(a.puppet)} (catalog applied in ${c?.applyMs ?? '?'}${c?.compileMs !== undefined ? `, compiled in ${c.compileMs}` : ''})`)
        out.push(`    grapevine/puppet ${String(a.ratio)}`)
      }
    }
  }
  if (notes.length > 0) out.push('', ...notes.map((n) => `note: ${n}`))
  process.stdout.write(out.join('\n') + '\n')
}

async function main (): Promise<number> {
  if (process.argv.includes('--cleanup')) {
    const failed = await cleanup()
    process.stdout.write(`removed the bench's units, users and groups where they were (${BENCH_ACCOUNTS.map((a) => a.name).join(', ')}, ${BENCH_UNITS.join(', ')})${failed.length > 0 ? `, but ${failed.length} step(s) failed` : ''}\n`)
    return failed.length > 0 ? 1 : 0
  }
  const puppetBin = await commandPath('puppet')
  const facterBin = await commandPath('facter')
  const notes: string[] = []
  const head = [
    `resources bench: ${BENCH_PACKAGES.length} packages (present), ${BENCH_ACCOUNTS.length} users and their groups, ${BENCH_UNITS.length} services (enable only); node ${process.version}, load ${loadavg()[0]?.toFixed(1) ?? '?'}`,
    puppetBin !== undefined ? `puppet ${await versionOf(puppetBin)}` : 'puppet: not installed (apt-get install puppet to compare); Grapevine\'s figures only',
    facterBin !== undefined ? `facter ${await versionOf(facterBin)}` : 'facter: not installed; Grapevine\'s fact figures only'
  ]
  const facts = await benchFacts(facterBin)

  let applies: ApplyFigures[] | undefined
  let cleanFailed = false
  const cannot = process.getuid?.() !== 0
    ? 'not root: the applies create users and enable units, so they are left out'
    : await missingPackages().then((m) => m.length > 0 ? `packages not installed here: ${m.join(', ')} (the no-op would install them)` : undefined)
  const there = cannot === undefined ? await taken() : []
  if (cannot !== undefined) notes.push(cannot)
  else if (there.length > 0) notes.push(`already on this machine: ${there.join(', ')}; the applies are left out (the bench removes only what it made: \`--cleanup\` removes the bench's own names left by an interrupted run)`)
  else {
    const work = await mkdtemp(join(tmpdir(), 'grapevine-bench-resources-'))
    const stop = (): void => { interrupted.abort() }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    try {
      applies = await benchApplies(work, puppetBin, notes)
    } catch (err) {
      if (!interrupted.signal.aborted) throw err
    } finally {
      cleanFailed = (await cleanup()).length > 0
      if (cleanFailed) notes.push('clean-up incomplete (above); `--cleanup` tries again')
      await rm(work, { recursive: true, force: true })
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
  }
  if (interrupted.signal.aborted) {
    process.stderr.write(cleanFailed ? 'interrupted; the clean-up is incomplete (above): --cleanup tries again\n' : 'interrupted: the bench\'s units, users and groups were removed\n')
    return 130
  }
  head.push(`load at the end ${loadavg()[0]?.toFixed(1) ?? '?'}`)
  if (JSON_OUT) process.stdout.write(JSON.stringify({ runs: RUNS, head, facts, applies, notes }, null, 2) + '\n')
  else print(head, facts, applies, notes)
  return notes.some((n) => n.startsWith('NOT A NO-OP')) ? 1 : 0
}

process.exitCode = await main()
