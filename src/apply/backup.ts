import { createHash } from 'node:crypto'
import { lstat, mkdir, open, readdir, readFile, rename, unlink, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { BACKUP_DIR, BACKUP_INDEX, BACKUPS_PER_PATH, COPY_CHUNK_BYTES, NO_FOLLOW } from './constants.js'
import { removeStaleTemps, syncDir, tempPathFor, writeFileAtomic } from '../store/atomic.js'

/** One line of `<state>/backups/index.jsonl`. */
export interface BackupEntry {
  /** ISO time of the backup, from the injected clock. */
  at: string
  policy: string
  id: string
  /** The policy path, and the host path it had under `--root`. */
  path: string
  host: string
  reason: 'replace' | 'delete'
  kind: 'file' | 'symlink' | 'directory'
  /** For files: the content's SHA-256; the content is `<state>/backups/<sha256>`. Absent when `secret`. */
  sha256?: string
  /**
   * A file rendered from a secret: its content was not kept (nor its hash, which would let a
   * password be guessed), so there is nothing to restore it from; the next apply writes it again.
   */
  secret?: boolean
  size?: number
  /** For symlinks: what the link pointed to. */
  target?: string
  mode?: string
  uid?: number
  gid?: number
}

/** Contents compact() deletes at once (the thread pool has 4 threads; the rest wait in its queue). */
const UNLINKS_AT_ONCE = 16

/** A content's file name in the backup directory: its SHA-256. */
const CONTENT_NAME = /^[0-9a-f]{64}$/

/**
 * Content-addressed copies of files before they are replaced or deleted, plus an
 * append-only index: what was at a path, when, and which policy changed it.
 * A backup is durable before the file it protects is touched. compact() bounds both to the
 * newest BACKUPS_PER_PATH backups per path.
 */
export class BackupStore {
  readonly dir: string
  private ready: Promise<void> | undefined
  private appending: Promise<void> = Promise.resolve()
  /** Backups recorded by this store: compact() has nothing to do without one. */
  private recorded = 0
  /** Whether the index is known to end in a newline (an append of ours completed). */
  private endsInNewline = false

  constructor (stateDir: string) {
    this.dir = join(stateDir, BACKUP_DIR)
  }

  private async init (): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(async (created) => {
      if (created !== undefined) await syncDir(dirname(this.dir))
    })
    await this.ready
  }

  /** Removes the half-made copies of an apply that was killed (never named by the index); call under the apply lock. */
  async removeStaleTemps (): Promise<number> {
    return await removeStaleTemps(this.dir)
  }

  /** Copies the file at `host` (its content if already read) and records it; returns the hash. */
  async saveFile (host: string, entry: Omit<BackupEntry, 'kind' | 'sha256' | 'size'>, content?: Uint8Array): Promise<string> {
    await this.init()
    let sha256: string
    let size: number
    if (content !== undefined) {
      sha256 = createHash('sha256').update(content).digest('hex')
      size = content.length
      const dest = join(this.dir, sha256)
      if (!(await present(dest))) await writeFileAtomic(dest, content, { mode: 0o600 })
    } else {
      // Unknown or large content: stream it into a temporary file while hashing, so memory stays flat.
      const temp = tempPathFor(join(this.dir, 'copy'))
      try {
        ({ sha256, size } = await copyAndHash(host, temp))
        const dest = join(this.dir, sha256)
        if (await present(dest)) await unlink(temp)
        else await rename(temp, dest)
        await syncDir(this.dir)
      } catch (err) {
        await unlink(temp).catch(() => {})
        throw err
      }
    }
    await this.record({ ...entry, kind: 'file', sha256, size })
    return sha256
  }

  /** Records a symlink or directory that is replaced or removed; there is no content to keep. */
  async saveEntry (entry: BackupEntry): Promise<void> {
    await this.init()
    await this.record(entry)
  }

  private async record (entry: BackupEntry): Promise<void> {
    const line = JSON.stringify(entry) + '\n'
    // One writer at a time, so lines never interleave; each is fsynced before the change it protects.
    const next = this.appending.then(async () => {
      const fh = await open(join(this.dir, BACKUP_INDEX), 'a+', 0o600)
      try {
        // A crash mid-append leaves a torn last line; appended to as it stands, it would swallow
        // this line too, and compact() would then delete the content this line names.
        this.endsInNewline ||= await endsInNewline(fh)
        await fh.write(this.endsInNewline ? line : '\n' + line)
        this.endsInNewline = true
        await fh.datasync()
      } finally {
        await fh.close()
      }
    })
    this.appending = next.catch(() => {})
    await next
    this.recorded++
  }

  /**
   * Keeps the newest `keep` backups of each path and deletes the contents no kept line names.
   * Call it with no backup in flight (the applier does, at the end of a run, under the apply
   * lock). Crash-safe: the new index replaces the old one atomically and durably before any
   * content goes, so a crash leaves the old index or the new one, each naming only contents
   * that exist; a content orphaned by a crash in between is deleted by the next compaction.
   */
  async compact (keep = BACKUPS_PER_PATH): Promise<{ kept: number, dropped: number, contentsDeleted: number }> {
    if (this.recorded === 0) return { kept: 0, dropped: 0, contentsDeleted: 0 }
    await this.appending
    const entries = await readBackupIndex(dirname(this.dir))
    const kept = newestPerPath(entries, keep)
    if (kept.length < entries.length) {
      await writeFileAtomic(join(this.dir, BACKUP_INDEX), kept.map((e) => JSON.stringify(e) + '\n').join(''), { mode: 0o600 })
    }
    const named = new Set(kept.flatMap((e) => e.sha256 !== undefined ? [e.sha256] : []))
    const unnamed = (await readdir(this.dir)).filter((name) => CONTENT_NAME.test(name) && !named.has(name))
    // Several unlinks at a time through the thread pool: one by one, 2,000 took 2.7 s on a busy
    // disk; synchronous ones would stall the agent's event loop as long.
    for (let i = 0; i < unnamed.length; i += UNLINKS_AT_ONCE) {
      await Promise.all(unnamed.slice(i, i + UNLINKS_AT_ONCE).map(async (name) => { await unlink(join(this.dir, name)).catch(() => {}) }))
    }
    const contentsDeleted = unnamed.length
    if (contentsDeleted > 0) await syncDir(this.dir)
    this.recorded = 0
    return { kept: kept.length, dropped: entries.length - kept.length, contentsDeleted }
  }
}

/** The newest `keep` entries of each host path, in their order in the index (oldest first). Pure. */
export function newestPerPath (entries: readonly BackupEntry[], keep: number): BackupEntry[] {
  const seen = new Map<string, number>()
  const out: BackupEntry[] = []
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i] as BackupEntry
    const n = seen.get(e.host) ?? 0
    if (n >= keep) continue
    seen.set(e.host, n + 1)
    out.push(e)
  }
  return out.reverse()
}

/** Every backup recorded under `stateDir`, oldest first; an empty list when there are none. */
export async function readBackupIndex (stateDir: string): Promise<BackupEntry[]> {
  let text: string
  try {
    text = await readFile(join(stateDir, BACKUP_DIR, BACKUP_INDEX), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const entries: BackupEntry[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    try {
      entries.push(JSON.parse(line) as BackupEntry)
    } catch {
      // A line cut short by a crash is skipped; the ones before it are intact.
    }
  }
  return entries
}

/** Whether the open file is empty or ends in a newline. */
async function endsInNewline (fh: FileHandle): Promise<boolean> {
  const { size } = await fh.stat()
  if (size === 0) return true
  const last = Buffer.alloc(1)
  await fh.read(last, 0, 1, size - 1)
  return last[0] === 0x0a
}

async function present (p: string): Promise<boolean> {
  return await lstat(p).then(() => true, () => false)
}

/** Copies a regular file (never through a symlink) to `dest`, fsynced, and hashes it on the way. */
async function copyAndHash (src: string, dest: string): Promise<{ sha256: string, size: number }> {
  const input = await open(src, NO_FOLLOW)
  try {
    if (!(await input.stat()).isFile()) throw Object.assign(new Error(`${src} is no longer a regular file`), { code: 'EINVAL' })
    const output = await open(dest, 'wx', 0o600)
    try {
      const hash = createHash('sha256')
      const buffer = Buffer.alloc(COPY_CHUNK_BYTES)
      let size = 0
      for (;;) {
        const { bytesRead } = await input.read(buffer, 0, buffer.length, null)
        if (bytesRead === 0) break
        const chunk = buffer.subarray(0, bytesRead)
        hash.update(chunk)
        await output.write(chunk)
        size += bytesRead
      }
      await output.datasync()
      return { sha256: hash.digest('hex'), size }
    } finally {
      await output.close()
    }
  } finally {
    await input.close()
  }
}
