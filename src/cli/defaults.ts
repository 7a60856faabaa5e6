import { homedir } from 'node:os'
import { join } from 'node:path'
import { access, readFile } from 'node:fs/promises'
import type { AgentEndpoint } from '../client/agent-api.js'
import { CliError, EXIT } from './output.js'

/**
 * Where node state lives unless --state says otherwise: $GRAPEVINE_STATE, then
 * /var/lib/grapevine for root (as a system service), else ~/.local/state/grapevine.
 */
export function defaultStateDir (): string {
  const env = process.env.GRAPEVINE_STATE
  if (env !== undefined && env !== '') return env
  if (typeof process.getuid === 'function' && process.getuid() === 0) return '/var/lib/grapevine'
  return join(homedir(), '.local', 'state', 'grapevine')
}

/** The system agent's state directory (docs/grapevine.service). */
const SYSTEM_STATE_DIR = '/var/lib/grapevine'

/**
 * The agent API a command talks to: `--agent` (a socket path, `unix:PATH`, `http://HOST:PORT`
 * or `HOST:PORT`), else the Unix socket in the state directory: `--state`, `$GRAPEVINE_STATE`,
 * else this user's default or, when that has no socket, the system agent's. Over TCP the
 * bearer token is read from the state directory's `api.token` when this user may read it.
 */
export async function agentEndpoint (opts: { agent?: string, state?: string }): Promise<AgentEndpoint> {
  const [{ parseAgentAddress }, { apiSocketPath, apiTokenPath }] = await Promise.all([import('../client/agent-api.js'), import('../node/api-access.js')])
  const chosen = opts.state ?? (process.env.GRAPEVINE_STATE !== undefined && process.env.GRAPEVINE_STATE !== '' ? process.env.GRAPEVINE_STATE : undefined)
  if (opts.agent === undefined) {
    const candidates = chosen !== undefined ? [chosen] : [...new Set([defaultStateDir(), SYSTEM_STATE_DIR])]
    for (const dir of candidates) {
      if (await access(apiSocketPath(dir)).then(() => true, () => false)) return parseAgentAddress(`unix:${apiSocketPath(dir)}`)
    }
    return parseAgentAddress(`unix:${apiSocketPath(candidates[0] as string)}`)
  }
  let endpoint: AgentEndpoint
  try {
    endpoint = parseAgentAddress(opts.agent)
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.USAGE)
  }
  if (endpoint.url === undefined) return endpoint
  // This host's agent's token goes only to this host; another host's needs its state named.
  if (chosen === undefined && !isLoopback(new URL(endpoint.url).hostname)) {
    endpoint.tokenNote = `no token sent to ${endpoint.url}: this host's agent token goes only to a loopback address; give --state for the agent whose token to send`
    return endpoint
  }
  const file = apiTokenPath(chosen ?? defaultStateDir())
  try {
    endpoint.token = (await readFile(file, 'utf8')).trim()
  } catch (err) {
    endpoint.tokenNote = `no token: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the agent's --state, or use its socket`
  }
  return endpoint
}

/** Parses repeated `--tag k=v` flags into a map. */
export function parseTags (values: readonly string[] | undefined): Record<string, string> {
  const tags: Record<string, string> = {}
  for (const v of values ?? []) {
    const i = v.indexOf('=')
    if (i <= 0) throw new Error(`--tag expects key=value, got "${v}"`)
    tags[v.slice(0, i)] = v.slice(i + 1)
  }
  return tags
}

/** Commander collector for repeatable options. */
export function collect (value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
