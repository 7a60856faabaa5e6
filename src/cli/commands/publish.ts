import { Option } from '@commander-js/extra-typings'
import type { Command as BaseCommand } from 'commander'
import type { Register } from '../register.js'
import { CliError, EXIT, colour, print, printJson } from '../output.js'
import { collect } from '../defaults.js'
import type { Policy } from '../../policy/index.js'
import type { Progress, PublishResult } from '../../client/index.js'
import type { FleetNode } from '../../receipt/index.js'
import { rolloutFlags, rolloutPlan, publishStaged, type RolloutFlags } from './rollout.js'
import { connect, meshOptions, staleAfterMs, EXIT_CONFLICT_LOST, EXIT_NODE_FAILURES, EXIT_TIMEOUT, EXIT_UNKNOWN_NAME, EXIT_INTERRUPTED, type MeshFlags } from './mesh.js'
import { readSecretsRequest, sealBeforePublish, sealedAsBeforeNote, secretsFlags, type SealReport, type SecretsFlags } from './sealing.js'
import type { SealRequest } from '../../client/index.js'

/** publish --wait: a targeted node reported `sealed`, not a recipient of the policy's secrets: it did not apply it (README, "Exit codes"). */
export const EXIT_SEALED = 6

function parseVersion (flag: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`${flag} must be a positive integer: got "${v}"`, EXIT.USAGE)
    return Number(v)
  }
}

function tagText (tags: Record<string, string>): string {
  return Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(',')
}

/**
 * One line of progress in the words of what was published: a tombstone is "retired on N", a
 * trust policy "in force on N" (refused by the nodes that do not trust its signer), a policy
 * applied / unchanged / failed. Stale nodes (not heard from lately) are counted apart: not waited for.
 */
/**
 * Each failed node (`FAILED`, or `UNHEALTHY` when its resources applied but a health check
 * failed) with its tags, then each failure: the resource, or `check:<id>` with the check's
 * result and the end of its output, indented under it.
 */
export function failureLines (p: Pick<Progress, 'failed'>): string[] {
  const lines: string[] = []
  for (const f of p.failed) {
    lines.push(`  ${f.outcome === 'unhealthy' ? 'UNHEALTHY' : 'FAILED'} ${f.name} (${tagText(f.tags) || 'no tags'}) ${f.id.slice(-8)}`)
    for (const r of f.failures ?? []) lines.push(`    ${r.resource}: ${r.error.replace(/\n/g, '\n      ')}`)
  }
  return lines
}

export function progressLine (kind: Policy['kind'], name: string, version: number, p: Progress): string {
  const reported = p.applied.length + p.unchanged.length + p.failed.length + p.sealed.length
  const failed = (word: string): string => p.failed.length > 0 ? colour.red(`${p.failed.length} ${word}`) : `0 ${word}`
  const unhealthy = p.failed.filter((n) => n.outcome === 'unhealthy').length
  const outcomes = kind === 'retired'
    ? colour.green(`retired on ${p.applied.length + p.unchanged.length}`)
    : kind === 'trust'
      ? `${colour.green(`in force on ${p.applied.length + p.unchanged.length}`)}, ${failed('refused it')}`
      // A rollout record is only held: nothing enforces its stages yet (docs/rollout.md, "Status").
      : kind === 'rollout'
        ? `held by ${p.applied.length + p.unchanged.length}, ${failed('refused it')}`
        : `${colour.green(`${p.applied.length} applied`)}, ${p.unchanged.length} unchanged, ${failed('failed')}${unhealthy > 0 ? colour.red(` (${unhealthy} unhealthy)`) : ''}${p.sealed.length > 0 ? colour.yellow(`, ${p.sealed.length} sealed`) : ''}, ${p.notTargeted.length} not targeted`
  return `${name} v${version}: ${reported}/${reported + p.pending.length} reported — ${outcomes}` +
    `${p.pending.length > 0 ? `, ${p.pending.length} waiting` : ''}` +
    `${p.stale.length > 0 ? colour.yellow(`, ${p.stale.length} stale, not waited for`) : ''}`
}

export interface PublishFlags extends MeshFlags {
  key: string
  version?: number
  force?: string
  wait?: boolean
  timeout: string
  expect?: number
  staleAfter?: string
  json?: boolean
}

/** The targeted nodes that reported `sealed`: the policy's secrets are not sealed to them, so they did not apply it. */
export function sealedLines (p: Pick<Progress, 'sealed'>): string[] {
  return p.sealed.map((n) => `  SEALED ${n.name} (${tagText(n.tags) || 'no tags'}) ${n.id.slice(-8)}: not a recipient`)
}

/** A publish's exit code, the first that holds: 130, 3, 4, 6 (targeted nodes reported `sealed`), 5, else 0 (README, "Exit codes"). */
export function publishExit (o: { interrupted: boolean, conflictLost: boolean, failed: number, sealed: number, timedOut: boolean }): number {
  if (o.interrupted) return EXIT_INTERRUPTED
  if (o.conflictLost) return EXIT_CONFLICT_LOST
  if (o.failed > 0) return EXIT_NODE_FAILURES
  if (o.sealed > 0) return EXIT_SEALED
  return o.timedOut ? EXIT_TIMEOUT : EXIT.OK
}

export interface PublishExtras {
  /** `--secrets`: sealed to the recipients chosen from the fleet view once connected, before signing. */
  secrets?: SealRequest
  /** Said after the published line (in --json, as `note`). */
  note?: string
}

/** Publishes and, with --wait, follows the receipts: shared by publish, reseal, rollback, resolve and retire. */
export async function publishAndReport (policy: Policy, opts: PublishFlags, done: (code: number) => void, verb = 'published', extras: PublishExtras = {}): Promise<void> {
  const { readSigningKey } = await import('../../envelope/index.js')
  const key = await readSigningKey(opts.key)
  const timeoutMs = Number(opts.timeout) * 1000
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new CliError(`--timeout must be a positive number of seconds: got "${opts.timeout}"`, EXIT.USAGE)
  const staleAfter = opts.staleAfter === undefined ? undefined : staleAfterMs(opts.staleAfter)
  const client = await connect(opts)
  const { publishPolicy, waitForFleet, reportedCount, PublishError, NODE_STALE_AFTER_MS, PolicyUnchangedError, UnknownPolicyError } = await import('../../client/index.js')
  try {
    let sealing: SealReport | undefined
    if (extras.secrets !== undefined) ({ policy, report: sealing } = await sealBeforePublish(client, policy, extras.secrets, opts.json === true))
    let result: PublishResult
    try {
      result = await publishPolicy(client, { policy, key, version: opts.version, skipUnchanged: true, ...(opts.force !== undefined ? { force: opts.force } : {}) })
    } catch (err) {
      if (err instanceof PolicyUnchangedError) {
        // Not an error: what was asked for is already what the mesh holds (--force REASON republishes).
        if (opts.json === true) printJson({ name: err.policy, unchanged: true, version: err.held.version, hash: err.held.hash, id: err.held.id, exitCode: EXIT.OK })
        else print(`unchanged, nothing published: ${err.policy} v${err.held.version} already has this content (${err.held.hash.slice(0, 19)}); --force REASON publishes it again as a new version`)
        done(EXIT.OK)
        return
      }
      if (err instanceof UnknownPolicyError) throw new CliError(err.message, EXIT_UNKNOWN_NAME)
      if (err instanceof PublishError) throw new CliError(err.message, /reach|answer/.test(err.message) ? EXIT.UNAVAILABLE : EXIT.INVALID)
      throw err
    }
    const env = result.envelope
    const lost = result.conflict !== undefined && result.conflict.winner !== env.hash
    const waits = opts.wait === true && !lost
    // Ctrl-C ends the wait, not the process: what is known is printed, then exit 130. Listened
    // for before the line saying it was published, so a Ctrl-C after that line never kills it
    // unprinted; a second Ctrl-C kills at once.
    const stop = new AbortController()
    const onInt = (): void => { stop.abort() }
    if (waits) process.once('SIGINT', onInt)
    if (opts.json !== true) {
      print(`${verb} ${colour.bold(env.name)} v${env.version} ${env.hash.slice(0, 19)}${result.previous !== undefined ? ` (mesh had v${result.previous.version})` : ''}, confirmed by ${result.confirmedBy.length} peer${result.confirmedBy.length === 1 ? '' : 's'}`)
      if (lost) print(colour.red(`conflict: another admin published different content as v${env.version}, and theirs (${result.conflict?.winner.slice(0, 19)}) wins on every node; publish again to supersede it`))
      if (extras.note !== undefined) print(colour.yellow(`note: ${extras.note}`))
    }
    let progress: Progress | undefined
    let timedOut = false
    let interrupted = false
    if (waits) {
      const live = process.stdout.isTTY === true && opts.json !== true
      try {
        const waited = await waitForFleet(client, env, {
          timeoutMs,
          expect: opts.expect,
          staleAfterMs: staleAfter,
          signal: stop.signal,
          onProgress: (p) => { if (live) process.stdout.write(`\r\x1b[2K${progressLine(env.policy.kind, env.name, env.version, p)}`) }
        })
        progress = waited.progress
        timedOut = waited.timedOut
        interrupted = waited.interrupted
      } finally {
        process.off('SIGINT', onInt)
      }
      if (live) process.stdout.write(`\r\x1b[2K${progressLine(env.policy.kind, env.name, env.version, progress)}\n`)
      else if (opts.json !== true) print(progressLine(env.policy.kind, env.name, env.version, progress))
    }
    const superseded = (progress?.superseded.length ?? 0) > 0
    const conflictLater = (progress?.conflicting.length ?? 0) > 0
    // Every node that reported had already moved on to a newer version: none applied this one.
    const overtaken = superseded && progress !== undefined && reportedCount(progress) === 0
    const code = publishExit({ interrupted, conflictLost: lost || conflictLater || overtaken, failed: progress?.failed.length ?? 0, sealed: progress?.sealed.length ?? 0, timedOut })
    if (opts.json === true) {
      printJson({
        name: env.name,
        version: env.version,
        hash: env.hash,
        id: env.id,
        signer: env.signer,
        previous: result.previous ?? null,
        confirmedBy: result.confirmedBy,
        conflict: result.conflict ?? null,
        conflictLost: lost || conflictLater,
        ...(sealing !== undefined ? { secrets: sealing } : {}),
        ...(extras.note !== undefined ? { note: extras.note } : {}),
        ...(progress !== undefined ? { progress, timedOut, interrupted } : {}),
        exitCode: code
      })
    } else if (progress !== undefined) {
      for (const line of failureLines(progress)) print(colour.red(line))
      if (progress.sealed.length > 0) {
        print(colour.yellow(`${progress.sealed.length} targeted node(s) cannot read its secrets and did not apply it (not a recipient); \`grapevine reseal ${env.name}\` seals them to today's fleet:`))
        for (const line of sealedLines(progress)) print(colour.yellow(line))
      }
      if (conflictLater) print(colour.red(`conflict: ${progress.conflicting.length} node(s) hold other content as v${env.version}; the other envelope won`))
      if (superseded) print(colour.yellow(`${progress.superseded.length} node(s) already run a newer version`))
      if (timedOut) print(colour.yellow(`timed out after ${opts.timeout} s; still waiting on: ${progress.pending.map((n) => n.name).join(', ') || 'none of the live nodes'}`))
      if (interrupted) print(colour.yellow(`interrupted; ${progress.pending.length > 0 ? `was still waiting on: ${progress.pending.map((n) => n.name).join(', ')}` : 'no live node was still to report'}`))
      if (progress.stale.length > 0) print(colour.yellow(`${progress.stale.length} stale, not waited for (not heard from in ${Math.round((staleAfter ?? NODE_STALE_AFTER_MS) / 1000)} s): ${progress.stale.map((n) => n.name).join(', ')}`))
      if (progress.known === 0) print(colour.yellow('no nodes are known yet (they announce themselves within a few seconds of joining)'))
      if (progress.unadmitted > 0) print(colour.yellow(`${progress.unadmitted} node(s) without a valid admission certificate were not counted (grapevine fleet --all lists them)`))
    }
    done(code)
  } finally {
    await client.close()
  }
}

export function publishFlags (cmd: BaseCommand): BaseCommand {
  meshOptions(cmd)
  cmd.requiredOption('--key <file>', 'admin private key')
    .option('--wait', 'follow the nodes\' receipts until every known targeted node reported')
    .option('--timeout <seconds>', 'with --wait, stop waiting after this long', '60')
    .option('--stale-after <seconds>', 'with --wait, a node not heard from for this long is stale: shown apart, not waited for (default 600, two beacon intervals)')
    .addOption(new Option('--expect <n>', 'with --wait, done once this many targeted nodes reported').argParser(parseVersion('--expect')) as never)
    .option('--json', 'print the result as JSON')
    .option('--force <reason>', 'nodes take this version whatever they hold, chain or not (ends a fork); the reason goes into every node\'s history')
  return cmd
}

/** `--where os.family=debian` flags as [path, value] pairs; a usage error (64) names the one that is not `dotted.path=value`. */
export function parseWhere (flags: readonly string[]): Array<[string, string]> {
  return flags.map((f) => {
    const m = /^([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)=(.*)$/.exec(f)
    if (m === null) throw new CliError(`--where expects FACT=VALUE with a dotted fact path, such as os.family=debian: got "${f}"`, EXIT.USAGE)
    return [m[1] as string, m[2] as string]
  })
}

export const registerPublish: Register = (program, done) => {
  const publish = program.command('publish')
    .description('Sign a policy as the next version and publish it through any agent; --wait shows which nodes applied it.')
    .argument('<policy>', 'policy file (YAML or JSON)')
    .addOption(new Option('--version <n>', 'sign exactly this version (default: next after the mesh\'s newest)').argParser(parseVersion('--version')))
    .option('--allow-source-outside', 'let source: name files outside the policy file\'s directory (absolute, "..", or through a symlink); whatever a source names is signed and sent to every targeted node')
  publishFlags(publish as unknown as BaseCommand)
  secretsFlags(publish as unknown as BaseCommand)
  rolloutFlags(publish as unknown as BaseCommand)
  publish.action(async (file: string, opts: Record<string, unknown>) => {
    const flags = opts as unknown as PublishFlags & RolloutFlags & SecretsFlags
    const plan = await rolloutPlan(flags)
    const { loadPolicyFile } = await import('../../policy/load.js')
    const policy = await loadPolicyFile(file, { allowSourceOutside: opts.allowSourceOutside === true })
    // A file's own `sealed` would be signed as written: sealed values come from --secrets only.
    if (policy.kind === 'policy' && policy.sealed !== undefined) throw new CliError(`${file}: sealed: is written by publish --secrets, never by hand; remove it and give the values with --secrets FILE`, EXIT.INVALID)
    const secrets = await readSecretsRequest(policy, flags)
    if (plan !== undefined) await publishStaged(policy, plan, flags, done, secrets)
    else await publishAndReport(policy, flags, done, 'published', secrets !== undefined ? { secrets } : {})
  })

  const rollback = program.command('rollback')
    .description('Republish an earlier version\'s content as the next version (the version rule never goes back).')
    .argument('<name>', 'policy name, e.g. web/nginx')
    .addOption(new Option('--to <version>', 'the version whose content to restore').argParser(parseVersion('--to')).makeOptionMandatory())
  publishFlags(rollback as unknown as BaseCommand)
  rollback.action(async (name: string, opts: Record<string, unknown>) => {
    const flags = opts as unknown as PublishFlags & { to: number }
    const client = await connect(flags)
    let bytes: Uint8Array | undefined
    try {
      bytes = await client.envelope(name, flags.to)
    } finally {
      await client.close()
    }
    if (bytes === undefined) throw new CliError(`no agent reached holds ${name} v${flags.to} (agents keep the last 20 versions)`)
    const [{ validateEnvelope }, { validatePolicyObject }] = await Promise.all([import('../../envelope/index.js'), import('../../policy/parse.js')])
    const old = validateEnvelope(bytes, { authorize: () => {} })
    if (old.name !== name || old.version !== flags.to) throw new CliError(`the agent answered with ${old.name} v${old.version}, not ${name} v${flags.to}`)
    const policy = validatePolicyObject(old.policy)
    const note = sealedAsBeforeNote(policy, flags.to)
    await publishAndReport(policy, flags, done, `rolled back to v${flags.to}'s content:`, note !== undefined ? { note } : {})
  })

  const resolve = program.command('resolve')
    .description('End a fork: republish the content of the envelope you choose as the next version, forced, so every node takes it whichever branch it holds.')
    .argument('<name>', 'policy name, e.g. web/nginx')
    .requiredOption('--to <id>', 'the id of the envelope whose content wins (`grapevine status` lists held and forked ids)')
  publishFlags(resolve as unknown as BaseCommand)
  resolve.action(async (name: string, opts: Record<string, unknown>) => {
    const flags = opts as unknown as PublishFlags & { to: string }
    if (!/^[0-9a-f]{64}$/.test(flags.to)) throw new CliError(`--to expects an envelope id (64 hex digits): got "${flags.to}"`, EXIT.USAGE)
    const { validateEnvelope } = await import('../../envelope/index.js')
    const client = await connect(flags)
    let chosen: ReturnType<typeof validateEnvelope> | undefined
    try {
      // The head and the archived versions below it (agents keep the last 20).
      const head = await client.current(name)
      for (let v = head?.version ?? 0; v >= 1 && v > (head?.version ?? 0) - 20 && chosen === undefined; v--) {
        const bytes = await client.envelope(name, v)
        const env = bytes === undefined ? undefined : validateEnvelope(bytes, { authorize: () => {} })
        if (env?.id === flags.to && env.name === name) chosen = env
      }
    } finally {
      await client.close()
    }
    if (chosen === undefined) throw new CliError(`no agent reached holds ${name} with id ${flags.to} (the head or the 20 versions below it); for other content, publish it with --force REASON`)
    const { validatePolicyObject } = await import('../../policy/parse.js')
    const policy = validatePolicyObject(chosen.policy)
    const note = sealedAsBeforeNote(policy, chosen.version)
    await publishAndReport(policy, { ...flags, force: flags.force ?? `resolve ${name} to ${flags.to} (v${chosen.version})` }, done, `resolved to v${chosen.version}'s content:`, note !== undefined ? { note } : {})
  })

  const retire = program.command('retire')
    .description('Publish a tombstone: nodes stop managing the policy. Its files stay as they are.')
    .argument('<name>', 'policy name, e.g. web/nginx')
  publishFlags(retire as unknown as BaseCommand)
  retire.action(async (name: string, opts: Record<string, unknown>) => {
    const { validatePolicyObject } = await import('../../policy/parse.js')
    const policy = validatePolicyObject({ kind: 'retired', name })
    await publishAndReport(policy, opts as unknown as PublishFlags, done, 'retired')
  })

  const fleet = program.command('fleet')
    .description('Show every node the mesh knows of: tags, each policy\'s version and last outcome, stragglers and conflicts.')
    .option('--json', 'print the fleet as JSON')
    .option('--all', 'also list the nodes without a valid admission certificate, marked')
    .option('--where <fact=value>', 'only the nodes whose beacons carry this fact with this value, e.g. os.family=debian (repeatable: all must hold; facts are the nodes\' own word)', collect)
  meshOptions(fleet as unknown as BaseCommand)
  fleet.action(async (opts: Record<string, unknown>) => {
    const flags = opts as MeshFlags & { json?: boolean, all?: boolean, where?: string[] }
    const where = parseWhere(flags.where ?? [])
    const client = await connect(flags)
    let heard: FleetNode[]
    try {
      heard = await client.fleet()
    } finally {
      await client.close()
    }
    if (where.length > 0) {
      const { factAt } = await import('../../policy/target.js')
      heard = heard.filter((n) => where.every(([path, value]) => {
        const have = factAt(n.facts, path)
        return have !== undefined && have !== null && typeof have !== 'object' && String(have) === value
      }))
    }
    // Only admitted nodes are fleet members (docs/admission.md); the others are counted, and listed with --all.
    const nodes = flags.all === true ? heard : heard.filter((n) => n.admitted)
    const unadmitted = heard.filter((n) => !n.admitted).length
    const { fleetSummary } = await import('../../client/index.js')
    const summary = fleetSummary(heard.filter((n) => n.admitted), Date.now())
    if (flags.json === true) { printJson({ nodes, unadmitted, ...summary }); done(EXIT.OK); return }
    const unadmittedLine = (): void => { if (unadmitted > 0) print(colour.yellow(flags.all === true ? `${unadmitted} node(s) marked UNADMITTED do not count` : `${unadmitted} unadmitted node(s) not shown (--all lists them)`)) }
    if (nodes.length === 0) { print(where.length > 0 ? `no node matches --where ${where.map(([p, v]) => `${p}=${v}`).join(' ')}` : 'no nodes known yet'); unadmittedLine(); done(EXIT.OK); return }
    const names = summary.policies.map((p) => p.name)
    const rows = [['NODE', 'TAGS', 'LAST SEEN', ...names]]
    for (const n of nodes) {
      const certified = n.admission !== undefined && Object.keys(n.admission.tags).length > 0 ? ` [admitted: ${tagText(n.admission.tags)}]` : ''
      rows.push([n.admitted ? n.name : `${n.name} (UNADMITTED: ${n.unadmitted ?? 'no certificate'})`, tagText(n.tags) + certified, n.lastSeen.replace('T', ' ').slice(0, 19), ...names.map((name) => {
        const s = n.policies[name]
        return s === undefined ? '-' : `v${s.version} ${s.outcome}`
      })])
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
    for (const r of rows) print(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd())
    print()
    for (const p of summary.policies) {
      print(`${p.name}: newest v${p.newest}; ${p.onNewest} of ${p.holders} nodes on it${p.stragglers.length > 0 ? colour.yellow(`; stragglers: ${p.stragglers.join(', ')}`) : ''}${p.failing.length > 0 ? colour.red(`; failing: ${p.failing.join(', ')}`) : ''}${p.conflicts > 0 ? colour.red(`; ${p.conflicts} node(s) hold a conflicting v${p.newest}`) : ''}`)
    }
    if (summary.stale.length > 0) print(colour.yellow(`not heard from recently: ${summary.stale.join(', ')}`))
    unadmittedLine()
    done(EXIT.OK)
  })
}
