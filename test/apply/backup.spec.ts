import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { readBackupIndex, BACKUPS_PER_PATH, BACKUP_DIR, BACKUP_INDEX, type BackupEntry } from '../../src/apply/index.js'
import { newestPerPath } from '../../src/apply/backup.js'
import { policyOf, useSandbox } from './helpers.js'

const entry = (host: string, n: number): BackupEntry => ({ at: `2026-01-01T00:00:0${n}.000Z`, policy: 'p', id: host, path: host, host, reason: 'replace', kind: 'file', sha256: `${host}-${n}` })
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')
const contents = async (dir: string): Promise<string[]> => (await readdir(dir)).filter((f) => /^[0-9a-f]{64}$/.test(f)).sort()

describe('newestPerPath', () => {
  type Case = 'under the bound' | 'over it, one path' | 'paths interleaved' | 'keep 0'
  const a = [1, 2, 3].map((n) => entry('/a', n))
  const b = [1, 2].map((n) => entry('/b', n))
  const table = {
    'under the bound': { entries: a, keep: 5, out: a },
    'over it, one path': { entries: a, keep: 2, out: a.slice(1) },
    'paths interleaved': { entries: [a[0], b[0], a[1], b[1], a[2]], keep: 1, out: [b[1], a[2]] },
    'keep 0': { entries: a, keep: 0, out: [] }
  } satisfies Record<Case, { entries: unknown[], keep: number, out: unknown[] }>
  it.each(Object.entries(table))('%s', (_, { entries, keep, out }) => {
    expect(newestPerPath(entries as BackupEntry[], keep)).toEqual(out)
  })
})

describe('the backup store is bounded (issue 15: the index was never trimmed)', () => {
  const sandbox = useSandbox()
  const twoFiles = (n: number) => policyOf([
    { id: 'one', type: 'file', path: '/one', content: `one ${n}\n` },
    { id: 'two', type: 'file', path: '/two', content: `two ${n}\n` }
  ])

  it(`keeps the newest ${BACKUPS_PER_PATH} backups of each path and only their contents`, async () => {
    const box = sandbox()
    const applies = BACKUPS_PER_PATH + 4
    for (let n = 0; n <= applies; n++) await box.apply(twoFiles(n))
    const index = await readBackupIndex(box.state)
    expect(index).toHaveLength(2 * BACKUPS_PER_PATH)
    for (const path of ['/one', '/two']) {
      const name = path.slice(1)
      // The newest backups: the contents replaced by the last BACKUPS_PER_PATH applies.
      const expected = Array.from({ length: BACKUPS_PER_PATH }, (_, i) => sha256(`${name} ${applies - BACKUPS_PER_PATH + i}\n`))
      expect(index.filter((e) => e.path === path).map((e) => e.sha256)).toEqual(expected)
    }
    const dir = join(box.state, BACKUP_DIR)
    expect(await contents(dir)).toEqual(index.map((e) => e.sha256).sort())
    for (const e of index) expect(sha256(await readFile(join(dir, e.sha256 as string), 'utf8'))).toBe(e.sha256)
  })

  it('deletes a content a crash left unnamed, and keeps one still named by a kept line', async () => {
    const box = sandbox()
    await box.apply(twoFiles(0))
    await box.apply(twoFiles(1))
    const dir = join(box.state, BACKUP_DIR)
    const orphan = sha256('copied, then the process was killed before its index line\n')
    await writeFile(join(dir, orphan), 'copied, then the process was killed before its index line\n')
    // A torn last line, as a crash mid-append leaves it.
    await writeFile(join(dir, BACKUP_INDEX), (await readFile(join(dir, BACKUP_INDEX), 'utf8')) + '{"at":"2026-')
    await box.apply(twoFiles(2))
    expect(await contents(dir)).not.toContain(orphan)
    const index = await readBackupIndex(box.state)
    // The line after the torn one is whole: it names a content the compaction must keep.
    expect(index.map((e) => e.sha256).sort()).toEqual([sha256('one 0\n'), sha256('two 0\n'), sha256('one 1\n'), sha256('two 1\n')].sort())
    expect(await contents(dir)).toEqual(index.map((e) => e.sha256).sort())
  })

  it('leaves the store alone when a run made no backup', async () => {
    const box = sandbox()
    await box.apply(twoFiles(0))
    await box.apply(twoFiles(1))
    const dir = join(box.state, BACKUP_DIR)
    const stray = sha256('stray\n')
    await writeFile(join(dir, stray), 'stray\n')
    await box.apply(twoFiles(1))
    expect(await contents(dir)).toContain(stray)
  })
})
