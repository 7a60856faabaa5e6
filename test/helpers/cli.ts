import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CLI_PATH = join(REPO_ROOT, 'bin', 'grapevine.js')

export interface CliResult {
  /** Exit code, or null when the process was killed by a signal. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface RunCliOptions {
  cwd?: string
  /** Added to (and overriding) the test process's environment. */
  env?: Record<string, string | undefined>
  /** Written to standard input, which is then closed. */
  input?: string | Uint8Array
  /** Kill the CLI after this long; a hung command fails the test instead of the suite. */
  timeoutMs?: number
}

/**
 * Runs `node bin/grapevine.js ...args` as a user would and collects its output. The CLI
 * runs the compiled code in dist/, so build first (`npm test` does, through `pretest`).
 */
export async function runCli (args: readonly string[], opts: RunCliOptions = {}): Promise<CliResult> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/cli/main.js is missing: run `npm run build` before the CLI tests')
  }
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: opts.timeoutMs ?? 30_000
  })
  const stdout: Buffer[] = []
  const stderr: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => stdout.push(b))
  child.stderr.on('data', (b: Buffer) => stderr.push(b))
  child.stdin.end(opts.input)
  return await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => {
      resolve({ code, signal, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') })
    })
  })
}
