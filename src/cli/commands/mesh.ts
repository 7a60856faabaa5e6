import { readFile } from 'node:fs/promises'
import type { Command as BaseCommand } from 'commander'
import { CliError, EXIT, agentErrorExit } from '../output.js'
import { agentEndpoint, collect } from '../defaults.js'
import type { MeshClient } from '../../client/index.js'

// How admin commands (publish, rollback, retire, fleet, admit --revoke, rollout) reach the
// mesh, and the exit codes they share.

/** publish/rollback/retire/rollout exit codes beyond the shared ones (README, "Exit codes"). */
export const EXIT_CONFLICT_LOST = 3
export const EXIT_NODE_FAILURES = 4
export const EXIT_TIMEOUT = 5
/** retire of a name the mesh holds no version of (sysexits EX_DATAERR: the input names nothing). */
export const EXIT_UNKNOWN_NAME = 65
/** Ctrl-C during --wait: what was known is printed first (128 + SIGINT, as a shell reports it). */
export const EXIT_INTERRUPTED = 130

export interface MeshFlags {
  bootstrap?: string[]
  agent?: string
  state?: string
  mesh?: string
  swarmKey?: string
}

export function meshOptions (cmd: BaseCommand): BaseCommand {
  cmd.option('--bootstrap <multiaddr>', 'join the mesh through this agent (repeatable)', collect)
    .option('--agent <address>', 'go through this agent\'s local API: a socket path, unix:PATH or http://HOST:PORT (default, without --bootstrap: the socket in the state directory)')
    .option('--state <dir>', 'the local agent\'s state directory, where its socket and API token are (default: $GRAPEVINE_STATE, else the usual place)')
    .option('--mesh <name>', 'mesh name (default "default")')
    .option('--swarm-key <file>', 'pre-shared swarm key of a private mesh')
  return cmd
}

/** An error from an agent's API as the CLI's: 69 unreachable, 77 not let in, 1 refused with the agent's reason. */
function asCliError (err: unknown): unknown {
  const code = agentErrorExit(err)
  return code === undefined ? err : new CliError((err as Error).message, code)
}

function withCliErrors (client: MeshClient): MeshClient {
  const wrap = <A extends unknown[], R>(fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    try { return await fn(...args) } catch (err) { throw asCliError(err) }
  }
  return { current: wrap(client.current), heads: wrap(client.heads), deliver: wrap(client.deliver), fleet: wrap(client.fleet), envelope: wrap(client.envelope), close: client.close }
}

/** Through --bootstrap as a short-lived peer, else through an agent's API: --agent, or the local agent's socket. */
export async function connect (opts: MeshFlags): Promise<MeshClient> {
  const viaMesh = opts.bootstrap !== undefined && opts.bootstrap.length > 0
  if (viaMesh && opts.agent !== undefined) throw new CliError('give --bootstrap or --agent, not both', EXIT.USAGE)
  const { connectMesh, PublishError } = await import('../../client/index.js')
  try {
    return withCliErrors(await connectMesh({
      bootstrap: opts.bootstrap,
      agent: viaMesh ? undefined : await agentEndpoint(opts),
      mesh: opts.mesh,
      swarmKey: opts.swarmKey !== undefined ? new Uint8Array(await readFile(opts.swarmKey)) : undefined
    }))
  } catch (err) {
    if (err instanceof PublishError) throw new CliError(err.message, agentErrorExit(err) ?? EXIT.UNAVAILABLE)
    throw err
  }
}

/** `--stale-after SECONDS` (publish --wait, the rollout evaluator): exit 64 unless a positive number. */
export function staleAfterMs (text: string): number {
  const ms = Number(text) * 1000
  if (!(Number.isFinite(ms) && ms > 0)) throw new CliError(`--stale-after must be a positive number of seconds: got "${text}"`, EXIT.USAGE)
  return ms
}
