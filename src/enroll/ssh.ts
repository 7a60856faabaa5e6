import { spawn } from 'node:child_process'
import { openSync, closeSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { ConnectionLostError, HostKeyMismatchError, HostKeyUnknownError, HostUnreachableError, LoginRefusedError, RemoteStepError } from './errors.js'
import { knownHostsName, targetText, type SshTarget } from './target.js'
import { MAX_REMOTE_OUTPUT_BYTES, SSH_CONNECT_TIMEOUT_S, SSH_CONTROL_PERSIST_S, SSH_SERVER_ALIVE } from './constants.js'

// The system's OpenSSH client, spawned: one master connection (ControlMaster) that every step's
// command goes through. Never a prompt (BatchMode: there may be no terminal) and never an
// unknown host key accepted (StrictHostKeyChecking).

export interface SshOptions {
  /** `-i FILE`, and only it (IdentitiesOnly). */
  identity?: string
  /** UserKnownHostsFile. */
  knownHosts?: string
  /** More `-o` options, after the ones this module insists on (ssh takes the first value of each). */
  options?: string[]
  /** A private directory (0700) for the control socket and ssh's log. */
  dir: string
}

export interface RunResult { stdout: string, stderr: string }

/** ssh's exit status when ssh itself failed (connection, authentication), as opposed to the remote command. */
const SSH_FAILED = 255

/**
 * The error ssh's messages mean, in words a person can act on. `step` is what was being done:
 * `connect` before the connection stood, else a step's name (the connection was lost during it).
 */
export function sshFailure (stderr: string, step: string, target: SshTarget, opts: Pick<SshOptions, 'identity' | 'knownHosts'>): Error {
  const host = knownHostsName(target)
  const known = opts.knownHosts ?? '~/.ssh/known_hosts'
  const scan = `ssh-keyscan${target.port !== undefined ? ` -p ${target.port}` : ''} ${target.host}`
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed|host key .*does not match/i.test(stderr)) {
    return new HostKeyMismatchError(`the host key ${host} offered does not match the one in ${known}: it is another machine, was reinstalled, or someone is in between. Check its fingerprint on the machine (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) before replacing the entry (ssh-keygen -R '${host}'${opts.knownHosts !== undefined ? ` -f ${opts.knownHosts}` : ''})`)
  }
  if (/host key is known for|Host key verification failed/i.test(stderr)) {
    return new HostKeyUnknownError(`the host key for ${host} is not in ${known}, and an unknown key is never accepted. Get it with ${scan}, check its fingerprint against the machine's (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub, on its console), then add it to ${known}`)
  }
  if (/Permission denied \(/.test(stderr)) {
    return new LoginRefusedError(`${targetText(target)} refused the login as ${target.user ?? 'your user name'} with ${opts.identity ?? 'ssh\'s default identities'} (${lastLine(stderr)}): is that public key in the user's authorized_keys?`)
  }
  if (step === 'connect') {
    return new HostUnreachableError(`cannot reach ${targetText(target)} over SSH: ${lastLine(stderr) || 'ssh failed without saying why'}`)
  }
  return new ConnectionLostError(`the SSH connection to ${targetText(target)} was lost during "${step}" (${lastLine(stderr) || 'ssh exited 255, saying nothing more'}): nothing was installed or started; the files staged so far are removed by the next enroll`, step)
}

function lastLine (text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('Warning: Permanently added'))
  return lines[lines.length - 1] ?? ''
}

/** Quotes a word for the remote POSIX shell. */
export function shellQuote (word: string): string {
  return `'${word.replace(/'/g, '\'\\\'\'')}'`
}

export class SshSession {
  private readonly control: string
  private opened = false

  constructor (readonly target: SshTarget, private readonly opts: SshOptions) {
    this.control = join(opts.dir, 'cm')
  }

  /** The arguments every ssh call shares: the options that must hold first, then the user's, then defaults they may override. */
  private args (): string[] {
    const o = (s: string): string[] => ['-o', s]
    return [
      ...o('BatchMode=yes'),
      ...o('StrictHostKeyChecking=yes'),
      ...(this.opts.knownHosts !== undefined ? o(`UserKnownHostsFile=${this.opts.knownHosts}`) : []),
      ...(this.opts.identity !== undefined ? ['-i', this.opts.identity, ...o('IdentitiesOnly=yes')] : []),
      ...o(`ControlPath=${this.control}`),
      ...(this.opts.options ?? []).flatMap(o),
      ...o(`ConnectTimeout=${SSH_CONNECT_TIMEOUT_S}`),
      ...o(`ServerAliveInterval=${SSH_SERVER_ALIVE.intervalS}`),
      ...o(`ServerAliveCountMax=${SSH_SERVER_ALIVE.count}`),
      ...(this.target.port !== undefined ? ['-p', String(this.target.port)] : []),
      ...(this.target.user !== undefined ? ['-l', this.target.user] : [])
    ]
  }

  /**
   * Connects and authenticates once (the master, in the background until close()). Its stderr
   * goes to a file: the background master keeps the descriptor, and a pipe would never close.
   */
  async open (): Promise<void> {
    const log = join(this.opts.dir, 'master.log')
    const fd = openSync(log, 'w', 0o600)
    let code: number | null
    try {
      code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn('ssh', [...this.args(), '-o', 'ControlMaster=yes', '-o', `ControlPersist=${SSH_CONTROL_PERSIST_S}`, '-f', '-N', '--', this.target.host], { stdio: ['ignore', 'ignore', fd] })
        child.once('error', reject)
        child.once('exit', (c) => { resolve(c) })
      })
    } catch (err) {
      throw new HostUnreachableError(`cannot run ssh (the OpenSSH client): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; install it (apt-get install openssh-client)`)
    } finally {
      closeSync(fd)
    }
    if (code !== 0) throw sshFailure(await readFile(log, 'utf8').catch(() => ''), 'connect', this.target, this.opts)
    this.opened = true
  }

  /** Runs a shell command on the target, through the master; `input` streams to its stdin. */
  async run (step: string, command: string, input?: Buffer | string | Readable): Promise<RunResult> {
    const child = spawn('ssh', [...this.args(), '-o', 'ControlMaster=no', '--', this.target.host, command], { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let printed = 0
    let overflowed = false
    const collect = (into: Buffer[]) => (b: Buffer): void => {
      printed += b.length
      if (printed > MAX_REMOTE_OUTPUT_BYTES) {
        if (!overflowed) child.kill()
        overflowed = true
        return
      }
      into.push(b)
    }
    child.stdout.on('data', collect(out))
    child.stderr.on('data', collect(err))
    // A connection that drops mid-upload closes ssh's stdin under the stream: ssh's status says what happened.
    child.stdin.on('error', () => {})
    if (input === undefined || typeof input === 'string' || Buffer.isBuffer(input)) child.stdin.end(input)
    else {
      input.once('error', () => { child.kill() })
      input.pipe(child.stdin)
    }
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (c) => { resolve(c) })
    })
    if (overflowed) throw new RemoteStepError(`${step} on ${targetText(this.target)} printed more than ${MAX_REMOTE_OUTPUT_BYTES / 1048576} MiB, where it prints a few lines: stopped`, step)
    const result = { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
    if (code === 0) return result
    if (code === SSH_FAILED || code === null) throw sshFailure(result.stderr, step, this.target, this.opts)
    const said = `${result.stdout}\n${result.stderr}`.split('\n').map((l) => l.trim()).filter((l) => l !== '')
    throw new RemoteStepError(`${step} failed on ${targetText(this.target)} (exit ${code}): ${said.slice(-6).join(' | ') || 'no output'}`, step)
  }

  /** Ends the master connection (it would end by itself ControlPersist seconds after its last use). */
  async close (): Promise<void> {
    if (!this.opened) return
    this.opened = false
    await new Promise<void>((resolve) => {
      const child = spawn('ssh', [...this.args(), '-O', 'exit', '--', this.target.host], { stdio: 'ignore' })
      child.once('error', () => { resolve() })
      child.once('exit', () => { resolve() })
    })
  }
}
