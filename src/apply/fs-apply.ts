import { chmod, lchown, mkdir, open, rmdir, unlink } from 'node:fs/promises'
import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs'
import { dirname } from 'node:path'
import type { Current, Op } from './fs-plan.js'
import { octal } from './fs-plan.js'
import { DirSync, symlinkAtomic } from './atomic.js'
import { writeFileAtomic } from '../store/atomic.js'
import type { BackupEntry, BackupStore } from './backup.js'
import type { WriteBatch } from './durable.js'
import { NO_FOLLOW } from './constants.js'

export interface ReadOptions {
  /** Read a regular file's content when this says so for its size. */
  readContent?: (size: number) => boolean
  /** Count a directory's entries (for removal). */
  countEntries?: boolean
}

/** A regular file's content, or undefined when the path is no longer a regular file. */
function readRegularFile (host: string): Buffer | undefined {
  let fd: number
  try {
    fd = openSync(host, NO_FOLLOW)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ELOOP' || code === 'ENOENT' || code === 'EISDIR') return undefined
    throw err
  }
  try {
    if (!fstatSync(fd).isFile()) return undefined
    return readFileSync(fd)
  } finally {
    closeSync(fd)
  }
}

function kindOf (info: Stats): string {
  if (info.isFIFO()) return 'fifo'
  if (info.isSocket()) return 'socket'
  if (info.isCharacterDevice()) return 'character device'
  if (info.isBlockDevice()) return 'block device'
  return 'special file'
}

/**
 * What is at `host` now, without following a final symlink. Reads are synchronous on
 * purpose: an lstat or a small read costs microseconds, while the promise API's round
 * trips through the thread pool cost ten times that and dominate a no-op apply.
 */
export async function readCurrent (host: string, opts: ReadOptions = {}): Promise<Current> {
  return readCurrentSync(host, opts)
}

function readCurrentSync (host: string, opts: ReadOptions): Current {
  const info = lstatSync(host, { throwIfNoEntry: false })
  if (info === undefined) return { kind: 'missing' }
  if (info.isFile()) {
    const cur: Current = { kind: 'file', mode: info.mode, uid: info.uid, gid: info.gid, size: info.size }
    if (opts.readContent?.(info.size) === true) {
      const content = readRegularFile(host)
      // Replaced by something else between lstat and read: look again from the top.
      if (content === undefined) return readCurrentSync(host, opts)
      cur.content = content
    }
    return cur
  }
  if (info.isDirectory()) {
    const cur: Current = { kind: 'directory', mode: info.mode, uid: info.uid, gid: info.gid }
    if (opts.countEntries === true) cur.entries = readdirSync(host).length
    return cur
  }
  if (info.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(host) }
  return { kind: 'other', what: kindOf(info) }
}

export interface ExecuteContext {
  dirs: DirSync
  /** Writes become durable together (see WriteBatch); absent: each write fdatasyncs. */
  batch?: WriteBatch
  /** Called when a write starts waiting for its batch, to let another resource use the slot. */
  onWait?: () => void
  /** Where to keep what the ops replace; absent in tests that do not care. */
  backups?: BackupStore
  backup: Omit<BackupEntry, 'reason' | 'kind'>
  /** The path holds a secret: its old content is recorded as not kept, never copied (nor hashed). */
  secret?: boolean
}

/**
 * Runs a plan's ops against `host`. Before anything is replaced or removed, a copy goes to
 * the backup store and is durable; writes are atomic. Directory fsyncs are batched in `dirs`.
 */
export async function executeOps (host: string, ops: readonly Op[], current: Current, ctx: ExecuteContext): Promise<void> {
  let cur = current
  for (const op of ops) {
    switch (op.op) {
      case 'write':
        await backupBefore(host, cur, 'replace', ctx)
        await writeFileAtomic(host, op.content, { mode: op.mode, uid: op.uid, gid: op.gid, batch: ctx.batch, onWait: ctx.onWait, dirs: ctx.dirs })
        break
      case 'symlink':
        await backupBefore(host, cur, 'replace', ctx)
        await symlinkAtomic(op.target, host, ctx.dirs)
        break
      case 'unlink':
        await backupBefore(host, cur, 'delete', ctx)
        await unlink(host)
        ctx.dirs.add(dirname(host))
        cur = { kind: 'missing' }
        break
      case 'rmdir':
        await backupBefore(host, cur, 'delete', ctx)
        await rmdir(host)
        ctx.dirs.add(dirname(host))
        cur = { kind: 'missing' }
        break
      case 'mkdir':
        await mkdir(host, { mode: op.mode })
        // mkdir's mode passes through the umask; set it exactly.
        await chmodNoFollow(host, op.mode)
        ctx.dirs.add(dirname(host))
        break
      case 'chmod':
        await chmodNoFollow(host, op.mode)
        break
      case 'chown':
        await lchown(host, op.uid ?? -1, op.gid ?? -1)
        break
    }
  }
}

async function backupBefore (host: string, cur: Current, reason: 'replace' | 'delete', ctx: ExecuteContext): Promise<void> {
  if (ctx.backups === undefined) return
  if (cur.kind === 'file' && ctx.secret === true) {
    await ctx.backups.saveEntry({ ...ctx.backup, reason, kind: 'file', secret: true, mode: octal(cur.mode), uid: cur.uid, gid: cur.gid })
  } else if (cur.kind === 'file') {
    await ctx.backups.saveFile(host, { ...ctx.backup, reason, mode: octal(cur.mode), uid: cur.uid, gid: cur.gid }, cur.content?.length === cur.size ? cur.content : undefined)
  } else if (cur.kind === 'symlink') {
    await ctx.backups.saveEntry({ ...ctx.backup, reason, kind: 'symlink', target: cur.target })
  } else if (cur.kind === 'directory' && reason === 'delete') {
    await ctx.backups.saveEntry({ ...ctx.backup, reason, kind: 'directory', mode: octal(cur.mode), uid: cur.uid, gid: cur.gid })
  }
}

/**
 * chmod that never follows a symlink: chmod(2) does, so a user who can write the directory
 * could swap the file for a link to /etc/shadow between our lstat and the chmod.
 */
async function chmodNoFollow (host: string, mode: number): Promise<void> {
  let fh
  try {
    fh = await open(host, NO_FOLLOW)
  } catch (err) {
    // Without read permission (a non-root applier on a write-only file), fall back to the path.
    if ((err as NodeJS.ErrnoException).code === 'EACCES') return await chmod(host, mode)
    throw err
  }
  try {
    await fh.chmod(mode)
  } finally {
    await fh.close()
  }
}
