import { runCommand, type RunResult } from '../command.js'
import { PackageCommandFailedError, ProviderUnavailableError } from '../errors.js'
import { PACKAGE_ERROR_TAIL_BYTES, PACKAGE_LOCK_WAIT_S, PACKAGE_TOOL_ENV } from './constants.js'

/** Runs one tool (argv, no shell). Swappable per apply so a test can count the calls. */
export type ToolRunner = (argv: string[], opts: { timeoutMs: number, signal?: AbortSignal }) => Promise<RunResult>

export const runTool: ToolRunner = async (argv, opts) => await runCommand(argv, {
  cwd: '/',
  env: { ...PACKAGE_TOOL_ENV },
  timeoutMs: opts.timeoutMs,
  ...(opts.signal !== undefined ? { signal: opts.signal } : {})
})

/** Per-apply settings of the package providers, kept in SystemContext.run under PACKAGE_SETTINGS. */
export interface PackageSettings {
  /** Seconds to wait for another apt or dpkg's lock (PACKAGE_LOCK_WAIT_S). */
  lockWaitS: number
  run: ToolRunner
}

export const PACKAGE_SETTINGS = 'packages.settings'

export function packageSettings (run: Map<string, unknown>): PackageSettings {
  const given = run.get(PACKAGE_SETTINGS) as Partial<PackageSettings> | undefined
  return { lockWaitS: given?.lockWaitS ?? PACKAGE_LOCK_WAIT_S, run: given?.run ?? runTool }
}

/**
 * The last lines a tool wrote, bounded: its stdout's end (apt explains unmet dependencies there)
 * then its stderr's end (the errors), each at most half of PACKAGE_ERROR_TAIL_BYTES.
 */
export function errorTail (r: RunResult): string {
  const half = PACKAGE_ERROR_TAIL_BYTES / 2
  return [tailOf(r.stdout, half), tailOf(r.stderr, half)].filter((t) => t !== '').join('\n')
}

function tailOf (text: string, limit: number): string {
  const trimmed = text.trimEnd()
  if (Buffer.byteLength(trimmed) <= limit) return trimmed
  // Cut at a line start after the byte bound, and drop a split UTF-8 character.
  const cut = Buffer.from(trimmed).subarray(-limit).toString('utf8').replace(/^\uFFFD+/, '')
  return `…${cut.slice(cut.indexOf('\n') + 1)}`
}

/** Why a finished tool run failed, or undefined when it exited 0. */
export function failureOf (command: string, r: RunResult, names: string[]): Error | undefined {
  if (r.spawnError !== undefined) return new ProviderUnavailableError('package', names.join(', '), `cannot run ${command.split(' ')[0] as string} (${r.spawnError}); is it installed?`)
  if (r.timedOut) return new PackageCommandFailedError(command, null, 'timed out; its process group was killed', errorTail(r))
  if (r.aborted) return new PackageCommandFailedError(command, null, 'stopped: the apply was aborted', errorTail(r))
  if (r.exitCode !== 0) return new PackageCommandFailedError(command, r.exitCode, r.signal !== null ? `killed by ${r.signal}` : `exited ${String(r.exitCode)}`, errorTail(r))
  return undefined
}
