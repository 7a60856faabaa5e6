import { readdir, rename, symlink, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { syncDir, tempOwner, tempPathFor } from '../store/atomic.js'

// The write itself is the store's writeFileAtomic, with `dirs` and `batch`; what is here is
// what only the applier needs: deferred directory fsyncs, symlinks and crash cleanup.

/**
 * Directories whose entries changed, fsynced once each at the end instead of once per file:
 * a directory fsync makes every rename in it durable at once.
 */
export class DirSync {
  private readonly dirs = new Set<string>()

  add (dir: string): void {
    this.dirs.add(dir)
  }

  async flush (): Promise<void> {
    const dirs = [...this.dirs]
    this.dirs.clear()
    await Promise.all(dirs.map(syncDir))
  }
}

/** Points `target` at `linkTarget`, replacing whatever link or file is there in one rename. */
export async function symlinkAtomic (linkTarget: string, target: string, dirs: DirSync): Promise<void> {
  const temp = tempPathFor(target)
  await symlink(linkTarget, temp)
  try {
    await rename(temp, target)
  } catch (err) {
    await unlink(temp).catch(() => {})
    throw err
  }
  dirs.add(dirname(target))
}

/**
 * Removes temporary files left in `dir` by an apply that was killed. Files of a live
 * process other than this one are left alone: another applier may be writing them.
 */
export async function removeStaleTemps (dir: string, alive: (pid: number) => boolean = isAlive): Promise<number> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch {
    return 0
  }
  let removed = 0
  await Promise.all(names.map(async (name) => {
    const pid = tempOwner(name)
    if (pid === undefined || pid === process.pid || alive(pid)) return
    try {
      await unlink(join(dir, name))
      removed++
    } catch {
      // Gone already, or not ours to remove.
    }
  }))
  return removed
}

export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
