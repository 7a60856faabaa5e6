import { open, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { writeFileAtomic } from './atomic.js'

/**
 * Replaces `file` atomically (see writeFileAtomic). `durable` (the default) fsyncs the content
 * before the rename and the directory after it; without it a crash may lose the new file or
 * leave the old one, never half of one: for caches, where a lost entry only costs a miss.
 */
export async function atomicWrite (file: string, data: Uint8Array | string, mode = 0o644, durable = true): Promise<void> {
  await writeFileAtomic(file, data, { mode, durable })
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
