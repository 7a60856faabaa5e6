/**
 * `npm run bench:apply`: whole-process cost of `grapevine apply` on 1,000 files.
 *
 * Each run spawns `node bin/grapevine.js apply` and times it from spawn to exit (wall
 * time, so Node's startup and module loading count). Peak RSS: Node cannot read a child's
 * rusage, so the child reports its own `process.resourceUsage().maxRSS` on exit when
 * GRAPEVINE_RUSAGE=1 (one JSON line on stderr). Phases, each run several times, median shown:
 *   create   first apply into an empty root
 *   no-op    apply again, nothing to do
 *   drift    apply after 10 files were changed by hand
 * When `cf-agent` (CFEngine 3) is installed, the same workload runs through it for comparison.
 *
 * Flags: --files N (1000), --runs N (5), --format yaml|json (yaml: the policy file's syntax), --json.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../../bin/grapevine.js', import.meta.url))

/** One run; the breakdown comes from the CLI's own report (GRAPEVINE_RUSAGE=1). */
interface Sample { ms: number, rssKiB?: number, code: number | null, startupMs?: number, loadMs?: number, applyMs?: number, printMs?: number }
interface Phase { name: string, tool: string, samples: Sample[] }

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

const FILES = arg('--files', 1000)
const RUNS = arg('--runs', 5)
const DRIFTED = 10
const FORMAT = process.argv.includes('--format') ? process.argv[process.argv.indexOf('--format') + 1] : 'yaml'

const contentOf = (i: number): string => `# managed by grapevine: file ${i} on {{ node.name }}\n${'x'.repeat(120)}\n`
const rendered = (i: number, name: string): string => contentOf(i).replace('{{ node.name }}', name)
const fileName = (i: number): string => `f${String(i).padStart(4, '0')}.conf`

async function timed (cmd: string, args: string[], env: Record<string, string> = {}): Promise<Sample> {
  const start = performance.now()
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  const ms = performance.now() - start
  const last = stderr.trim().split('\n').at(-1) ?? ''
  let reported: Omit<Sample, 'ms' | 'code' | 'rssKiB'> & { maxRssKiB?: number } = {}
  try {
    reported = JSON.parse(last) as typeof reported
  } catch {
    // No rusage line (another tool, or the command failed before reporting).
  }
  if (code !== 0 && code !== 2) process.stderr.write(`${cmd} ${args.join(' ')} exited ${String(code)}:\n${stderr}\n`)
  const { maxRssKiB, ...breakdown } = reported
  return { ms, rssKiB: maxRssKiB, code, ...breakdown }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2
}

async function drift (root: string, name: string): Promise<void> {
  for (let i = 0; i < DRIFTED; i++) await writeFile(join(root, fileName(i * Math.floor(FILES / DRIFTED))), `tampered ${name}\n`)
}

async function benchGrapevine (work: string): Promise<Phase[]> {
  const policy = join(work, `policy.${FORMAT}`)
  const resources = Array.from({ length: FILES }, (_, i) => ({ id: `f${i}`, type: 'file', path: `/${fileName(i)}`, mode: '0644', content: contentOf(i) }))
  if (FORMAT === 'json') {
    await writeFile(policy, JSON.stringify({ name: 'bench/files', resources }, null, 2) + '\n')
  } else {
    const lines = ['name: bench/files', 'resources:']
    for (const r of resources) lines.push(`  - { id: ${r.id}, type: file, path: ${r.path}, mode: "0644", content: ${JSON.stringify(r.content)} }`)
    await writeFile(policy, lines.join('\n') + '\n')
  }
  const root = join(work, 'gv-root')
  const state = join(work, 'gv-state')
  const apply = async (): Promise<Sample> => await timed(process.execPath, [CLI, 'apply', policy, '--root', root, '--state', state, '--name', 'bench'], { GRAPEVINE_RUSAGE: '1' })
  const phases: Phase[] = [{ name: 'create', tool: 'grapevine', samples: [] }, { name: 'no-op', tool: 'grapevine', samples: [] }, { name: 'drift 10', tool: 'grapevine', samples: [] }]
  for (let run = 0; run < RUNS; run++) {
    await rm(root, { recursive: true, force: true })
    await rm(state, { recursive: true, force: true })
    await mkdir(root)
    phases[0]?.samples.push(await apply())
    phases[1]?.samples.push(await apply())
    await drift(root, 'gv')
    phases[2]?.samples.push(await apply())
  }
  const expected = [2, 0, 2]
  phases.forEach((p, i) => { if (p.samples.some((s) => s.code !== expected[i])) process.stderr.write(`warning: grapevine ${p.name} exited ${p.samples.map((s) => s.code).join(',')}, expected ${expected[i]}\n`) })
  return phases
}

/** The same files through CFEngine 3's cf-agent: edit_line with empty_file_before_editing writes exact content. */
async function benchCfengine (work: string): Promise<Phase[] | undefined> {
  const which = spawnSync('sh', ['-c', 'command -v cf-agent && command -v cf-promises'], { encoding: 'utf8' })
  const [agent, promisesBin] = which.stdout.trim().split('\n')
  if (which.status !== 0 || agent === undefined || promisesBin === undefined) return undefined
  const root = join(work, 'cf-root')
  const workdir = join(work, 'cf-work')
  const promises: string[] = []
  for (let i = 0; i < FILES; i++) {
    const text = rendered(i, 'bench').replace(/\\/g, '\\\\').replace(/"/g, '\\"').trimEnd()
    promises.push(`    "${root}/${fileName(i)}" create => "true", perms => m("0644"), content => "${text}";`)
  }
  const file = join(work, 'bench.cf')
  await writeFile(file, `body common control { bundlesequence => { "main" }; inputs => { }; }
body perms m(mode) { mode => "$(mode)"; rxdirs => "false"; }
bundle agent main {
  files:
${promises.join('\n')}
}
`)
  const apply = async (): Promise<Sample> => await timed(agent, ['--no-lock', '--inform', '--file', file, '--workdir', workdir], {})
  const phases: Phase[] = [{ name: 'create', tool: 'cf-agent', samples: [] }, { name: 'no-op', tool: 'cf-agent', samples: [] }, { name: 'drift 10', tool: 'cf-agent', samples: [] }]
  for (let run = 0; run < RUNS; run++) {
    await rm(root, { recursive: true, force: true })
    await rm(workdir, { recursive: true, force: true })
    // A private work directory keeps the system's CFEngine state out of it; cf-agent looks for cf-promises in <workdir>/bin.
    await mkdir(join(workdir, 'bin'), { recursive: true })
    await symlink(promisesBin, join(workdir, 'bin', 'cf-promises'))
    await mkdir(root)
    phases[0]?.samples.push(await apply())
    phases[1]?.samples.push(await apply())
    await drift(root, 'cf')
    phases[2]?.samples.push(await apply())
  }
  const expected = [0, 0, 0]
  phases.forEach((p, i) => { if (p.samples.some((s) => s.code !== expected[i])) process.stderr.write(`warning: cf-agent ${p.name} exited ${p.samples.map((s) => s.code).join(',')}\n`) })
  return phases
}

async function main (): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'grapevine-bench-'))
  try {
    const startup = { name: 'startup (--version)', tool: 'grapevine', samples: [] as Sample[] }
    for (let i = 0; i < RUNS; i++) startup.samples.push(await timed(process.execPath, [CLI, '--version']))
    const phases = [startup, ...await benchGrapevine(work)]
    const cf = await benchCfengine(work)
    if (cf !== undefined) phases.push(...cf)
    const rows = phases.map((p) => ({
      tool: p.tool,
      phase: p.name,
      medianMs: Math.round(median(p.samples.map((s) => s.ms))),
      minMs: Math.round(Math.min(...p.samples.map((s) => s.ms))),
      maxMs: Math.round(Math.max(...p.samples.map((s) => s.ms))),
      ...(p.samples.every((s) => s.rssKiB !== undefined) ? { peakRssMiB: +(median(p.samples.map((s) => s.rssKiB as number)) / 1024).toFixed(1) } : {}),
      ...(p.samples.every((s) => s.applyMs !== undefined)
        ? { breakdown: Object.fromEntries((['startupMs', 'loadMs', 'applyMs', 'printMs'] as const).map((k) => [k, Math.round(median(p.samples.map((s) => s[k] ?? 0)))])) }
        : {})
    }))
    if (process.argv.includes('--json')) {
      process.stdout.write(JSON.stringify({ files: FILES, runs: RUNS, format: FORMAT, rows }, null, 2) + '\n')
      return
    }
    process.stdout.write(`apply ${FILES} files (policy in ${FORMAT}), ${RUNS} runs each, whole-process wall time (spawn to exit), median [min-max]\n`)
    process.stdout.write(`work dir ${work} (${tmpdir()}); peak RSS reported by the child itself (GRAPEVINE_RUSAGE=1)\n\n`)
    for (const r of rows) {
      const b = r.breakdown
      const parts = b !== undefined ? `  (node+CLI start ${b.startupMs}, load policy ${b.loadMs}, apply ${b.applyMs}, print ${b.printMs})` : ''
      process.stdout.write(`${r.tool.padEnd(10)} ${r.phase.padEnd(20)} ${String(r.medianMs).padStart(6)} ms  [${r.minMs}-${r.maxMs}]${r.peakRssMiB !== undefined ? `  peak RSS ${r.peakRssMiB} MiB` : ''}${parts}\n`)
    }
    if (cf !== undefined) {
      process.stdout.write('\n')
      for (const name of ['create', 'no-op', 'drift 10']) {
        const g = rows.find((r) => r.tool === 'grapevine' && r.phase === name)
        const c = rows.find((r) => r.tool === 'cf-agent' && r.phase === name)
        if (g !== undefined && c !== undefined) process.stdout.write(`${name.padEnd(10)} grapevine / cf-agent = ${(g.medianMs / c.medianMs).toFixed(2)}\n`)
      }
    } else {
      process.stdout.write('\n(cf-agent not installed: no CFEngine comparison)\n')
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

await main()
