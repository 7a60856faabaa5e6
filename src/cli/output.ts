import { writeSync } from 'node:fs'
import pc from 'picocolors'

/** Exit codes shared by every command; apply and plan add Puppet's detailed codes (see README). */
export const EXIT = {
  OK: 0,
  /** The input was read but is wrong: an invalid policy, a tampered envelope, an untrusted key. */
  INVALID: 1,
  /** A command-line usage error (sysexits EX_USAGE). */
  USAGE: 64,
  /** A file or agent the command needs could not be reached (sysexits EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** A bug: an error nobody anticipated (sysexits EX_SOFTWARE). */
  INTERNAL: 70,
  /** The disk would not take a write: full, over quota, failing (sysexits EX_IOERR). */
  IOERR: 74,
  /** The agent's API would not let this user in: socket mode, token, Host (sysexits EX_NOPERM). */
  NOPERM: 77
} as const

/** Exit codes of the agent API client's named errors (src/client/agent-api.ts); by name, so this module loads none of it. */
const AGENT_ERROR_EXIT: Readonly<Record<string, number>> = {
  AgentAccessError: EXIT.NOPERM,
  AgentUnreachableError: EXIT.UNAVAILABLE,
  AgentRefusedError: EXIT.INVALID
}

/** The exit code of an error from talking to an agent's API, or undefined when it is not one of those. */
export function agentErrorExit (err: unknown): number | undefined {
  return err instanceof Error ? AGENT_ERROR_EXIT[err.name] : undefined
}

type Colors = ReturnType<typeof pc.createColors>
type Palette = Omit<Colors, 'isColorSupported'>

/**
 * Colour only on a terminal, and not with NO_COLOR set or TERM=dumb (FORCE_COLOR overrides
 * TERM), decided when something is first printed rather than when this module loads: the
 * CLI's startup snapshot (scripts/build-snapshot.mjs) loads it at build time, with no terminal.
 */
function paletteFor (stream: () => NodeJS.WriteStream): Palette {
  let chosen: Colors | undefined
  const choose = (): Colors => {
    if (chosen === undefined) {
      const env = process.env
      chosen = pc.createColors(stream().isTTY === true && (env.NO_COLOR ?? '') === '' && (env.TERM !== 'dumb' || (env.FORCE_COLOR ?? '') !== ''))
    }
    return chosen
  }
  const names = Object.keys(pc.createColors(false)).filter((k) => k !== 'isColorSupported') as Array<keyof Palette>
  return Object.fromEntries(names.map((k) => [k, (s: Parameters<Colors['red']>[0]) => choose()[k](s)])) as Palette
}

export const colour = paletteFor(() => process.stdout)
const errColour = paletteFor(() => process.stderr)

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

/**
 * Control characters in what a line shows, escaped (\u001b): node names, tags, receipt errors
 * and refused envelopes' names come from any peer, and a terminal escape in them could move the
 * cursor over earlier lines, retitle the window, write the clipboard or hide text. The colours
 * this CLI uses (bold, dim, red, green, yellow, cyan and their ends), newlines and tabs pass.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /\u001b(?!\[(?:1|2|22|31|32|33|36|39)m)|[\u0000-\u0008\u000b-\u001a\u001c-\u001f\u007f-\u009f]/g

export function printable (text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

export function print (line = ''): void {
  process.stdout.write(printable(line) + '\n')
}

export function printError (message: string): void {
  process.stderr.write(`${errColour.red('error')}: ${printable(message)}\n`)
}

export function printWarning (message: string): void {
  process.stderr.write(`${errColour.yellow('warning')}: ${printable(message)}\n`)
}

/**
 * A progress line on stderr, redrawn in place, only on a terminal: at most every `everyMs`,
 * none before `afterMs` (quick work shows nothing), and cleared by clear() before what follows.
 */
export function liveLine ({ everyMs, afterMs = 0 }: { everyMs: number, afterMs?: number }): { show: (text: string) => void, clear: () => void } {
  if (process.stderr.isTTY !== true) return { show: () => {}, clear: () => {} }
  const started = Date.now()
  let drawn = -Infinity
  let shown = false
  return {
    show: (text) => {
      const now = Date.now()
      if (now - started < afterMs || now - drawn < everyMs) return
      drawn = now
      shown = true
      process.stderr.write(`\r\x1b[2K${text}`)
    },
    clear: () => { if (shown) process.stderr.write('\r\x1b[2K') }
  }
}

/** What `grapevine … | head -1` ends with: a closed pipe is the reader being done, as for coreutils (a shell shows them as 128 + SIGPIPE). */
export const EPIPE_EXIT = 141

/**
 * Exits quietly, with EPIPE_EXIT, when whoever reads standard output has closed it (`| head`):
 * without a listener Node throws the EPIPE from the stream and the command crashes with a stack.
 */
export function exitQuietlyOnClosedStdout (): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EPIPE_EXIT)
    throw err
  })
}

/** An error that ends the command with a given exit code and message. */
export class CliError extends Error {
  static override name = 'CliError'
  override name = 'CliError'
  constructor (message: string, readonly exitCode: number = EXIT.INVALID) {
    super(message)
  }
}

/** Where a run's time went, in ms: process start to the command, loading the policy (and the applier), applying, printing. */
export interface Phases { startupMs?: number, loadMs?: number, applyMs?: number, printMs?: number }

/** Filled in by commands that time their phases (plan, apply), for GRAPEVINE_RUSAGE=1. */
export const phases: Phases = {}

/**
 * For benchmarks and tests (GRAPEVINE_RUSAGE=1): Node cannot read a child's rusage, so the
 * CLI reports its own peak resident set size (KiB), whether it started from the CLI's
 * snapshot (bin/grapevine), and `phases`, as one JSON line on stderr at exit.
 */
export function reportRusageAtExit (): void {
  process.once('exit', () => {
    const snapshot = process.execArgv.some((a) => a.startsWith('--snapshot-blob'))
    writeSync(2, JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, snapshot, ...phases }) + '\n')
  })
}
