import { open, readdir, unlink } from 'node:fs/promises'
import { closeSync, fchmodSync, fchownSync, fdatasync, linkSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { basename, dirname, join } from 'node:path'
import { TEMP_MARKER, TEMP_NAME_MAX_BASE, TEMP_NAMES_PER_DRAW, TEMP_RANDOM_BYTES } from './constants.js'

const TEMP_NAME = new RegExp(`^\\..*\\.${TEMP_MARKER}-(\\d+)-[0-9a-f]+$`)

let randomPool = Buffer.alloc(0)
let randomAt = 0
function randomHex (bytes: number): string {
  if (randomAt + bytes > randomPool.length) {
    randomPool = randomBytes(bytes * TEMP_NAMES_PER_DRAW)
    randomAt = 0
  }
  randomAt += bytes
  return randomPool.toString('hex', randomAt - bytes, randomAt)
}

/** `.NAME.grapevine-tmp-PID-RANDOM` beside `target`, so rename stays on one file system. */
export function tempPathFor (target: string): string {
  const name = basename(target).slice(0, TEMP_NAME_MAX_BASE)
  return join(dirname(target), `.${name}.${TEMP_MARKER}-${process.pid}-${randomHex(TEMP_RANDOM_BYTES)}`)
}

/** The pid in a temporary file's name, or undefined when the name is not one of ours. */
export function tempOwner (name: string): number | undefined {
  const m = TEMP_NAME.exec(name)
  return m === null ? undefined : Number(m[1])
}

/**
 * Removes temporary files left in `dir` by a writer that was killed (an apply, an agent).
 * Files of a live process other than this one are left alone: another writer may be writing
 * them. Returns how many were removed.
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

/** Makes the entries of `dir` (a rename into it) durable. */
export async function syncDir (dir: string): Promise<void> {
  let fh
  try {
    fh = await open(dir, 'r')
    await fh.sync()
  } catch (err) {
    // The directory may have been removed since; nothing left in it to make durable.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  } finally {
    await fh?.close()
  }
}

export interface AtomicWriteOptions {
  /** The new file's mode, exactly (the umask does not apply), set before the file appears under its name. */
  mode: number
  uid?: number
  gid?: number
  /**
   * Make the content durable before the rename and the rename after it (the default). Without
   * it a crash may lose the new file or keep the old one, never leave half of one: for caches,
   * where a lost entry only costs a miss.
   */
  durable?: boolean
  /** Make the content durable with the rest of the batch instead of an fdatasync of its own. */
  batch?: { durable: (temp: string, bytes: number) => Promise<void> }
  /** Called when the write starts waiting for its batch: it holds no file descriptor then. */
  onWait?: () => void
  /** Collects the directory to fsync later, once for many renames (the applier's DirSync), instead of fsyncing it here. */
  dirs?: { add: (dir: string) => void }
  /** Fail with EEXIST instead of replacing a file that exists: the temporary file is linked into place, not renamed. */
  exclusive?: boolean
}

const fdatasyncAsync = async (fd: number): Promise<void> =>
  await new Promise((resolve, reject) => fdatasync(fd, (err) => { if (err !== null) reject(err); else resolve() }))

function removeTemp (temp: string): void {
  try {
    unlinkSync(temp)
  } catch {
    // Never created, or gone already.
  }
}

/**
 * Replaces `target` with `data` so that a reader (or a crash) sees the old file or the new
 * one, never a mix: write a temporary file beside it (mode 0600 from the first byte), set
 * mode and owner on it, make it durable, and only then rename it into place and make the
 * rename durable. The temporary file is removed on error.
 *
 * Only the fsyncs wait for the disk, so only they go to the thread pool. The rest are
 * synchronous: each costs microseconds, while a trip through the pool costs more than that
 * in wake-ups, and creating entries in one directory is serialised by the kernel anyway.
 */
export async function writeFileAtomic (target: string, data: Uint8Array | string, opts: AtomicWriteOptions): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  const durable = opts.durable !== false
  const temp = tempPathFor(target)
  const fd = openSync(temp, 'wx', 0o600)
  try {
    try {
      for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off)
      // Mode and owner are set before the rename, so a secret is never briefly world-readable.
      fchmodSync(fd, opts.mode)
      if (opts.uid !== undefined || opts.gid !== undefined) fchownSync(fd, opts.uid ?? -1, opts.gid ?? -1)
      if (durable && opts.batch === undefined) await fdatasyncAsync(fd)
    } finally {
      closeSync(fd)
    }
    if (durable && opts.batch !== undefined) {
      opts.onWait?.()
      await opts.batch.durable(temp, bytes.length)
    }
    // link(2) fails if the target exists, so a concurrent writer's file is never clobbered.
    if (opts.exclusive === true) linkSync(temp, target)
    else renameSync(temp, target)
  } catch (err) {
    removeTemp(temp)
    throw err
  }
  if (opts.exclusive === true) removeTemp(temp)
  if (!durable) return
  if (opts.dirs !== undefined) opts.dirs.add(dirname(target))
  else await syncDir(dirname(target))
}
