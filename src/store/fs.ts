import { open, rename, mkdir, unlink } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import { randomBytes } from 'node:crypto'

/**
 * Crash-safe replace: write a temp file in the same directory, fsync it, rename it over the
 * target, then fsync the directory so the rename itself survives a power cut. A reader or a
 * crash sees the old file or the new one, never half of either.
 */
/**
 * Writes a temporary file beside `file` and renames it into place. `durable` (the default)
 * fsyncs the content before the rename and the directory after it; without it a crash may
 * lose the new file or leave the old one, never half of one: for caches, where a lost entry
 * only costs a miss.
 */
export async function atomicWrite (file: string, data: Uint8Array | string, mode = 0o644, durable = true): Promise<void> {
  const dir = dirname(file)
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  const fh = await open(tmp, 'wx', mode)
  try {
    await fh.writeFile(data)
    if (durable) await fh.sync()
  } catch (err) {
    await fh.close()
    await unlink(tmp).catch(() => {})
    throw err
  }
  await fh.close()
  try {
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
  if (durable) await fsyncDir(dir)
}

export async function fsyncDir (dir: string): Promise<void> {
  const dh = await open(dir, 'r')
  try {
    await dh.sync()
  } finally {
    await dh.close()
  }
}

/** Appends one line and fsyncs it: the audit trail must not lose an entry that was reported. */
export async function appendLine (file: string, line: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true })
  const fh = await open(file, 'a', 0o644)
  try {
    await fh.write(line.endsWith('\n') ? line : `${line}\n`)
    await fh.sync()
  } finally {
    await fh.close()
  }
}
