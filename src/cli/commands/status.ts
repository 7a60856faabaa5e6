import type { Register } from '../register.js'
import { CliError, EXIT, colour, print, printJson } from '../output.js'
import { DEFAULT_AGENT_URL } from './agent.js'
import type { AgentStatus } from '../../node/agent.js'
import type { HistoryEntry } from '../../store/index.js'

export async function getJson<T> (url: string): Promise<T> {
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    const cause = (err as Error).cause as Error | undefined
    throw new CliError(`cannot reach the agent at ${url}: ${cause?.message ?? (err as Error).message} (is it running? see --agent)`, EXIT.UNAVAILABLE)
  }
  if (!res.ok) throw new CliError(`${url}: HTTP ${res.status}`, EXIT.UNAVAILABLE)
  return await res.json() as T
}

function short (s: string, n = 12): string {
  return s.length > n ? s.slice(0, n) : s
}

function table (rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join('  '))
}

function outcomeText (outcome: string): string {
  if (outcome === 'failures' || outcome === 'changes-and-failures') return colour.red(outcome)
  if (outcome === 'changes') return colour.green(outcome)
  return outcome
}

export const registerStatus: Register = (program, done) => {
  program.command('status')
    .description('Show an agent\'s peers, policies (version, hash, signer, last apply) and conflicts.')
    .option('--agent <url>', 'agent API URL', DEFAULT_AGENT_URL)
    .option('--json', 'print the status as JSON')
    .action(async (opts) => {
      const s = await getJson<AgentStatus>(`${opts.agent.replace(/\/$/, '')}/status`)
      if (opts.json === true) { printJson(s); done(EXIT.OK); return }
      const tags = Object.entries(s.node.tags).map(([k, v]) => `${k}=${v}`).join(' ')
      print(`${colour.bold(s.node.name)}  ${s.node.id}`)
      print(`  mesh ${s.node.mesh}, root ${s.node.root}${tags !== '' ? `, tags ${tags}` : ''}`)
      print(`  ${s.peers.length} peer${s.peers.length === 1 ? '' : 's'}; trust: ${s.trust.roots.length} root key${s.trust.roots.length === 1 ? '' : 's'}${s.trust.policyVersion !== undefined ? `, trust policy v${s.trust.policyVersion}` : ''}`)
      print()
      if (s.policies.length === 0) print('no policies yet')
      else {
        const rows = [['POLICY', 'VERSION', 'HASH', 'SIGNER', 'LAST APPLY']]
        for (const p of s.policies) {
          const last = p.lastApply
          const applied = p.kind !== 'policy'
            ? p.kind
            : !p.targeted
                ? 'not targeted'
                : last === undefined
                  ? 'pending'
                  : `${outcomeText(last.outcome)} v${last.version} (${last.changed} changed, ${last.failed} failed) ${last.at}`
          rows.push([p.name, String(p.version), short(p.hash.replace('sha256:', '')), short(p.signer.replace('ed25519:', ''), 10), applied])
        }
        for (const line of table(rows)) print(line)
        for (const p of s.policies) for (const e of p.lastApply?.errors ?? []) print(colour.red(`  ${p.name} ${e.resource}: ${e.error}`))
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
      done(EXIT.OK)
    })

  program.command('history')
    .description('Show an agent\'s audit trail: what was accepted from whom, and every apply outcome.')
    .option('--agent <url>', 'agent API URL', DEFAULT_AGENT_URL)
    .option('--limit <n>', 'newest entries to show', '50')
    .option('--json', 'print entries as JSON')
    .action(async (opts) => {
      const entries = await getJson<HistoryEntry[]>(`${opts.agent.replace(/\/$/, '')}/history?limit=${encodeURIComponent(opts.limit)}`)
      if (opts.json === true) { printJson(entries); done(EXIT.OK); return }
      for (const e of entries) {
        const what = e.name !== undefined ? `${e.name}${e.version !== undefined ? ` v${e.version}` : ''}` : ''
        const extra = e.event === 'accepted'
          ? `via ${e.via ?? '?'} signed by ${short(e.signer?.replace('ed25519:', '') ?? '?', 10)}`
          : e.event === 'applied' ? `${outcomeText(e.outcome ?? '')} (${e.changed ?? 0} changed, ${e.failed ?? 0} failed)` : ''
        print(`${e.at}  ${e.event.padEnd(8)}  ${what}  ${extra}`.trimEnd())
      }
      done(EXIT.OK)
    })
}
