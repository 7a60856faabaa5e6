import { spawn, type ChildProcess } from 'node:child_process'
import { afterEach } from 'vitest'
import { CLI_PATH } from './cli.js'
import { waitFor } from '../node/fixtures.js'

/** A `grapevine agent` process a test started, with what its structured log said. */
export interface RunningAgent {
  child: ChildProcess
  addr: string
  /** Its API socket; '' with --no-api. */
  api: string
  /** The encryption key its "agent started" line names. */
  recipient: string
  lines: Array<Record<string, unknown>>
  exited: Promise<number | null>
}

/**
 * Spawns agents as a user would (`grapevine agent --listen 127.0.0.1:0 …`) and SIGKILLs those
 * still running after each test of the calling file.
 */
export function agentProcesses (): (args: string[]) => Promise<RunningAgent> {
  const children: ChildProcess[] = []
  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
    children.length = 0
  })
  return async (args) => {
    const child = spawn(process.execPath, [CLI_PATH, 'agent', '--listen', '/ip4/127.0.0.1/tcp/0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    const lines: Array<Record<string, unknown>> = []
    let buffer = ''
    child.stdout!.on('data', (b: Buffer) => {
      buffer += b.toString()
      let i
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i)
        buffer = buffer.slice(i + 1)
        try { lines.push(JSON.parse(line) as Record<string, unknown>) } catch { /* not a log line */ }
      }
    })
    let stderr = ''
    child.stderr!.on('data', (b: Buffer) => { stderr += b.toString() })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
    const noApi = args.includes('--no-api')
    await waitFor(() => lines.some((l) => l.msg === (noApi ? 'agent started' : 'api listening')) || child.exitCode !== null, 'the agent to start')
    if (child.exitCode !== null) throw new Error(`agent exited ${child.exitCode}: ${stderr}`)
    const started = lines.find((l) => l.msg === 'agent started') as { addrs: string[], recipient: string }
    const api = lines.find((l) => l.msg === 'api listening') as { socket: string } | undefined
    return { child, addr: started.addrs.find((a) => a.includes('127.0.0.1')) as string, api: api?.socket ?? '', recipient: started.recipient, lines, exited }
  }
}
