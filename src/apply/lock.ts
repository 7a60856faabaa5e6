import { mkdir, open, readFile, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { LOCK_FILE } from './constants.js'
import { ApplyLockedError, StateWriteError, isStateWriteFailure } from './errors.js'
import { isAlive } from './atomic.js'

/**
 * Takes `<state>/apply.lock` (O_EXCL, holding our pid) so two applies never interleave.
 * A lock left by a process that no longer exists, such as one killed by SIGKILL, is taken over.
 * Returns the release function.
 */
export async function acquireApplyLock (stateDir: string): Promise<() => Promise<void>> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 })
  const file = join(stateDir, LOCK_FILE)
  return await acquirePidLock(file, (pid) => new ApplyLockedError(file, pid))
}

/**
 * The lock files this process holds. A file naming our own pid that is not among them was left
 * by an earlier process that had the same pid: in a container the agent is PID 1 at every
 * start, so after a SIGKILL its own pid is in the stale lock.
 */
const held = new Set<string>()

/**
 * Takes a lock file (O_EXCL, holding our pid): the apply lock, and the agent's lock on its
 * state directory. A file left by a process that no longer exists is taken over; one held by
 * another live process, or already by this one, throws `locked(pid)`. Returns the release function.
 */
export async function acquirePidLock (file: string, locked: (pid: number) => Error): Promise<() => Promise<void>> {
  const key = resolve(file)
  if (held.has(key)) throw locked(process.pid)
  // Claimed before the first await, so a second caller in this process is refused at once.
  held.add(key)
  try {
    await createPidFile(file, locked)
  } catch (err) {
    held.delete(key)
    throw err
  }
  return async () => {
    held.delete(key)
    await unlink(file).catch(() => {})
  }
}

async function createPidFile (file: string, locked: (pid: number) => Error): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600)
      try {
        await fh.writeFile(`${process.pid}\n`)
        await fh.close()
      } catch (err) {
        // A lock with no pid in it names no holder: remove the one we made (a full disk left an empty apply.lock).
        await fh.close().catch(() => {})
        await unlink(file).catch(() => {})
        throw err
      }
      return
    } catch (err) {
      if (isStateWriteFailure(err)) throw new StateWriteError(file, { cause: err })
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw locked(await holder(file))
        throw err
      }
      const pid = await holder(file)
      if (pid > 0 && pid !== process.pid && isAlive(pid)) throw locked(pid)
      await unlink(file).catch(() => {})
    }
  }
}

async function holder (file: string): Promise<number> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const pid = Number.parseInt(text.trim(), 10)
  return Number.isFinite(pid) ? pid : 0
}
