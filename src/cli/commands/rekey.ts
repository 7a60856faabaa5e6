import { stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Register } from '../register.js'
import { CliError, EXIT, agentErrorExit, print, printJson } from '../output.js'
import { agentEndpoint, defaultStateDir } from '../defaults.js'
import { AGENT_FLAG, STATE_FLAG } from './status.js'

interface Rekeyed {
  previous?: string
  recipient: string
  /** How the key was replaced: by the running agent, or in the key file of a stopped one. */
  via: 'agent' | 'file'
  where: string
}

/** Asks the running agent to replace its key; undefined when no agent answers (nothing listens on its socket). */
async function rekeyThroughAgent (opts: { agent?: string, state?: string }): Promise<Rekeyed | undefined> {
  const [endpoint, { agentRequest, errorOf, AgentRefusedError, AgentUnreachableError }] = await Promise.all([agentEndpoint(opts), import('../../client/agent-api.js')])
  try {
    const res = await agentRequest(endpoint, '/rekey', { method: 'POST', signal: AbortSignal.timeout(30_000) })
    if (res.status !== 200) {
      const { error, reason } = errorOf(res)
      throw new AgentRefusedError(`${endpoint.display}/rekey: ${error}`, reason)
    }
    const body = JSON.parse(res.body.toString('utf8')) as { previous?: string, recipient: string }
    return { ...body, via: 'agent', where: endpoint.display }
  } catch (err) {
    // An agent named by --agent must answer; the state directory's socket may just have no agent behind it.
    if (err instanceof AgentUnreachableError && opts.agent === undefined) return undefined
    const code = agentErrorExit(err)
    if (code !== undefined) throw new CliError((err as Error).message, code)
    throw err
  }
}

/** Replaces the key file of a stopped agent, holding the agent's lock so none starts meanwhile. */
async function rekeyFile (stateDir: string): Promise<Rekeyed> {
  const [{ acquirePidLock }, { rotateEncryptionKey }, { AGENT_LOCK_FILE }] = await Promise.all([
    import('../../apply/lock.js'), import('../../secrets/index.js'), import('../../node/constants.js')
  ])
  const info = await stat(stateDir).catch(() => undefined)
  if (info?.isDirectory() !== true) throw new CliError(`no agent answers, and there is no state directory ${stateDir}: give the agent's --state (or --agent)`, EXIT.UNAVAILABLE)
  let unlock: () => Promise<void>
  try {
    unlock = await acquirePidLock(join(stateDir, AGENT_LOCK_FILE), (pid) => new CliError(`an agent (pid ${pid}) runs on ${stateDir}, but its API does not answer: rekey goes through the API of a running agent (start it with its API), or stop it first`, EXIT.UNAVAILABLE))
  } catch (err) {
    if (err instanceof CliError) throw err
    throw new CliError(`cannot lock ${stateDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.UNAVAILABLE)
  }
  try {
    const { previous, key } = await rotateEncryptionKey(stateDir)
    return { ...(previous !== undefined ? { previous } : {}), recipient: key.recipient, via: 'file', where: stateDir }
  } finally {
    await unlock()
  }
}

export const registerRekey: Register = (program, done) => {
  program.command('rekey')
    .description('Replace this node\'s encryption key: versions sealed to the old key become unreadable here (grapevine reseal seals the next one to the new key).')
    .option(...AGENT_FLAG)
    .option(...STATE_FLAG)
    .option('--json', 'print the old and new keys as JSON')
    .action(async (opts) => {
      const state = opts.state ?? defaultStateDir()
      const r = await rekeyThroughAgent(opts) ?? await rekeyFile(resolve(state))
      if (opts.json === true) { printJson(r); done(EXIT.OK); return }
      print(`encryption key replaced (${r.via === 'agent' ? `by the agent at ${r.where}` : `in ${r.where}; no agent was running`})`)
      print(`  old key ${r.previous ?? '(none)'}`)
      print(`  new key ${r.recipient}`)
      print(r.via === 'agent'
        ? 'The agent announces the new key in its reports. Policies sealed to the old key now report `sealed` here until `grapevine reseal NAME` seals a version to the new one.'
        : 'The agent announces the new key once started. Policies sealed to the old key will report `sealed` here until `grapevine reseal NAME` seals a version to the new one.')
      done(EXIT.OK)
    })
}
