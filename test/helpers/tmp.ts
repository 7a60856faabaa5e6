import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach } from 'vitest'

/** Makes a fresh directory under the system temp dir; the caller removes it. */
export async function makeTempDir (prefix = 'grapevine-test-'): Promise<string> {
  return await mkdtemp(join(tmpdir(), prefix))
}

export async function removeTempDir (dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}

/**
 * A fresh temp directory for each test in the calling file or describe block, removed
 * after the test. Returns a getter: `const dir = useTempDir(); ... join(dir(), 'key')`.
 */
export function useTempDir (prefix?: string): () => string {
  let current: string | undefined
  beforeEach(async () => { current = await makeTempDir(prefix) })
  afterEach(async () => {
    if (current !== undefined) await removeTempDir(current)
    current = undefined
  })
  return () => {
    if (current === undefined) throw new Error('useTempDir(): the directory exists only inside a test')
    return current
  }
}
