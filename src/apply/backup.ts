import { createHash } from 'node:crypto'
import { lstat, mkdir, open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { BACKUP_DIR, BACKUP_INDEX, COPY_CHUNK_BYTES, NO_FOLLOW } from './constants.js'
import { syncDir, tempPathFor, writeFileAtomic } from '../store/atomic.js'

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
  /** For files: the content's SHA-256; the content is `<state>/backups/<sha256>`. */
  sha256?: string
  size?: number
  /** For symlinks: what the link pointed to. */
  target?: string
  mode?: string
  uid?: number
  gid?: number
}

/**
 * Content-addressed copies of files before they are replaced or deleted, plus an
 * append-only index: what was at a path, when, and which policy changed it.
 * A backup is durable before the file it protects is touched.
 */
export class BackupStore {
  readonly dir: string
  private ready: Promise<void> | undefined
  private appending: Promise<void> = Promise.resolve()

  constructor (stateDir: string) {
    this.dir = join(stateDir, BACKUP_DIR)
  }

  private async init (): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(async (created) => {
      if (created !== undefined) await syncDir(dirname(this.dir))
    })
    await this.ready
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
      const fh = await open(join(this.dir, BACKUP_INDEX), 'a', 0o600)
      try {
        await fh.write(line)
        await fh.datasync()
      } finally {
        await fh.close()
      }
    })
    this.appending = next.catch(() => {})
    await next
  }
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
