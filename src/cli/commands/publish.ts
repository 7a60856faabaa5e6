import { readFile } from 'node:fs/promises'
import { Option } from '@commander-js/extra-typings'
import type { Command as BaseCommand } from 'commander'
import type { Register } from '../register.js'
import { CliError, EXIT, colour, print, printJson } from '../output.js'
import { collect } from '../defaults.js'
import type { Policy } from '../../policy/index.js'
import type { MeshClient, Progress, PublishResult } from '../../client/index.js'
import type { FleetNode } from '../../receipt/index.js'

/** publish/rollback/retire exit codes beyond the shared ones (README, "Exit codes"). */
export const EXIT_CONFLICT_LOST = 3
export const EXIT_NODE_FAILURES = 4
export const EXIT_TIMEOUT = 5

interface MeshFlags {
  bootstrap?: string[]
  agent?: string
  mesh?: string
  swarmKey?: string
}

function meshOptions (cmd: BaseCommand): BaseCommand {
  cmd.option('--bootstrap <multiaddr>', 'join the mesh through this agent (repeatable)', collect)
    .option('--agent <url>', 'go through this agent\'s local API instead (e.g. http://127.0.0.1:7411)')
    .option('--mesh <name>', 'mesh name (default "default")')
    .option('--swarm-key <file>', 'pre-shared swarm key of a private mesh')
  return cmd
}

async function connect (opts: MeshFlags): Promise<MeshClient> {
  if ((opts.bootstrap === undefined || opts.bootstrap.length === 0) && opts.agent === undefined) {
    throw new CliError('give --bootstrap MULTIADDR (any agent of the mesh) or --agent URL', EXIT.USAGE)
  }
  const { connectMesh, PublishError } = await import('../../client/index.js')
  try {
    return await connectMesh({
      bootstrap: opts.bootstrap,
      agent: opts.agent,
      mesh: opts.mesh,
      swarmKey: opts.swarmKey !== undefined ? new Uint8Array(await readFile(opts.swarmKey)) : undefined
    })
  } catch (err) {
    if (err instanceof PublishError) throw new CliError(err.message, EXIT.UNAVAILABLE)
    throw err
  }
}

function parseVersion (flag: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`${flag} must be a positive integer: got "${v}"`, EXIT.USAGE)
    return Number(v)
  }
}

function tagText (tags: Record<string, string>): string {
  return Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(',')
}

function progressLine (name: string, version: number, p: Progress): string {
  const targeted = p.applied.length + p.unchanged.length + p.failed.length + p.pending.length
  return `${name} v${version}: ${p.applied.length + p.unchanged.length + p.failed.length}/${targeted} reported — ` +
    `${colour.green(`${p.applied.length} applied`)}, ${p.unchanged.length} unchanged, ` +
    `${p.failed.length > 0 ? colour.red(`${p.failed.length} failed`) : '0 failed'}, ${p.notTargeted.length} not targeted` +
    `${p.pending.length > 0 ? `, ${p.pending.length} waiting` : ''}`
}

interface PublishFlags extends MeshFlags {
  key: string
  version?: number
  wait?: boolean
  timeout: string
  expect?: number
  json?: boolean
}

/** Publishes and, with --wait, follows the receipts: shared by publish, rollback and retire. */
async function publishAndReport (policy: Policy, opts: PublishFlags, done: (code: number) => void, verb = 'published'): Promise<void> {
  const { readSigningKey } = await import('../../envelope/index.js')
  const key = await readSigningKey(opts.key)
  const timeoutMs = Number(opts.timeout) * 1000
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new CliError(`--timeout must be a positive number of seconds: got "${opts.timeout}"`, EXIT.USAGE)
  const client = await connect(opts)
  const { publishPolicy, waitForFleet, PublishError } = await import('../../client/index.js')
  try {
    let result: PublishResult
    try {
      result = await publishPolicy(client, { policy, key, version: opts.version })
    } catch (err) {
      if (err instanceof PublishError) throw new CliError(err.message, /reach|answer/.test(err.message) ? EXIT.UNAVAILABLE : EXIT.INVALID)
      throw err
    }
    const env = result.envelope
    const lost = result.conflict !== undefined && result.conflict.winner !== env.hash
    if (opts.json !== true) {
      print(`${verb} ${colour.bold(env.name)} v${env.version} ${env.hash.slice(0, 19)}${result.previous !== undefined ? ` (mesh had v${result.previous.version})` : ''}, confirmed by ${result.confirmedBy.length} peer${result.confirmedBy.length === 1 ? '' : 's'}`)
      if (lost) print(colour.red(`conflict: another admin published different content as v${env.version}, and theirs (${result.conflict?.winner.slice(0, 19)}) wins on every node; publish again to supersede it`))
    }
    let progress: Progress | undefined
    let timedOut = false
    if (opts.wait === true && !lost) {
      const live = process.stdout.isTTY === true && opts.json !== true
      const waited = await waitForFleet(client, env, {
        timeoutMs,
        expect: opts.expect,
        onProgress: (p) => { if (live) process.stdout.write(`\r\x1b[2K${progressLine(env.name, env.version, p)}`) }
      })
      progress = waited.progress
      timedOut = waited.timedOut
      if (live) process.stdout.write('\n')
      else if (opts.json !== true) print(progressLine(env.name, env.version, progress))
    }
    const superseded = (progress?.superseded.length ?? 0) > 0
    const conflictLater = (progress?.conflicting.length ?? 0) > 0
    const code = lost || conflictLater
      ? EXIT_CONFLICT_LOST
      : (progress?.failed.length ?? 0) > 0 ? EXIT_NODE_FAILURES : timedOut ? EXIT_TIMEOUT : EXIT.OK
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
        ...(progress !== undefined ? { progress, timedOut } : {}),
        exitCode: code
      })
    } else if (progress !== undefined) {
      for (const f of progress.failed) {
        print(colour.red(`  FAILED ${f.name} (${tagText(f.tags) || 'no tags'}) ${f.id.slice(-8)}`))
        for (const r of f.failures ?? []) print(colour.red(`    ${r.resource}: ${r.error}`))
      }
      if (conflictLater) print(colour.red(`conflict: ${progress.conflicting.length} node(s) hold other content as v${env.version}; the other envelope won`))
      if (superseded) print(colour.yellow(`${progress.superseded.length} node(s) already run a newer version`))
      if (timedOut) print(colour.yellow(`timed out after ${opts.timeout} s; still waiting on: ${progress.pending.map((n) => n.name).join(', ')}`))
      if (progress.known === 0) print(colour.yellow('no nodes are known yet (they announce themselves within a few seconds of joining)'))
    }
    done(code)
  } finally {
    await client.close()
  }
}

function publishFlags (cmd: BaseCommand): BaseCommand {
  meshOptions(cmd)
  cmd.requiredOption('--key <file>', 'admin private key')
    .option('--wait', 'follow the nodes\' receipts until every known targeted node reported')
    .option('--timeout <seconds>', 'with --wait, stop waiting after this long', '60')
    .addOption(new Option('--expect <n>', 'with --wait, done once this many targeted nodes reported').argParser(parseVersion('--expect')) as never)
    .option('--json', 'print the result as JSON')
  return cmd
}

export const registerPublish: Register = (program, done) => {
  const publish = program.command('publish')
    .description('Sign a policy as the next version and publish it through any agent; --wait shows which nodes applied it.')
    .argument('<policy>', 'policy file (YAML or JSON)')
    .addOption(new Option('--version <n>', 'sign exactly this version (default: next after the mesh\'s newest)').argParser(parseVersion('--version')))
  publishFlags(publish as unknown as BaseCommand)
  publish.action(async (file: string, opts: Record<string, unknown>) => {
    const { loadPolicyFile } = await import('../../policy/load.js')
    const policy = await loadPolicyFile(file)
    await publishAndReport(policy, opts as unknown as PublishFlags, done)
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
    await publishAndReport(validatePolicyObject(old.policy), flags, done, `rolled back to v${flags.to}'s content:`)
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
  meshOptions(fleet as unknown as BaseCommand)
  fleet.action(async (opts: Record<string, unknown>) => {
    const flags = opts as MeshFlags & { json?: boolean }
    const client = await connect(flags)
    let nodes: FleetNode[]
    try {
      nodes = await client.fleet()
    } finally {
      await client.close()
    }
    const { fleetSummary } = await import('../../client/index.js')
    const summary = fleetSummary(nodes, Date.now())
    if (flags.json === true) { printJson({ nodes, ...summary }); done(EXIT.OK); return }
    if (nodes.length === 0) { print('no nodes known yet'); done(EXIT.OK); return }
    const names = summary.policies.map((p) => p.name)
    const rows = [['NODE', 'TAGS', 'LAST SEEN', ...names]]
    for (const n of nodes) {
      rows.push([n.name, tagText(n.tags), n.lastSeen.replace('T', ' ').slice(0, 19), ...names.map((name) => {
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
    done(EXIT.OK)
  })
}
