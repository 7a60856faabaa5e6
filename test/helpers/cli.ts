import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CLI_PATH = join(REPO_ROOT, 'bin', 'grapevine.js')
/** The `grapevine` command itself: runs apply, plan and validate from the CLI's startup snapshot. */
export const CLI_LAUNCHER = join(REPO_ROOT, 'bin', 'grapevine')

/** How a test starts the CLI: `node bin/grapevine.js`, or `bin/grapevine` as an installed command. */
export type CliEntry = 'module' | 'launcher'

/** The command and arguments that start the CLI through `entry`. */
export function cliCommand (entry: CliEntry, args: readonly string[]): [string, string[]] {
  return entry === 'launcher' ? [CLI_LAUNCHER, [...args]] : [process.execPath, [CLI_PATH, ...args]]
}

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
  /** `module` (default) or `launcher`. */
  entry?: CliEntry
}

/**
 * Runs `node bin/grapevine.js ...args` (or `bin/grapevine ...args`) as a user would and collects its output. The CLI
 * runs the compiled code in dist/, so build first (`npm test` does, through `pretest`).
 */
export async function runCli (args: readonly string[], opts: RunCliOptions = {}): Promise<CliResult> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/cli/main.js is missing: run `npm run build` before the CLI tests')
  }
  const [command, argv] = cliCommand(opts.entry ?? 'module', args)
  const child = spawn(command, argv, {
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
