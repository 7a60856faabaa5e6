import { open, readdir, rename, symlink, unlink } from 'node:fs/promises'
import { closeSync, fchmodSync, fchownSync, fdatasync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { TEMP_MARKER } from './constants.js'

const TEMP_NAME = new RegExp(`^\\..*\\.${TEMP_MARKER}-(\\d+)-[0-9a-f]+$`)

// Random bytes for temporary names, drawn 256 names at a time: as unpredictable as a call
// per name, which costs 13 µs each and an apply may name thousands.
let randomPool = Buffer.alloc(0)
let randomAt = 0
function randomHex (bytes: number): string {
  if (randomAt + bytes > randomPool.length) {
    randomPool = randomBytes(bytes * 256)
    randomAt = 0
  }
  randomAt += bytes
  return randomPool.toString('hex', randomAt - bytes, randomAt)
}

/** `.NAME.grapevine-tmp-PID-RANDOM` beside `target`, so rename stays on one file system. */
export function tempPathFor (target: string): string {
  // Keep the name under NAME_MAX (255) whatever the target's name is.
  const name = basename(target).slice(0, 150)
  return join(dirname(target), `.${name}.${TEMP_MARKER}-${process.pid}-${randomHex(6)}`)
}

/** The pid in a temporary file's name, or undefined when the name is not one of ours. */
export function tempOwner (name: string): number | undefined {
  const m = TEMP_NAME.exec(name)
  return m === null ? undefined : Number(m[1])
}

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

export async function syncDir (dir: string): Promise<void> {
  let fh
  try {
    fh = await open(dir, 'r')
    await fh.sync()
  } catch (err) {
    // The directory may have been removed by a later resource; nothing left to make durable.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  } finally {
    await fh?.close()
  }
}

export interface WriteOptions {
  mode: number
  uid?: number
  gid?: number
  /** Make the content durable with the rest of the batch instead of an fdatasync of its own. */
  batch?: { durable: (temp: string, bytes: number) => Promise<void> }
  /** Called when the write starts waiting for its batch: it holds no file descriptor then. */
  onWait?: () => void
}

const fdatasyncAsync = async (fd: number): Promise<void> =>
  await new Promise((resolve, reject) => fdatasync(fd, (err) => { if (err !== null) reject(err); else resolve() }))

/**
 * Replaces `target` with `data` so that a reader (or a crash) sees the old file or the new
 * one, never a mix: write a temporary file beside it, set mode and owner on it, make it
 * durable (fdatasync, or with `batch`), and only then rename. The caller makes the rename
 * durable with `DirSync`.
 *
 * Only the fsync waits for the disk, so only it goes to the thread pool. The rest are
 * synchronous: each costs microseconds, while a trip through the pool costs more than that
 * in wake-ups, and creating entries in one directory is serialised by the kernel anyway.
 */
export async function writeFileAtomic (target: string, data: Uint8Array, opts: WriteOptions, dirs: DirSync): Promise<void> {
  const temp = tempPathFor(target)
  const fd = openSync(temp, 'wx', 0o600)
  try {
    try {
      for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off)
      // Mode and owner are set before the rename, so a secret is never briefly world-readable.
      fchmodSync(fd, opts.mode)
      if (opts.uid !== undefined || opts.gid !== undefined) fchownSync(fd, opts.uid ?? -1, opts.gid ?? -1)
      if (opts.batch === undefined) await fdatasyncAsync(fd)
    } finally {
      closeSync(fd)
    }
    if (opts.batch !== undefined) {
      opts.onWait?.()
      await opts.batch.durable(temp, data.length)
    }
    renameSync(temp, target)
  } catch (err) {
    try {
      unlinkSync(temp)
    } catch {
      // Never created, or gone already.
    }
    throw err
  }
  dirs.add(dirname(target))
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
