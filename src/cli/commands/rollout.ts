import type { Command as BaseCommand } from 'commander'
import type { Register } from '../register.js'
import { CliError, EXIT, colour, print, printJson } from '../output.js'
import { parseDuration } from '../duration.js'
import { connect, meshOptions, staleAfterMs, type MeshFlags, EXIT_CONFLICT_LOST, EXIT_INTERRUPTED, EXIT_UNKNOWN_NAME } from './mesh.js'
import type { PublishFlags } from './publish.js'
import { sealBeforePublish, type SealReport } from './sealing.js'
import type { ConfigPolicy, Policy } from '../../policy/index.js'
import type { DriveResult, HeldRecord, MeshClient, SealRequest, StageView } from '../../client/index.js'
import type { MaxFailures, RolloutRecord, StageSpec } from '../../rollout/index.js'
import { MAX_REASON_CHARS } from '../../rollout/constants.js'

/** A gate failed: the rollout halted (README, "Exit codes"). Nodes beyond the stage never applied the version. */
export const EXIT_ROLLOUT_HALTED = 9
/** The rollout did not finish under this process: an admin paused or aborted it, or another admin's process took it over. */
export const EXIT_ROLLOUT_STOPPED = 10


export interface RolloutFlags {
  rollout?: string
  bake?: string
  maxFailures?: string
  stageTimeout?: string
  autoRollback?: boolean
}

/** The stage timeout when `--stage-timeout` is not given. */
export const DEFAULT_STAGE_TIMEOUT_TEXT = '10m'

/** The rollout flags `publish` takes (README, "Staged rollouts"). */
export function rolloutFlags (cmd: BaseCommand): BaseCommand {
  return cmd
    .option('--rollout <stages>', 'publish in stages: node counts, percentages of the targeted nodes or tag selectors, ending at 100% (e.g. 1,5%,25%,100% or role=canary,10%,100%); this process drives the stages to the end')
    .option('--bake <duration>', 'with --rollout, how long a stage\'s nodes must stay healthy before the next stage (e.g. 60s, 10m; default 0)')
    .option('--max-failures <n>', 'with --rollout, failed or unhealthy nodes a stage may have: 0, a count, or a percentage of the stage (default 0)')
    .option('--stage-timeout <duration>', `with --rollout, halt a stage whose nodes have not all reported after this long (default ${DEFAULT_STAGE_TIMEOUT_TEXT})`)
    .option('--auto-rollback', 'with --rollout, a halted stage\'s nodes return to the previous version')
}

interface Plan {
  stages: StageSpec[]
  maxFailures: MaxFailures
  bakeMs: number
  stageTimeoutMs: number
  autoRollback: boolean
}

function durationFlag (flag: string, text: string | undefined, fallback: string): number {
  const ms = parseDuration(text ?? fallback)
  if (ms === undefined) throw new CliError(`${flag} expects a duration like 30s, 10m or 1h: got "${text}"`, EXIT.USAGE)
  return ms
}

/** Reads the rollout flags, before anything is signed or sent; undefined without --rollout. Exit 64 on a bad value. */
export async function rolloutPlan (opts: RolloutFlags & { expect?: number }): Promise<Plan | undefined> {
  if (opts.rollout === undefined) {
    const stray = (['bake', 'maxFailures', 'stageTimeout', 'autoRollback'] as const).find((k) => opts[k] !== undefined)
    if (stray !== undefined) throw new CliError(`--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} only means something with --rollout`, EXIT.USAGE)
    return undefined
  }
  if (opts.expect !== undefined) throw new CliError('--expect does not go with --rollout: each stage waits for its own nodes', EXIT.USAGE)
  const { parseStages, parseMaxFailures } = await import('../../rollout/index.js')
  try {
    const plan: Plan = {
      stages: parseStages(opts.rollout),
      maxFailures: parseMaxFailures(opts.maxFailures ?? '0'),
      bakeMs: durationFlag('--bake', opts.bake, '0'),
      stageTimeoutMs: durationFlag('--stage-timeout', opts.stageTimeout, DEFAULT_STAGE_TIMEOUT_TEXT),
      autoRollback: opts.autoRollback === true
    }
    // The record refuses more (docs/rollout.md); said here as the flag it came from.
    if (plan.bakeMs > WEEK_MS) throw new CliError(`--bake: at most 7d: got "${opts.bake}"`, EXIT.USAGE)
    if (plan.stageTimeoutMs <= 0 || plan.stageTimeoutMs > WEEK_MS) throw new CliError(`--stage-timeout: more than 0 and at most 7d: got "${opts.stageTimeout}"`, EXIT.USAGE)
    return plan
  } catch (err) {
    if (err instanceof CliError) throw err
    throw new CliError((err as Error).message, EXIT.USAGE)
  }
}

const WEEK_MS = 7 * 24 * 3600 * 1000


function plural (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** One line for the current stage: its nodes and what they said. */
export function stageLine (v: StageView): string {
  const failed = v.failed.length > 0 ? colour.red(`${v.failed.length} failed`) : '0 failed'
  const bake = v.gate.verdict === 'wait' && v.gate.bakeUntil !== undefined && v.waiting.length === 0 ? `, baking ${Math.max(0, Math.ceil((v.gate.bakeUntil - Date.now()) / 1000))} s more` : ''
  const stale = v.stale > 0 ? colour.yellow(`, ${v.stale} stale (not waited for)`) : ''
  return `stage ${v.stage + 1}/${v.stages} (${v.text}): ${plural(v.members, 'node')} — ${colour.green(`${v.applied} applied`)}, ${v.healthy} healthy, ${failed}, ${v.waiting.length} waiting${stale}${bake}; ${v.heldBack} held back`
}

/** Each failed or unhealthy node of the stage, and what failed: the resource or check and its error. */
export function stageFailureLines (v: StageView): string[] {
  const lines: string[] = []
  for (const f of v.failed) {
    lines.push(`  ${f.outcome === 'unhealthy' ? 'UNHEALTHY' : 'FAILED'} ${f.name} ${f.id.slice(-8)}`)
    for (const r of f.failures ?? []) lines.push(`    ${r.resource}: ${r.error.replace(/\n/g, '\n      ')}`)
  }
  return lines
}

function recordLine (r: RolloutRecord): string {
  const where = `stage ${r.stage + 1}/${r.stages.length} (${r.stages[r.stage]?.text ?? ''})`
  switch (r.state) {
    case 'done': return colour.green(`rollout of ${r.policy} v${r.target.version} done: every stage passed`)
    case 'halted': return colour.red(`rollout of ${r.policy} v${r.target.version} HALTED: ${r.reason ?? where}${r.rolledBack ? `; rolled back: its nodes returned to v${r.previous?.version ?? '?'}` : ''}`)
    case 'aborted': return colour.yellow(`rollout of ${r.policy} v${r.target.version} aborted at ${where}: ${r.reason ?? ''}${r.rolledBack ? `; rolled back to v${r.previous?.version ?? '?'}` : ''}`)
    case 'paused': return colour.yellow(`rollout of ${r.policy} v${r.target.version} paused at ${where}${r.reason !== undefined ? `: ${r.reason}` : ''}; \`grapevine rollout resume ${r.policy}\` continues it`)
    case 'running': return `rollout of ${r.policy} v${r.target.version}: ${where} started`
  }
}

/** The exit code a drive's end means. */
function driveExit (end: DriveResult['end']): number {
  switch (end) {
    case 'done': return EXIT.OK
    case 'halted': return EXIT_ROLLOUT_HALTED
    case 'interrupted': return EXIT_INTERRUPTED
    default: return EXIT_ROLLOUT_STOPPED
  }
}

/**
 * Runs the evaluator for a rollout and reports it: a line per stage change; with `--wait`, the
 * current stage's counts live (a line whenever they change when not on a terminal) and its
 * failures. Ctrl-C signs a pause first (exit 130), so the rollout is seen to stand.
 */
async function follow (client: MeshClient, held: HeldRecord, opts: { key: string, wait?: boolean, json?: boolean, staleAfter?: string }, extra: Record<string, unknown>, done: (code: number) => void): Promise<void> {
  const { readSigningKey } = await import('../../envelope/index.js')
  const { driveRollout } = await import('../../client/index.js')
  const key = await readSigningKey(opts.key)
  const stop = new AbortController()
  const onInt = (): void => { stop.abort() }
  process.once('SIGINT', onInt)
  const live = opts.wait === true && process.stdout.isTTY === true && opts.json !== true
  let lastLine = ''
  const clearLive = (): void => { if (live && lastLine !== '') { process.stdout.write('\r\x1b[2K'); lastLine = '' } }
  let result: DriveResult
  try {
    result = await driveRollout(client, held, {
      key,
      signal: stop.signal,
      ...(opts.staleAfter !== undefined ? { staleAfterMs: staleAfterMs(opts.staleAfter) } : {}),
      onView: (v) => {
        if (opts.wait !== true || opts.json === true) return
        const line = stageLine(v)
        if (line === lastLine) return
        if (live) process.stdout.write(`\r\x1b[2K${line}`)
        else print(line)
        lastLine = line
      },
      onStage: ({ record: r }, v) => {
        if (opts.json === true) return
        clearLive()
        if (v !== undefined && opts.wait === true) {
          const line = stageLine(v)
          // Already on screen when not on a terminal (printed as it changed); a live line was cleared.
          if (live || line !== lastLine) print(line)
          for (const l of stageFailureLines(v)) print(colour.red(l))
        }
        print(recordLine(r))
      }
    })
  } finally {
    process.off('SIGINT', onInt)
  }
  clearLive()
  const code = driveExit(result.end)
  const r = result.record.record
  if (opts.json === true) {
    printJson({ ...extra, rollout: { ...r, record: { version: result.record.envelope.version, id: result.record.envelope.id, signer: result.record.envelope.signer } }, end: result.end, history: result.history, ...(result.view !== undefined ? { stage: result.view } : {}), exitCode: code })
  } else if (result.end === 'taken-over') {
    print(colour.yellow(`stopped evaluating: the mesh's newest ${result.record.envelope.name} (v${result.record.envelope.version}) was signed by ${result.record.envelope.signer}, not by this process; it says: ${r.state} at stage ${r.stage + 1}/${r.stages.length}`))
  } else if (result.end === 'paused' || result.end === 'aborted') {
    print(recordLine(r))
  } else if (result.end === 'halted' && opts.wait !== true && result.view !== undefined) {
    for (const l of stageFailureLines(result.view)) print(colour.red(l))
  }
  done(code)
}

/** `publish --rollout`: starts the rollout and drives it to its end (README, "Staged rollouts"). */
export async function publishStaged (policy: Policy, plan: Plan, opts: PublishFlags & RolloutFlags, done: (code: number) => void, secrets?: SealRequest): Promise<void> {
  if (policy.kind !== 'policy') throw new CliError(`--rollout stages a policy; a ${policy.kind} policy takes effect on every node at once`, EXIT.USAGE)
  if (opts.staleAfter !== undefined) staleAfterMs(opts.staleAfter)
  const { readSigningKey } = await import('../../envelope/index.js')
  const { startRollout, PolicyUnchangedError, PublishError, RolloutConflictError } = await import('../../client/index.js')
  const key = await readSigningKey(opts.key)
  const client = await connect(opts)
  try {
    // Sealed as a plain publish seals (sealing.ts): the same recipients, printed first.
    let sealing: SealReport | undefined
    if (secrets !== undefined) ({ policy, report: sealing } = await sealBeforePublish(client, policy, secrets, opts.json === true))
    let started
    try {
      started = await startRollout(client, { policy: policy as ConfigPolicy, key, ...plan, version: opts.version, force: opts.force, ...(opts.staleAfter !== undefined ? { staleAfterMs: staleAfterMs(opts.staleAfter) } : {}) })
    } catch (err) {
      if (err instanceof PolicyUnchangedError) {
        if (opts.json === true) printJson({ name: err.policy, unchanged: true, version: err.held.version, exitCode: EXIT.OK })
        else print(`unchanged, nothing published: ${err.policy} v${err.held.version} already has this content; --force REASON publishes it again as a new version`)
        done(EXIT.OK)
        return
      }
      if (err instanceof RolloutConflictError) throw new CliError(err.message, EXIT_CONFLICT_LOST)
      if (err instanceof PublishError) throw new CliError(err.message, /reach|answer/.test(err.message) ? EXIT.UNAVAILABLE : EXIT.INVALID)
      if ((err as Error).name === 'NoTargetedNodesError' || (err as Error).name === 'InvalidStagesError') throw new CliError((err as Error).message, EXIT.USAGE)
      throw err
    }
    const env = started.published.envelope
    const r = started.record.record
    if (opts.json !== true) {
      print(`published ${colour.bold(env.name)} v${env.version} ${env.hash.slice(0, 19)} staged${started.published.previous !== undefined ? ` (mesh had v${started.published.previous.version}; nodes keep ${r.previous !== undefined ? `v${r.previous.version}` : 'nothing'} until their stage)` : ''}, confirmed by ${plural(started.published.confirmedBy.length, 'peer')}`)
      print(`rollout in ${plural(r.stages.length, 'stage')} over ${plural(started.targeted, 'targeted node')} known: ${r.stages.map((s, i) => `${s.text} (${started.sizes[i] ?? 0})`).join(' → ')}; bake ${r.bakeMs / 1000} s, max failures ${opts.maxFailures ?? '0'}, stage timeout ${r.stageTimeoutMs / 1000} s${r.autoRollback ? ', auto-rollback' : ''}`)
    }
    if (started.published.conflict !== undefined && started.published.conflict.winner !== env.hash) {
      throw new CliError(`conflict: another admin published different content as ${env.name} v${env.version}, and theirs wins on every node; the rollout record names ours, so no node follows it. Publish again.`, EXIT_CONFLICT_LOST)
    }
    await follow(client, started.record, opts, { name: env.name, version: env.version, hash: env.hash, id: env.id, signer: env.signer, ...(sealing !== undefined ? { secrets: sealing } : {}) }, done)
  } finally {
    await client.close()
  }
}

function stalled (r: RolloutRecord, signedAt: number, now: number): boolean {
  return r.state === 'running' && now - signedAt > r.bakeMs + r.stageTimeoutMs
}

export const registerRollout: Register = (program, done) => {
  const rollout = program.command('rollout')
    .description('Show and steer staged rollouts (publish --rollout starts one): status, pause, resume, abort, from any admin peer.')

  const status = rollout.command('status')
    .description('Every rollout the mesh knows: stage, node counts, health; or one policy\'s.')
    .argument('[name]', 'the policy rolled out, e.g. web/nginx')
    .option('--json', 'print the rollouts as JSON')
  meshOptions(status as unknown as BaseCommand)
  status.action(async (name: string | undefined, opts: Record<string, unknown>) => {
    const flags = opts as MeshFlags & { json?: boolean }
    const { readRecord, readTarget, GateReports, stageView } = await import('../../client/index.js')
    const { ROLLOUT_NAME_PREFIX } = await import('../../rollout/index.js')
    const client = await connect(flags)
    try {
      const names = name !== undefined
        ? [name]
        : (await client.heads()).filter((h) => h.name.startsWith(ROLLOUT_NAME_PREFIX)).map((h) => h.name.slice(ROLLOUT_NAME_PREFIX.length))
      const fleet = await client.fleet()
      const now = Date.now()
      const out: unknown[] = []
      for (const policy of names) {
        const held = await readRecord(client, policy)
        if (held === undefined) throw new CliError(`the mesh holds no rollout of ${policy} (\`grapevine rollout status\` lists the rollouts it knows)`, EXIT_UNKNOWN_NAME)
        const r = held.record
        let view: StageView | undefined
        let why: string | undefined
        try {
          const target = await readTarget(client, r)
          const reports = new GateReports(r.policy, { version: target.version, hash: target.hash })
          reports.add(fleet)
          view = stageView(r, target.policy, fleet, reports, now)
        } catch (err) {
          why = (err as Error).message
        }
        const isStalled = stalled(r, Date.parse(held.envelope.issuedAt), now)
        if (flags.json === true) {
          out.push({ ...r, record: { version: held.envelope.version, id: held.envelope.id, signer: held.envelope.signer, signedAt: held.envelope.issuedAt }, stalled: isStalled, ...(view !== undefined ? { current: view } : {}), ...(why !== undefined ? { error: why } : {}) })
          continue
        }
        print(`${colour.bold(r.policy)} v${r.target.version}: ${r.state}, stage ${r.stage + 1}/${r.stages.length} (${r.stages[r.stage]?.text ?? ''}) since ${r.stageStartedAt.replace('T', ' ').slice(0, 19)}; record v${held.envelope.version} signed by ${held.envelope.signer}`)
        if (r.reason !== undefined) print(`  reason: ${r.reason}${r.rolledBack ? ` (rolled back to v${r.previous?.version ?? '?'})` : ''}`)
        if (view !== undefined) {
          print(`  stages: ${r.stages.map((s, i) => `${s.text} (${view.sizes[i] ?? 0})`).join(' → ')} of ${plural(view.targeted, 'targeted node')}`)
          print(`  ${stageLine(view)}`)
          for (const l of stageFailureLines(view)) print(colour.red(`  ${l}`))
        } else if (why !== undefined) print(colour.yellow(`  no counts: ${why}`))
        if (isStalled) print(colour.yellow(`  stalled: no record signed for ${Math.round((now - Date.parse(held.envelope.issuedAt)) / 60_000)} min (more than bake + stage timeout); its evaluator may be gone: \`grapevine rollout resume ${r.policy} --key FILE\` takes it over`))
      }
      if (flags.json === true) printJson(out)
      else if (names.length === 0) print('no rollouts known')
      done(EXIT.OK)
    } finally {
      await client.close()
    }
  })

  const act = (verb: 'pause' | 'resume' | 'abort', description: string): BaseCommand => {
    const cmd = rollout.command(verb)
      .description(description)
      .argument('<name>', 'the policy rolled out, e.g. web/nginx')
      .requiredOption('--key <file>', 'admin private key (an admin in scope for the policy)')
      .option('--json', 'print the result as JSON')
    meshOptions(cmd as unknown as BaseCommand)
    return cmd as unknown as BaseCommand
  }

  /** `--reason`: what the record can carry (checked before anything is signed or sent). */
  const checkReason = (reason: string | undefined): void => {
    if (reason !== undefined && (reason.length === 0 || reason.length > MAX_REASON_CHARS)) throw new CliError(`--reason: 1 to ${MAX_REASON_CHARS} characters, the most a rollout record keeps: got ${reason.length}`, EXIT.USAGE)
  }

  const signAction = async (name: string, flags: MeshFlags & { key: string, json?: boolean }, action: (at: number) => import('../../rollout/index.js').RolloutAction): Promise<{ client: MeshClient, held: HeldRecord }> => {
    const { readSigningKey } = await import('../../envelope/index.js')
    const { actOnRollout, RolloutNotFoundError, RolloutConflictError } = await import('../../client/index.js')
    const key = await readSigningKey(flags.key)
    const client = await connect(flags)
    try {
      return { client, held: await actOnRollout(client, name, key, action(Date.now())) }
    } catch (err) {
      await client.close()
      if (err instanceof RolloutNotFoundError) throw new CliError(err.message, EXIT_UNKNOWN_NAME)
      if (err instanceof RolloutConflictError) throw new CliError(err.message, EXIT_CONFLICT_LOST)
      if ((err as Error).name === 'RolloutTransitionError') throw new CliError((err as Error).message, EXIT.INVALID)
      throw err
    }
  }

  const report = (held: HeldRecord, json: boolean | undefined): void => {
    if (json === true) printJson({ rollout: { ...held.record, record: { version: held.envelope.version, id: held.envelope.id, signer: held.envelope.signer } }, exitCode: EXIT.OK })
    else print(`${recordLine(held.record)} (record v${held.envelope.version})`)
  }

  const pause = act('pause', 'Stop a running rollout where it stands: no stage starts until someone resumes it. Nodes keep what they enforce.')
  pause.option('--reason <text>', 'why, for the record and the audit trail')
  pause.action(async (name: string, opts: Record<string, unknown>) => {
    const flags = opts as unknown as MeshFlags & { key: string, json?: boolean, reason?: string }
    checkReason(flags.reason)
    const { client, held } = await signAction(name, flags, (at) => ({ type: 'pause', at, ...(flags.reason !== undefined ? { reason: flags.reason } : {}) }))
    await client.close()
    report(held, flags.json)
    done(EXIT.OK)
  })

  const resume = act('resume', 'Continue a paused rollout, or take over one whose evaluator is gone, from any admin peer; this process then drives it to its end.')
  resume.option('--wait', 'show the current stage\'s counts live')
    .option('--stale-after <seconds>', 'a stage\'s node not heard from for this long, that has not reported, is not waited for (default 600)')
  resume.action(async (name: string, opts: Record<string, unknown>) => {
    const flags = opts as unknown as MeshFlags & { key: string, json?: boolean, wait?: boolean, staleAfter?: string }
    if (flags.staleAfter !== undefined) staleAfterMs(flags.staleAfter)
    const { client, held } = await signAction(name, flags, (at) => ({ type: 'resume', at }))
    try {
      if (flags.json !== true) print(`resumed ${held.record.policy} v${held.record.target.version} at stage ${held.record.stage + 1}/${held.record.stages.length} (record v${held.envelope.version}); this process drives it now`)
      await follow(client, held, flags, {}, done)
    } finally {
      await client.close()
    }
  })

  const abort = act('abort', 'End a rollout for good: nodes not yet included never apply its version; with --rollback, the included ones return to the previous version.')
  abort.option('--rollback', 'the nodes that applied the version return to the previous one')
    .option('--reason <text>', 'why, for the record and the audit trail', 'aborted by an admin')
  abort.action(async (name: string, opts: Record<string, unknown>) => {
    const flags = opts as unknown as MeshFlags & { key: string, json?: boolean, rollback?: boolean, reason: string }
    checkReason(flags.reason)
    const { client, held } = await signAction(name, flags, (at) => ({ type: 'abort', at, reason: flags.reason, rollback: flags.rollback === true }))
    await client.close()
    report(held, flags.json)
    done(EXIT.OK)
  })
}
