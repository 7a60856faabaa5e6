import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import type { Register } from '../register.js'
import { collect, defaultStateDir, parseTags } from '../defaults.js'
import { CliError, EXIT, colour, liveLine, phases, print, printJson, printWarning, type Phases } from '../output.js'
import { POLICY_CACHE_DIR } from '../../apply/constants.js'
import type { ConfigPolicy } from '../../policy/schema.js'

interface ApplyFlags {
  root: string
  state?: string
  tag?: string[]
  name?: string
  id?: string
  json?: boolean
  verbose?: boolean
  runGuards?: boolean
  ignoreTarget?: boolean
  allowSourceOutside?: boolean
  secrets?: string
  factsDir?: string
  sandboxServices?: boolean
}

/**
 * `grapevine plan` and `grapevine apply`. The applier is imported when a command runs,
 * not when the CLI starts, so other commands do not pay for it (and it for nothing else).
 */
const DESCRIPTIONS = {
  plan: 'Show what apply would change, with diffs (never of a file rendered from a secret: "(secret changed)"); changes nothing on disk and runs no command (guards only with --run-guards), but runs the policy\'s health checks against the current state. Exit 0 no changes, 2 changes, 4 failures, 6 both, 8 a health check failed, 1 invalid policy or secrets it refers to not given.',
  apply: 'Make this machine match the policy, then run its health checks. Files rendered from --secrets default to mode 0600; the report shows "(secret)" for every value. Exit 0 no changes, 2 changes, 4 failures, 6 changes and failures, 8 applied but a health check failed, 1 invalid policy or secrets it refers to not given.'
}

export const registerApply: Register = (program, done) => {
  for (const mode of ['plan', 'apply'] as const) {
    const cmd = program.command(mode)
      .description(DESCRIPTIONS[mode])
      .argument('<policy>', 'policy file (YAML or JSON)')
      .option('--root <dir>', 'prefix for every managed path (a sandbox)', '/')
      .option('--state <dir>', 'state directory for backups and the lock (default $GRAPEVINE_STATE, /var/lib/grapevine as root, else ~/.local/state/grapevine)')
      .option('--tag <key=value>', 'a node tag for templates and targeting (repeatable)', collect)
      .option('--name <name>', 'node name for templates and targeting (default: the host name)')
      .option('--id <id>', 'node id for templates and targeting (default: the host name)')
      .option('--facts-dir <dir>', 'custom facts for {{ facts.* }} and target.facts: *.json, *.yaml, *.yml maps here (default /etc/grapevine/facts.d)')
      .option('--ignore-target', 'apply even when the policy\'s target does not match this node')
      .option('--allow-source-outside', 'let source: name files outside the policy file\'s directory (absolute, "..", or through a symlink)')
      .option('--sandbox-services', 'rehearsal under a sandbox --root: record services\' running state in ROOT/run/grapevine/services/ instead of asking systemd (enablement stays systemctl --root)')
      .option('--secrets <file>', 'values for {{ secrets.NAME }}: a YAML or JSON map of names to values ("-" reads stdin); keep it out of git')
      .option('-v, --verbose', 'list unchanged resources too')
      .option('--json', 'print the report as JSON')
    if (mode === 'plan') cmd.option('--run-guards', 'run exec guards (unless/onlyif, meant to be read-only) to know whether each exec would run')
    cmd.action(async (file: string, opts: object) => { done(await run(file, opts as ApplyFlags, mode === 'plan')) })
  }
}

async function run (file: string, flags: ApplyFlags, dryRun: boolean): Promise<number> {
  phases.startupMs = Math.round(process.uptime() * 1000)
  let t = performance.now()
  const lap = (name: keyof Phases): void => { const n = performance.now(); phases[name] = Math.round(n - t); t = n }
  // The applier loads, and the facts are gathered, while the policy is read and validated.
  const applyModule = import('../../apply/index.js')
  const gathering = import('../../facts/gather.js').then(async ({ gatherFacts }) => await gatherFacts({ factsDir: flags.factsDir }))
  // load.js and target.js, not the policy index: with the policy cache, applying an unchanged policy loads no schema.
  const [{ loadPolicyFile }, { matchesTarget, factAt }] = await Promise.all([import('../../policy/load.js'), import('../../policy/target.js')])
  let tags: Record<string, string>
  try {
    tags = parseTags(flags.tag)
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.USAGE)
  }
  if (flags.sandboxServices === true && resolve(flags.root) === '/') throw new CliError('--sandbox-services is for rehearsals under a sandbox --root DIR; on / services run through systemd', EXIT.USAGE)
  const host = hostname()
  const stateDir = flags.state ?? defaultStateDir()
  const [policy, gathered] = await Promise.all([
    loadPolicyFile(file, { cacheDir: join(stateDir, POLICY_CACHE_DIR), readOnlyCache: dryRun, allowSourceOutside: flags.allowSourceOutside === true }),
    gathering
  ])
  for (const w of gathered.warnings) printWarning(w)
  const facts = { id: flags.id ?? host, name: flags.name ?? host, tags, facts: gathered.facts }
  const apply = await applyModule
  lap('loadMs')
  if (policy.kind !== 'policy') {
    const what = policy.kind === 'trust'
      ? 'a trust policy only tells agents whom to trust'
      : policy.kind === 'rollout'
        ? `a rollout record only tells nodes which version of "${policy.policy}" to enforce`
        : `a ${policy.kind} policy only tells nodes to stop managing "${policy.name}"`
    throw new CliError(`${file}: ${what}; there is nothing to apply`)
  }
  if (!matchesTarget(policy, facts) && flags.ignoreTarget !== true) {
    const message = `policy "${policy.name}" does not target this node (name ${facts.name}, tags ${JSON.stringify(tags)}${factsMismatch(policy, facts.facts, factAt)}); nothing to do (--ignore-target applies it anyway)`
    if (flags.json === true) printJson({ policy: policy.name, targeted: false, message })
    else print(message)
    return EXIT.OK
  }

  const secrets = await secretsFor(policy, file, flags.secrets)

  // Ctrl-C or SIGTERM stops the run cleanly: commands are killed, the rest is reported as skipped.
  const controller = new AbortController()
  const stop = (): void => controller.abort()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const progress = flags.json !== true && process.stderr.isTTY === true ? liveCounter(policy.resources.length, dryRun) : undefined
  let report
  try {
    report = await apply.applyPolicy(policy, {
      root: flags.root,
      stateDir,
      facts,
      dryRun,
      runGuards: flags.runGuards === true,
      signal: controller.signal,
      onResult: progress?.tick,
      ...(flags.sandboxServices === true ? { serviceRuntime: 'sandbox' as const } : {}),
      ...(secrets !== undefined ? { secrets } : {})
    })
  } catch (err) {
    if (err instanceof apply.RootNotFoundError || err instanceof apply.ApplyLockedError) throw new CliError(err.message, EXIT.UNAVAILABLE)
    if (err instanceof apply.StateWriteError) throw new CliError(err.message, EXIT.IOERR)
    throw err
  } finally {
    progress?.clear()
    process.removeListener('SIGINT', stop)
    process.removeListener('SIGTERM', stop)
  }

  lap('applyMs')
  if (flags.json === true) printJson(report)
  else {
    // One write: stdout to a file or /dev/null is written synchronously, a call per line.
    print(apply.formatReport(report, { palette: colour, verbose: flags.verbose === true, root: flags.root }).join('\n'))
    if (dryRun && report.resources.some((r) => r.status === 'unknown' && r.type === 'exec')) printWarning('some execs depend on guard commands plan did not run; --run-guards runs them')
  }
  lap('printMs')
  return apply.exitCodeFor(report)
}

/** `, facts os.family="redhat" (wanted "debian")`: the target's facts this node does not match, for the not-targeted line. */
function factsMismatch (policy: ConfigPolicy, facts: Record<string, unknown>, factAt: (f: Record<string, unknown>, path: string) => unknown): string {
  const off = Object.entries(policy.target?.facts ?? {}).flatMap(([path, want]) => {
    const have = factAt(facts, path)
    if (have !== undefined && have !== null && typeof have !== 'object' && String(have) === String(want)) return []
    return [`${path}${have === undefined ? ' unset' : `=${JSON.stringify(have)}`} (wanted ${JSON.stringify(want)})`]
  })
  return off.length === 0 ? '' : `, facts ${off.join(', ')}`
}

/**
 * The values of the secrets the policy refers to, from `--secrets` (loaded only then: a run
 * without secrets pays nothing for them). Only the names the policy uses are kept, so the
 * report's redaction has no more to search for than the policy can write.
 */
async function secretsFor (policy: ConfigPolicy, file: string, from: string | undefined): Promise<Record<string, string> | undefined> {
  const { secretReferences } = await import('../../policy/template.js')
  const names = secretReferences(policy)
  if (from === undefined) {
    if (names.length === 0) return undefined
    throw new CliError(`${file} refers to secret${names.length === 1 ? '' : 's'} ${names.join(', ')}: give ${names.length === 1 ? 'its value' : 'their values'} with --secrets FILE (a YAML or JSON map of names to values; - reads stdin)`, EXIT.INVALID)
  }
  const { readSecretsFile, pickSecrets } = await import('../../secrets/file.js')
  const read = await readSecretsFile(from)
  for (const w of read.warnings) printWarning(w)
  return pickSecrets(read.values, names, from === '-' ? 'the secrets on stdin' : from)
}

/** `applying 340/1000` on stderr, redrawn at most ten times a second, once a run has taken a second. */
function liveCounter (total: number, dryRun: boolean): { tick: () => void, clear: () => void } {
  const line = liveLine({ everyMs: 100, afterMs: 1000 })
  let done = 0
  return {
    tick: () => { line.show(`${dryRun ? 'planning' : 'applying'} ${++done}/${total}`) },
    clear: line.clear
  }
}
