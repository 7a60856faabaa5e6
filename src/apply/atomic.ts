import { rename, symlink, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { syncDir, tempPathFor } from '../store/atomic.js'

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

// Stale temporary files are found and removed by the store's removeStaleTemps: the state
// directory has them too (envelopes, backups).
export { removeStaleTemps, isAlive } from '../store/atomic.js'
