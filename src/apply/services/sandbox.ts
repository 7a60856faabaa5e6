import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SandboxServiceStateError } from '../errors.js'
import { SANDBOX_SERVICES_DIR, UNIT_DIRS } from './constants.js'
import type { Running, RuntimeVerb } from './plan.js'

/**
 * The sandbox service runtime, an opt-in for rehearsals (`--sandbox-services`, the demo): a
 * sandbox root has no systemd to start anything, so the running state is a record under the
 * root, `ROOT/run/grapevine/services/UNIT`, with a count of each transition. No process starts;
 * reports label these transitions "(sandbox)". Enablement is not here: it stays the real
 * `systemctl --root`.
 */
export interface SandboxRecord {
  unit: string
  state: Running
  started: number
  stopped: number
  restarted: number
  reloaded: number
}

export const sandboxRecordPath = (root: string, unit: string): string => join(root, SANDBOX_SERVICES_DIR, unit)

/** The unit's record; a unit never started in this sandbox is stopped, as a fresh machine's are. */
export async function readSandboxRecord (root: string, unit: string): Promise<SandboxRecord> {
  const file = sandboxRecordPath(root, unit)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { unit, state: 'stopped', started: 0, stopped: 0, restarted: 0, reloaded: 0 }
    throw err
  }
  let record: Partial<SandboxRecord>
  try {
    record = JSON.parse(text) as Partial<SandboxRecord>
  } catch {
    throw new SandboxServiceStateError(file, 'not JSON')
  }
  const counts = [record.started, record.stopped, record.restarted, record.reloaded]
  if ((record.state !== 'running' && record.state !== 'stopped') || !counts.every((n) => Number.isSafeInteger(n) && (n as number) >= 0)) {
    throw new SandboxServiceStateError(file, 'expected a state, running or stopped, and four counts')
  }
  return record as SandboxRecord
}

export async function sandboxActive (root: string, unit: string): Promise<Running> {
  return (await readSandboxRecord(root, unit)).state
}

/**
 * One transition, as systemctl would make it: start, stop, or a notification's `try-` verb,
 * which does nothing to a stopped unit. `try-reload-or-restart` reloads a unit whose file has
 * `ExecReload=` and restarts one without, as systemd does. Returns what was recorded.
 */
export async function sandboxChange (root: string, verb: RuntimeVerb, unit: string): Promise<SandboxRecord> {
  const record = await readSandboxRecord(root, unit)
  switch (verb) {
    case 'start': if (record.state !== 'running') { record.state = 'running'; record.started++ } break
    case 'stop': if (record.state !== 'stopped') { record.state = 'stopped'; record.stopped++ } break
    case 'try-restart': if (record.state === 'running') record.restarted++; break
    case 'try-reload-or-restart':
      if (record.state === 'running') {
        if (await hasExecReload(root, unit)) record.reloaded++
        else record.restarted++
      }
      break
  }
  const file = sandboxRecordPath(root, unit)
  await mkdir(join(root, SANDBOX_SERVICES_DIR), { recursive: true })
  // Renamed into place: a record is whole or the old one, never torn.
  const temp = `${file}.tmp-${process.pid}`
  await writeFile(temp, JSON.stringify(record) + '\n')
  await rename(temp, file)
  return record
}

/** Whether the unit's file (the first one found under the root, as systemd looks) has ExecReload=. */
async function hasExecReload (root: string, unit: string): Promise<boolean> {
  for (const dir of UNIT_DIRS) {
    const text = await readFile(join(root, dir, unit), 'utf8').catch(() => undefined)
    if (text !== undefined) return /^\s*ExecReload\s*=/m.test(text)
  }
  return false
}
