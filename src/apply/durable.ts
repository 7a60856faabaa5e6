import { execFile } from 'node:child_process'
import { closeSync, fdatasync, openSync, statSync } from 'node:fs'
import { release } from 'node:os'
import { dirname } from 'node:path'
import { EXEC_PATH, NO_FOLLOW, SYNCFS_MIN_BATCH, SYNCFS_TIMEOUT_MS, WRITE_BATCH_MAX, WRITE_BATCH_MAX_BYTES } from './constants.js'

/** Runs syncfs(2) on the file system that holds `path`; rejects when it reports an error. */
export type SyncFs = (path: string) => Promise<void>

export interface WriteBatchInit {
  /** syncfs for large batches; null to always fdatasync file by file (default: `sync -f` where syncfs reports errors). */
  syncFs?: SyncFs | null
  /** Fewest files in a batch for which one syncfs replaces per-file fdatasync. */
  minBatch?: number
  /** A batch is made durable once it holds this many files, without waiting for more. */
  maxBatch?: number
  /** ... or this many bytes, since each waiting writer keeps its content in memory. */
  maxBytes?: number
}

interface Entry { temp: string, resolve: () => void, reject: (err: unknown) => void }

/**
 * Makes closed temporary files durable in batches, so that a large apply pays for one
 * syncfs(2) instead of a thousand fdatasyncs. Writers call `durable(temp)` after writing and
 * closing their temporary file, and rename only when it resolves: no rename happens before
 * that file's content is on disk.
 *
 * Why: on ext4 (and others) each fdatasync of a new file forces a journal commit, or
 * without a journal a write of the parent directory, and creating the next file waits on
 * it. One syncfs writes every dirty page and inode of the file system once, then flushes
 * the disk cache once.
 *
 * A batch closes when a turn of the event loop adds nothing to it, or at maxBatch files or maxBytes.
 * Small batches, and any batch whose syncfs fails, are made durable file by file: each
 * temporary file is opened again and fdatasynced, which still reports a write-back error
 * that no one has seen (Linux reports such an error once, to the first fsync to look).
 */
export class WriteBatch {
  private pending: Entry[] = []
  private scheduled = false
  private bytes = 0
  private seen = 0
  private readonly syncFs: SyncFs | null
  private readonly minBatch: number
  private readonly maxBatch: number
  private readonly maxBytes: number

  constructor (init: WriteBatchInit = {}) {
    this.syncFs = init.syncFs === undefined ? defaultSyncFs() : init.syncFs
    this.minBatch = init.minBatch ?? SYNCFS_MIN_BATCH
    this.maxBatch = init.maxBatch ?? WRITE_BATCH_MAX
    this.maxBytes = init.maxBytes ?? WRITE_BATCH_MAX_BYTES
  }

  /** Resolves once the content of `temp` (`bytes` long, written and closed) is durable. */
  async durable (temp: string, bytes = 0): Promise<void> {
    return await new Promise((resolve, reject) => {
      this.pending.push({ temp, resolve, reject })
      this.bytes += bytes
      if (this.pending.length >= this.maxBatch || this.bytes >= this.maxBytes) this.close()
      else this.schedule()
    })
  }

  private schedule (): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      if (this.pending.length === 0) return
      // Still growing: writers that were let go by this batch's earlier members are adding to it.
      if (this.pending.length !== this.seen) {
        this.seen = this.pending.length
        this.schedule()
        return
      }
      this.close()
    })
  }

  private close (): void {
    const batch = this.pending
    this.pending = []
    this.bytes = 0
    this.seen = 0
    void this.sync(batch)
  }

  private async sync (batch: Entry[]): Promise<void> {
    if (this.syncFs !== null && batch.length >= this.minBatch) {
      try {
        await Promise.all(oneFilePerFileSystem(batch.map((e) => e.temp)).map(this.syncFs))
        for (const e of batch) e.resolve()
        return
      } catch {
        // No sync command, an old one, or an error: fdatasync file by file, which says which files failed.
      }
    }
    await Promise.all(batch.map(async (e) => { await fdatasyncPath(e.temp).then(e.resolve, e.reject) }))
  }
}

/** One path per file system among `paths` (by the device of each parent directory). */
function oneFilePerFileSystem (paths: string[]): string[] {
  const byDir = new Map<string, string>()
  for (const p of paths) if (!byDir.has(dirname(p))) byDir.set(dirname(p), p)
  const byDev = new Map<number, string>()
  for (const [dir, p] of byDir) {
    const dev = statSync(dir).dev
    if (!byDev.has(dev)) byDev.set(dev, p)
  }
  return [...byDev.values()]
}

async function fdatasyncPath (path: string): Promise<void> {
  const fd = openSync(path, NO_FOLLOW)
  try {
    await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => { if (err !== null) reject(err); else resolve() }))
  } finally {
    closeSync(fd)
  }
}

/**
 * `sync -f PATH` (GNU coreutils) calls syncfs(2) and fails when it fails. Linux reports
 * write-back errors through syncfs only since 5.8; elsewhere, no syncfs.
 */
export function defaultSyncFs (): SyncFs | null {
  if (process.platform !== 'linux') return null
  const [major = 0, minor = 0] = release().split('.').map((n) => parseInt(n, 10))
  if (major < 5 || (major === 5 && minor < 8)) return null
  return async (path) => await new Promise((resolve, reject) => {
    execFile('sync', ['-f', path], { env: { PATH: EXEC_PATH }, timeout: SYNCFS_TIMEOUT_MS }, (err) => { if (err !== null) reject(err); else resolve() })
  })
}
