import { spawn } from 'node:child_process'
import type { CommandLine } from '../policy/index.js'
import { EXEC_DRAIN_MS, EXEC_KILL_GRACE_MS, MAX_EXEC_OUTPUT_BYTES } from './constants.js'

/** Keeps the last `limit` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = []
  private size = 0
  /** Bytes dropped from the front. */
  dropped = 0

  constructor (private readonly limit = MAX_EXEC_OUTPUT_BYTES) {}

  push (chunk: Buffer): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.size - (this.chunks[0]?.length ?? 0) >= this.limit && this.chunks.length > 1) {
      const first = this.chunks.shift() as Buffer
      this.size -= first.length
      this.dropped += first.length
    }
  }

  toString (): string {
    let all = Buffer.concat(this.chunks)
    if (all.length > this.limit) {
      this.dropped += all.length - this.limit
      all = all.subarray(all.length - this.limit)
    }
    // A cut may split a UTF-8 sequence; drop the partial character rather than show U+FFFD.
    let start = 0
    while (start < all.length && start < 4 && ((all[start] as number) & 0xc0) === 0x80) start++
    return all.subarray(start).toString('utf8')
  }
}

/** How a command line is shown in reports and errors. */
export function describeCommand (command: CommandLine): string {
  return typeof command === 'string' ? command : command.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`).join(' ')
}

export interface RunOptions {
  cwd: string
  env: Record<string, string>
  timeoutMs: number
  signal?: AbortSignal
  /** Run as this uid and gid (`run_as`; the agent must be root). Supplementary groups are dropped. */
  user?: { uid: number, gid: number }
}

export interface RunResult {
  exitCode: number | null
  signal: string | null
  stdout: string
  stderr: string
  timedOut: boolean
  aborted: boolean
  /** Set when the command could not start at all (ENOENT, EACCES...). */
  spawnError?: string
  /** Which streams lost their start to the tail's bound: a secret's value may be cut at the front. */
  cut?: { stdout: boolean, stderr: boolean }
}

/**
 * Runs an argv array directly or a string through `/bin/sh -c`, in its own process group
 * so a timeout or abort kills everything it started. Never rejects: the caller decides
 * what an exit status means.
 */
export async function runCommand (command: CommandLine, opts: RunOptions): Promise<RunResult> {
  const [file, args] = typeof command === 'string' ? ['/bin/sh', ['-c', command]] : [command[0] as string, command.slice(1)]
  const stdout = new TailBuffer()
  const stderr = new TailBuffer()
  return await new Promise<RunResult>((resolve) => {
    let timedOut = false
    let aborted = false
    let settled = false
    let killTimer: NodeJS.Timeout | undefined
    let drainTimer: NodeJS.Timeout | undefined
    let exit: { code: number | null, signal: string | null } | undefined

    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      // libuv calls setgroups(0) before setgid and setuid, so no group of the agent's is kept.
      ...(opts.user !== undefined ? { uid: opts.user.uid, gid: opts.user.gid } : {})
    })
    child.stdout.on('data', (c: Buffer) => stdout.push(c))
    child.stderr.on('data', (c: Buffer) => stderr.push(c))

    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return
      try {
        process.kill(-child.pid, sig)
      } catch {
        // The group is gone already.
      }
    }
    const stop = (): void => {
      killGroup('SIGTERM')
      killTimer ??= setTimeout(() => killGroup('SIGKILL'), EXEC_KILL_GRACE_MS)
    }
    const timer = setTimeout(() => { timedOut = true; stop() }, opts.timeoutMs)
    const onAbort = (): void => { aborted = true; stop() }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    if (opts.signal?.aborted === true) onAbort()

    const finish = (extra: Partial<RunResult> = {}): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearTimeout(killTimer)
      clearTimeout(drainTimer)
      // After a timeout or abort, whatever the command started and left behind goes too.
      if (timedOut || aborted) killGroup('SIGKILL')
      opts.signal?.removeEventListener('abort', onAbort)
      child.stdout.destroy()
      child.stderr.destroy()
      const out = { stdout: stdout.toString(), stderr: stderr.toString() }
      resolve({
        exitCode: exit?.code ?? null,
        signal: exit?.signal ?? null,
        ...out,
        timedOut,
        aborted,
        ...(stdout.dropped > 0 || stderr.dropped > 0 ? { cut: { stdout: stdout.dropped > 0, stderr: stderr.dropped > 0 } } : {}),
        ...extra
      })
    }
    child.on('error', (err: NodeJS.ErrnoException) => finish({ spawnError: err.code ?? err.message }))
    child.on('exit', (code, signal) => {
      exit = { code, signal }
      // Anything the command left running in its group keeps the pipes open; do not wait on it.
      drainTimer = setTimeout(() => finish(), EXEC_DRAIN_MS)
    })
    child.on('close', () => finish())
  })
}
