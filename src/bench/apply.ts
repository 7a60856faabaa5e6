/**
 * `npm run bench:apply`: whole-process cost of `grapevine apply` on 1,000 files.
 *
 * Each run spawns `bin/grapevine apply`, the command users run, and times it from spawn to
 * exit (wall time, so Node's startup and module loading count). bin/grapevine starts apply
 * from the CLI's startup snapshot when it can; the output says how many runs did, and
 * --no-snapshot measures without it. Peak RSS: Node cannot read a child's rusage, so the
 * child reports its own `process.resourceUsage().maxRSS` on exit when GRAPEVINE_RUSAGE=1
 * (one JSON line on stderr). Phases, each run several times, median shown:
 *   create   first apply into an empty root
 *   no-op    apply again, nothing to do
 *   drift    apply after 10 files were changed by hand
 * When `cf-agent` (CFEngine 3) is installed, the same workload runs through it for comparison,
 * the two tools taking turns run by run.
 *
 * Flags: --files N (1000), --runs N (5), --format yaml|json (yaml: the policy file's syntax),
 * --no-snapshot (GRAPEVINE_NO_SNAPSHOT=1 for grapevine), --json.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median } from '../sim/metrics.js'

const CLI = fileURLToPath(new URL('../../bin/grapevine', import.meta.url))

/** One run; the breakdown comes from the CLI's own report (GRAPEVINE_RUSAGE=1). */
interface Sample { ms: number, rssKiB?: number, code: number | null, snapshot?: boolean, startupMs?: number, loadMs?: number, applyMs?: number, printMs?: number }
interface Phase { name: string, tool: string, samples: Sample[] }

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}

const FILES = arg('--files', 1000)
const RUNS = arg('--runs', 5)
const DRIFTED = 10
const FORMAT = process.argv.includes('--format') ? process.argv[process.argv.indexOf('--format') + 1] : 'yaml'
const SNAPSHOT_ENV: Record<string, string> = process.argv.includes('--no-snapshot') ? { GRAPEVINE_NO_SNAPSHOT: '1' } : {}

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


async function drift (root: string, name: string): Promise<void> {
  for (let i = 0; i < DRIFTED; i++) await writeFile(join(root, fileName(i * Math.floor(FILES / DRIFTED))), `tampered ${name}\n`)
}

/** One tool's workload: `setup` prepares run N (an empty root), `apply` is one timed apply, `drift` changes files by hand. */
interface Tool { name: string, expected: number[], setup: (run: number) => Promise<void>, apply: () => Promise<Sample>, drift: () => Promise<void> }

async function grapevine (work: string): Promise<Tool> {
  const policy = join(work, `policy.${FORMAT}`)
  const resources = Array.from({ length: FILES }, (_, i) => ({ id: `f${i}`, type: 'file', path: `/${fileName(i)}`, mode: '0644', content: contentOf(i) }))
  if (FORMAT === 'json') {
    await writeFile(policy, JSON.stringify({ name: 'bench/files', resources }, null, 2) + '\n')
  } else {
    const lines = ['name: bench/files', 'resources:']
    for (const r of resources) lines.push(`  - { id: ${r.id}, type: file, path: ${r.path}, mode: "0644", content: ${JSON.stringify(r.content)} }`)
    await writeFile(policy, lines.join('\n') + '\n')
  }
  let root = ''
  let state = ''
  return {
    name: 'grapevine',
    expected: [2, 0, 2],
    setup: async (run) => {
      root = join(work, `gv-root-${run}`)
      state = join(work, `gv-state-${run}`)
      await mkdir(root)
    },
    apply: async () => await timed(CLI, ['apply', policy, '--root', root, '--state', state, '--name', 'bench'], { GRAPEVINE_RUSAGE: '1', ...SNAPSHOT_ENV }),
    drift: async () => await drift(root, 'gv')
  }
}

/** The same files through CFEngine 3's cf-agent: edit_line with empty_file_before_editing writes exact content. */
async function cfengine (work: string): Promise<Tool | undefined> {
  const which = spawnSync('sh', ['-c', 'command -v cf-agent && command -v cf-promises'], { encoding: 'utf8' })
  const [agent, promisesBin] = which.stdout.trim().split('\n')
  if (which.status !== 0 || agent === undefined || promisesBin === undefined) return undefined
  // The promises name the root, so each run's root gets its own policy file.
  let root = ''
  let workdir = ''
  let file = ''
  return {
    name: 'cf-agent',
    expected: [0, 0, 0],
    setup: async (run) => {
      root = join(work, `cf-root-${run}`)
      workdir = join(work, `cf-work-${run}`)
      file = join(work, `bench-${run}.cf`)
      const promises: string[] = []
      for (let i = 0; i < FILES; i++) {
        const text = rendered(i, 'bench').replace(/\\/g, '\\\\').replace(/"/g, '\\"').trimEnd()
        promises.push(`    "${root}/${fileName(i)}" create => "true", perms => m("0644"), content => "${text}";`)
      }
      await writeFile(file, `body common control { bundlesequence => { "main" }; inputs => { }; }
body perms m(mode) { mode => "$(mode)"; rxdirs => "false"; }
bundle agent main {
  files:
${promises.join('\n')}
}
`)
      // A private work directory keeps the system's CFEngine state out of it; cf-agent looks for cf-promises in <workdir>/bin.
      await mkdir(join(workdir, 'bin'), { recursive: true })
      await symlink(promisesBin, join(workdir, 'bin', 'cf-promises'))
      await mkdir(root)
    },
    apply: async () => await timed(agent, ['--no-lock', '--inform', '--file', file, '--workdir', workdir], {}),
    drift: async () => await drift(root, 'cf')
  }
}

/**
 * Runs every tool's create, no-op and drift phases, the tools taking turns run by run:
 * on a shared machine, load that comes and goes then weighs on both alike. Each run gets
 * fresh directories and nothing is deleted until the end: ext4 without a journal skips
 * inodes freed in the last seconds when it allocates new ones, so removing the previous
 * run's thousand files just before a create made the create measure that skipping (about
 * a second here, for either tool) rather than the tool.
 */
async function benchTools (tools: Tool[]): Promise<Phase[]> {
  const phases = new Map(tools.map((t) => [t.name, (['create', 'no-op', 'drift 10']).map((name) => ({ name, tool: t.name, samples: [] as Sample[] }))]))
  for (let run = 0; run < RUNS; run++) {
    for (const t of tools) {
      const [create, noop, drifted] = phases.get(t.name) as Phase[]
      await t.setup(run)
      create?.samples.push(await t.apply())
      noop?.samples.push(await t.apply())
      await t.drift()
      drifted?.samples.push(await t.apply())
    }
  }
  for (const t of tools) {
    (phases.get(t.name) as Phase[]).forEach((p, i) => {
      if (p.samples.some((s) => s.code !== t.expected[i])) process.stderr.write(`warning: ${t.name} ${p.name} exited ${p.samples.map((s) => s.code).join(',')}, expected ${t.expected[i]}\n`)
    })
  }
  return tools.flatMap((t) => phases.get(t.name) as Phase[])
}

async function main (): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'grapevine-bench-'))
  try {
    const startup = { name: 'startup (--version)', tool: 'grapevine', samples: [] as Sample[] }
    for (let i = 0; i < RUNS; i++) startup.samples.push(await timed(CLI, ['--version']))
    const cf = await cfengine(work)
    const phases = [startup, ...await benchTools(cf !== undefined ? [await grapevine(work), cf] : [await grapevine(work)])]
    const rows = phases.map((p) => ({
      tool: p.tool,
      phase: p.name,
      medianMs: Math.round(median(p.samples.map((s) => s.ms))),
      minMs: Math.round(Math.min(...p.samples.map((s) => s.ms))),
      maxMs: Math.round(Math.max(...p.samples.map((s) => s.ms))),
      ...(p.samples.every((s) => s.rssKiB !== undefined) ? { peakRssMiB: +(median(p.samples.map((s) => s.rssKiB as number)) / 1024).toFixed(1) } : {}),
      ...(p.samples.every((s) => s.snapshot !== undefined) ? { fromSnapshot: p.samples.filter((s) => s.snapshot === true).length } : {}),
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
      const snap = r.fromSnapshot !== undefined ? `  from snapshot ${r.fromSnapshot}/${RUNS}` : ''
      process.stdout.write(`${r.tool.padEnd(10)} ${r.phase.padEnd(20)} ${String(r.medianMs).padStart(6)} ms  [${r.minMs}-${r.maxMs}]${r.peakRssMiB !== undefined ? `  peak RSS ${r.peakRssMiB} MiB` : ''}${parts}${snap}\n`)
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
