import type { Register } from '../register.js'
import { CliError, EXIT, agentErrorExit, colour, print, printJson } from '../output.js'
import { agentEndpoint } from '../defaults.js'
import type { AgentStatus } from '../../node/agent.js'
import type { HistoryEntry } from '../../store/index.js'

/** What `status` and `history` take to find the agent: its socket by default (README, "The local API"). */
export const AGENT_FLAG = ['--agent <address>', 'the agent\'s API: a socket path, unix:PATH or http://HOST:PORT (default: the socket in the state directory)'] as const
export const STATE_FLAG = ['--state <dir>', 'the agent\'s state directory, where its socket and API token are (default: $GRAPEVINE_STATE, else the usual place)'] as const

/** GETs a route of the agent's API, with its errors as the CLI's (exit 69 unreachable, 77 not let in, 1 refused). */
async function getJson<T> (opts: { agent?: string, state?: string }, path: string): Promise<T> {
  const [endpoint, { agentJson }] = await Promise.all([agentEndpoint(opts), import('../../client/agent-api.js')])
  try {
    return await agentJson<T>(endpoint, path, AbortSignal.timeout(10_000))
  } catch (err) {
    const code = agentErrorExit(err)
    if (code !== undefined) throw new CliError((err as Error).message, code)
    throw err
  }
}

function short (s: string, n = 12): string {
  return s.length > n ? s.slice(0, n) : s
}

function table (rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join('  '))
}

/** A rollout record's stage change as history shows it: `v2 stage 2/4 (5%) running`. */
function rolloutText (detail: unknown): string | undefined {
  const r = (detail as { rollout?: { target: number, stage: number, stages: number, text: string, state: string, reason?: string, rolledBack?: boolean } } | undefined)?.rollout
  if (r === undefined) return undefined
  return `v${r.target} stage ${r.stage + 1}/${r.stages} (${r.text}) ${r.state}${r.rolledBack === true ? ', rolled back' : ''}${r.reason !== undefined ? ` — ${r.reason}` : ''}`
}

function outcomeText (outcome: string): string {
  if (outcome === 'failures' || outcome === 'changes-and-failures' || outcome === 'unhealthy') return colour.red(outcome)
  if (outcome === 'changes') return colour.green(outcome)
  return outcome
}

export const registerStatus: Register = (program, done) => {
  program.command('status')
    .description('Show an agent\'s peers, policies (version, hash, signer, last apply) and conflicts.')
    .option(...AGENT_FLAG)
    .option(...STATE_FLAG)
    .option('--json', 'print the status as JSON')
    .action(async (opts) => {
      const s = await getJson<AgentStatus>(opts, '/status')
      if (opts.json === true) { printJson(s); done(EXIT.OK); return }
      const tags = Object.entries(s.node.tags).map(([k, v]) => `${k}=${v}`).join(' ')
      print(`${colour.bold(s.node.name)}  ${s.node.id}`)
      print(`  mesh ${s.node.mesh}, root ${s.node.root}${tags !== '' ? `, tags ${tags}` : ''}`)
      // What an admin gives `publish --recipient PEERID=age1…` for a node its fleet view has not seen.
      if (s.node.recipient !== undefined) print(`  encryption key ${s.node.recipient}`)
      print(`  ${s.peers.length} peer${s.peers.length === 1 ? '' : 's'}; trust: ${s.trust.roots.length} root key${s.trust.roots.length === 1 ? '' : 's'}${s.trust.policyVersion !== undefined ? `, trust policy v${s.trust.policyVersion}` : ''}`)
      if (s.peers.length === 0) print(colour.yellow('  no peers: this node hears nothing from the mesh; check --bootstrap, the network and the firewall (the agent\'s log warns "cannot reach peer" for each address it tried)'))
      print()
      const refused = s.refused ?? []
      if (s.policies.length === 0) print(refused.length > 0 ? 'no policies held: what was offered was refused (below)' : 'no policies yet')
      else {
        const rows = [['POLICY', 'VERSION', 'HASH', 'SIGNER', 'LAST APPLY']]
        for (const p of s.policies) {
          const last = p.lastApply
          const applied = p.kind !== 'policy'
            ? p.kind
            : !p.targeted
                ? 'not targeted'
                : p.sealed !== undefined
                  ? colour.yellow(`sealed v${p.version}`) + (last !== undefined ? ` (last applied v${last.version} ${last.at})` : '')
                  : last === undefined
                  ? (p.heldBack !== undefined ? colour.yellow('held back') : 'pending')
                  : `${outcomeText(last.outcome)} v${last.version} (${last.changed} changed, ${last.failed} failed) ${last.at}${p.heldBack !== undefined ? colour.yellow(' (held back)') : ''}`
          rows.push([p.name, String(p.version), short(p.hash.replace('sha256:', '')), short(p.signer.replace('ed25519:', ''), 10), applied])
        }
        for (const line of table(rows)) print(line)
        for (const p of s.policies) for (const e of p.lastApply?.errors ?? []) print(colour.red(`  ${p.name} ${e.resource}: ${e.error}`))
        // A staged rollout keeps this node on another version than the newest it holds: say which and why.
        for (const p of s.policies) if (p.heldBack !== undefined) print(colour.yellow(`  ${p.name} v${p.version} held back: ${p.heldBack}`))
        // Not applied: its secrets are not sealed to this node's key.
        for (const p of s.policies) if (p.sealed !== undefined) print(colour.yellow(`  ${p.name} v${p.version} sealed: ${p.sealed}`))
      }
      if (s.conflicts.length > 0) {
        print()
        print(colour.yellow(`${s.conflicts.length} conflict${s.conflicts.length === 1 ? '' : 's'}:`))
        for (const c of s.conflicts) {
          print(c.kind === 'version'
            ? `  ${c.name} v${c.version}: two contents signed as one version; ${short(c.winner?.replace('sha256:', '') ?? '')} won over ${short(c.loser?.replace('sha256:', '') ?? '')}`
            : `  ${c.path}: managed by ${c.policies?.join(' and ')}; ${c.policies?.[0]} keeps it`)
        }
      }
      const forks = s.forks ?? []
      if (forks.length > 0) {
        print()
        print(colour.red(`${forks.length} fork${forks.length === 1 ? '' : 's'} held back (newer versions that do not extend the one held; \`grapevine resolve NAME --to ID\` ends one):`))
        for (const f of forks) print(`  ${f.name}: holds v${f.held.version} ${f.held.id}; offered v${f.offered.version} ${f.offered.id} by ${short(f.offered.signer.replace('ed25519:', ''), 10)} (${f.reason === 'jump' ? 'too far ahead' : 'not on this chain'})`)
      }
      if (refused.length > 0) {
        print()
        print(colour.red(`${refused.length} envelope${refused.length === 1 ? '' : 's'} refused lately (name and signer as the envelope claims them):`))
        for (const r of refused) print(`  ${r.name ?? '?'} signed by ${r.signer ?? '?'}: ${r.reason}, ${r.error} (${r.count}×, last ${r.last} by ${r.via})`)
        if (refused.some((r) => r.reason === 'untrusted')) print(`  an untrusted signer: is --trust the key the mesh's policies are signed with? this agent trusts ${s.trust.roots.join(', ')}`)
      }
      const untrusted = s.untrusted ?? []
      if (untrusted.length > 0) {
        print()
        print(colour.red(`${untrusted.length} polic${untrusted.length === 1 ? 'y' : 'ies'} no longer trusted (not applied; files left as they are):`))
        for (const u of untrusted) print(`  ${u.name} v${u.version}: ${u.error}`)
      }
      done(EXIT.OK)
    })

  program.command('history')
    .description('Show an agent\'s audit trail: what was accepted from whom, and every apply outcome.')
    .option(...AGENT_FLAG)
    .option(...STATE_FLAG)
    .option('--limit <n>', 'newest entries to show', '50')
    .option('--json', 'print entries as JSON')
    .action(async (opts) => {
      if (!/^[1-9]\d{0,15}$/.test(opts.limit)) throw new CliError(`--limit must be a positive integer: got "${opts.limit}"`, EXIT.USAGE)
      const entries = await getJson<HistoryEntry[]>(opts, `/history?limit=${opts.limit}`)
      if (opts.json === true) { printJson(entries); done(EXIT.OK); return }
      for (const e of entries) {
        const what = e.name !== undefined ? `${e.name}${e.version !== undefined ? ` v${e.version}` : ''}` : ''
        const rollout = e.event === 'accepted' ? rolloutText(e.detail) : undefined
        const extra = e.event === 'accepted'
          ? `via ${e.via ?? '?'} signed by ${short(e.signer?.replace('ed25519:', '') ?? '?', 10)}${rollout !== undefined ? `: ${rollout}` : ''}`
          : e.event === 'applied'
            ? `${outcomeText(e.outcome ?? '')} (${e.changed ?? 0} changed, ${e.failed ?? 0} failed)`
            : e.event === 'sealed' ? `not applied: ${e.error ?? 'its secrets are not sealed to this node'}` : ''
        print(`${e.at}  ${e.event.padEnd(8)}  ${what}  ${extra}`.trimEnd())
      }
      done(EXIT.OK)
    })
}
