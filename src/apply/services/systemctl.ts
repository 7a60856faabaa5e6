import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { describeCommand, runCommand, type RunResult } from '../command.js'
import { EXEC_PATH } from '../constants.js'
import { ProviderUnavailableError, ServiceCommandFailedError, ServiceNotFoundError } from '../errors.js'
import type { EnablementVerb, Running, RuntimeVerb } from './plan.js'
import { knownUnitFileState } from './plan.js'
import { SYSTEMCTL_CHANGE_TIMEOUT_MS, SYSTEMCTL_ERROR_TAIL_BYTES, SYSTEMCTL_JOB_TIMEOUT_MS, SYSTEMCTL_QUERY_TIMEOUT_MS, SYSTEMD_RUNNING_DIR } from './constants.js'

/** Runs `systemctl <args>` and never rejects. Tests wrap it to see which commands ran. */
export type Systemctl = (args: string[], timeoutMs: number) => Promise<RunResult>

/** C locale: the provider reads systemctl's words and messages. No colour, no pager, no password prompt. */
const ENV: Record<string, string> = { PATH: EXEC_PATH, LC_ALL: 'C', SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '', SYSTEMD_LOG_COLOR: '0' }

/** The real systemctl, without a shell, bounded and timed, stopped with the apply. */
export function systemctl (signal?: AbortSignal): Systemctl {
  return async (args, timeoutMs) => await runCommand(['systemctl', ...args], { cwd: '/', env: ENV, timeoutMs, ...(signal !== undefined ? { signal } : {}) })
}

const shown = (args: string[]): string => describeCommand(['systemctl', ...args])

function tail (text: string): string {
  const t = text.trim()
  return t.length <= SYSTEMCTL_ERROR_TAIL_BYTES ? t : `...${t.slice(t.length - SYSTEMCTL_ERROR_TAIL_BYTES)}`
}

/** A run that gave no answer at all (not started, timed out, aborted, killed) as its error; undefined if it exited. */
function noAnswer (args: string[], res: RunResult, timeoutMs: number, unit: string): Error | undefined {
  if (res.spawnError === 'ENOENT') return new ProviderUnavailableError('service', unit, `systemctl is not installed (the service provider needs systemd's systemctl; ${EXEC_PATH} has none)`)
  if (res.spawnError !== undefined) return new ServiceCommandFailedError(shown(args), null, `cannot start (${res.spawnError})`)
  if (res.timedOut) return new ServiceCommandFailedError(shown(args), null, `timed out after ${timeoutMs / 1000} s`)
  if (res.aborted) return new ServiceCommandFailedError(shown(args), res.exitCode, 'stopped: the apply was aborted')
  if (res.signal !== null) return new ServiceCommandFailedError(shown(args), null, `killed by ${res.signal}`)
  return undefined
}

function failed (args: string[], res: RunResult): ServiceCommandFailedError {
  const out = res.stderr.trim() !== '' ? res.stderr : res.stdout
  return new ServiceCommandFailedError(shown(args), res.exitCode, `exited ${String(res.exitCode)}${out.trim() !== '' ? `: ${tail(out)}` : ''}`)
}

/**
 * `systemctl --root=<root> is-enabled <unit>`: reads the unit files only, so it answers in a
 * sandbox root and without a running systemd. Its exit status is not the answer (disabled exits
 * 1, like an error): the word is. systemd 252 says nothing on stdout for a unit it cannot find,
 * newer ones say `not-found`.
 */
export async function isEnabled (run: Systemctl, root: string, unit: string): Promise<string> {
  const args = [`--root=${root}`, 'is-enabled', unit]
  const res = await run(args, SYSTEMCTL_QUERY_TIMEOUT_MS)
  const error = noAnswer(args, res, SYSTEMCTL_QUERY_TIMEOUT_MS, unit)
  if (error !== undefined) throw error
  const word = res.stdout.trim()
  const missing = /Failed to get unit file state for .*: No such file or directory/.exec(res.stderr)
  if (word === 'not-found' || (word === '' && missing !== null)) throw new ServiceNotFoundError(unit, root, missing?.[0] !== undefined ? `"${missing[0]}"` : '"not-found"')
  if (word === '') throw failed(args, res)
  if (!knownUnitFileState(word)) throw new ServiceCommandFailedError(shown(args), res.exitCode, `answered "${word}"${word === 'bad' ? ': the unit file is invalid' : ', a state this provider does not know'}${res.stderr.trim() !== '' ? `: ${tail(res.stderr)}` : ''}`)
  return word
}

/** Words of `systemctl is-active` that mean the unit runs or is on its way there. */
const RUNNING = new Set(['active', 'reloading', 'activating', 'refreshing'])

/** `systemctl is-active <unit>`: asks the running manager (it has no --root). */
export async function isActive (run: Systemctl, unit: string): Promise<Running> {
  const args = ['is-active', unit]
  const res = await run(args, SYSTEMCTL_QUERY_TIMEOUT_MS)
  const error = noAnswer(args, res, SYSTEMCTL_QUERY_TIMEOUT_MS, unit)
  if (error !== undefined) throw error
  const word = res.stdout.trim()
  if (word === '') throw failed(args, res)
  return RUNNING.has(word) ? 'running' : 'stopped'
}

/** Whether the manager holds an older copy of the unit's files than the disk: a start would use the old one. */
export async function needsDaemonReload (run: Systemctl, unit: string): Promise<boolean> {
  const args = ['show', '--property=NeedDaemonReload', '--value', unit]
  const res = await run(args, SYSTEMCTL_QUERY_TIMEOUT_MS)
  const error = noAnswer(args, res, SYSTEMCTL_QUERY_TIMEOUT_MS, unit) ?? (res.exitCode !== 0 ? failed(args, res) : undefined)
  if (error !== undefined) throw error
  return res.stdout.trim() === 'yes'
}

/** Runs one changing command; throws its error with systemctl's stderr tail. */
async function change (run: Systemctl, args: string[], timeoutMs: number, unit: string): Promise<void> {
  const res = await run(args, timeoutMs)
  const error = noAnswer(args, res, timeoutMs, unit) ?? (res.exitCode !== 0 ? failed(args, res) : undefined)
  if (error !== undefined) throw error
}

/** The enablement command line: into the root, so it needs no running systemd. */
export const enablementArgs = (root: string, verb: EnablementVerb, unit: string): string[] => [`--root=${root}`, verb, unit]

/** A runtime command line; --no-ask-password so that a policy never waits on a polkit prompt. */
export const runtimeArgs = (verb: RuntimeVerb, unit: string): string[] => ['--no-ask-password', verb, unit]

export async function setEnablement (run: Systemctl, root: string, verb: EnablementVerb, unit: string): Promise<void> {
  await change(run, enablementArgs(root, verb, unit), SYSTEMCTL_CHANGE_TIMEOUT_MS, unit)
}

/**
 * start, stop, restart or reload, waiting for systemd's job. A unit file changed on disk since
 * the manager read it (a file resource before this one rewrote it) is reloaded first, or the
 * start would use the old one.
 */
export async function runtimeChange (run: Systemctl, verb: RuntimeVerb, unit: string): Promise<void> {
  if (verb !== 'stop' && await needsDaemonReload(run, unit)) await change(run, ['daemon-reload'], SYSTEMCTL_CHANGE_TIMEOUT_MS, unit)
  await change(run, runtimeArgs(verb, unit), SYSTEMCTL_JOB_TIMEOUT_MS, unit)
}

/** How a runtime command is shown in errors and reports. */
export const describeRuntime = (verb: RuntimeVerb, unit: string): string => `systemctl ${verb} ${unit}`

/**
 * Whether start, stop and is-active can work here: only on the machine itself (root `/`), and
 * only where systemd runs as PID 1, which it marks as sd_booted(3) checks.
 */
export async function runtimeHere (root: string): Promise<{ available: true } | { available: false, why: string }> {
  if (resolve(root) !== '/') return { available: false, why: `the root is ${root}, not /: a service's running state is managed only on the machine itself` }
  const booted = await stat(SYSTEMD_RUNNING_DIR).then((s) => s.isDirectory(), () => false)
  return booted ? { available: true } : { available: false, why: `systemd is not running as PID 1 here (a container?; ${SYSTEMD_RUNNING_DIR} is missing)` }
}
