import { describe, expect, it } from 'vitest'
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { WriteBatch, defaultSyncFs, type SyncFs } from '../../src/apply/durable.js'
import { tempOwner } from '../../src/store/atomic.js'
import { policyOf, summary, useSandbox } from './helpers.js'
import { useTempDir } from '../helpers/tmp.js'

const FILES = 120
const contentOf = (i: number): string => `file ${i}\n`.repeat(i + 1)
const filesPolicy = (n: number): ReturnType<typeof policyOf> => policyOf([
  { id: 'd', type: 'directory', path: '/d' },
  ...Array.from({ length: n }, (_, i) => ({ id: `f${i}`, type: 'file', path: `/d/f${i}`, mode: '0640', content: contentOf(i) }))
])

/** The target a temporary file stands for: `.NAME.grapevine-tmp-PID-RANDOM` → NAME. */
const targetOf = (temp: string): string => temp.slice(1, temp.lastIndexOf('.grapevine-tmp-'))

describe('WriteBatch', () => {
  const dir = useTempDir('grapevine-batch-')

  async function temps (n: number): Promise<string[]> {
    const paths = Array.from({ length: n }, (_, i) => join(dir(), `t${i}`))
    for (const p of paths) await writeFile(p, 'x')
    return paths
  }

  it('makes a large batch durable with one syncfs per file system', async () => {
    const calls: string[] = []
    const batch = new WriteBatch({ minBatch: 4, syncFs: async (p) => { calls.push(p) } })
    const paths = await temps(10)
    await Promise.all(paths.map(async (p) => { await batch.durable(p) }))
    expect(calls).toHaveLength(1)
    expect(dirname(calls[0] as string)).toBe(dir())
  })

  it('fdatasyncs file by file below minBatch, and tells each writer about its own file', async () => {
    const calls: string[] = []
    const batch = new WriteBatch({ minBatch: 4, syncFs: async (p) => { calls.push(p) } })
    const [a, b] = await temps(2)
    const results = await Promise.allSettled([batch.durable(a as string), batch.durable(join(dir(), 'missing')), batch.durable(b as string)])
    expect(calls).toEqual([])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(((results[1] as PromiseRejectedResult).reason as NodeJS.ErrnoException).code).toBe('ENOENT')
  })

  it('falls back to fdatasync file by file when syncfs fails', async () => {
    let calls = 0
    const batch = new WriteBatch({ minBatch: 2, syncFs: async () => { calls++; throw new Error('sync: not supported') } })
    const paths = await temps(5)
    const results = await Promise.allSettled([...paths, join(dir(), 'missing')].map(async (p) => { await batch.durable(p) }))
    expect(calls).toBe(1)
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected'])
  })

  it('closes a batch at maxBatch, and the rest after a quiet turn of the event loop', async () => {
    let calls = 0
    const batch = new WriteBatch({ minBatch: 1, maxBatch: 3, syncFs: async () => { calls++ } })
    const paths = await temps(7)
    await Promise.all(paths.map(async (p) => { await batch.durable(p) }))
    expect(calls).toBe(3)
  })

  it('closes a batch once it holds maxBytes, since waiting writers keep their content in memory', async () => {
    let calls = 0
    const batch = new WriteBatch({ minBatch: 1, maxBytes: 100, syncFs: async () => { calls++ } })
    const paths = await temps(4)
    await Promise.all(paths.map(async (p) => { await batch.durable(p, 60) }))
    expect(calls).toBe(2)
  })

  it('syncs a real file system with the default (sync -f) where the kernel reports errors through syncfs', async () => {
    const syncFs = defaultSyncFs()
    const [p] = await temps(1)
    // null off Linux or before 5.8; then per-file fdatasync is the only path and this checks nothing more.
    if (syncFs !== null) await syncFs(p as string)
    await new WriteBatch({ syncFs, minBatch: 1 }).durable(p as string)
  })
})

describe('applyPolicy with batched durability', () => {
  const sandbox = useSandbox()

  it('renames no file before its content is durable: at syncfs time every temporary file is complete and no target exists', async () => {
    const sb = sandbox()
    const seen = new Set<string>()
    const real = defaultSyncFs()
    const recording: SyncFs = async (path) => {
      const d = dirname(path)
      for (const name of readdirSync(d)) {
        if (tempOwner(name) !== process.pid) continue
        const target = targetOf(name)
        // Read synchronously: this is the moment the batch is handed to syncfs.
        expect(readdirSync(d)).not.toContain(target)
        const i = Number(target.slice(1))
        expect(readFileSync(join(d, name), 'utf8') === contentOf(i), `${name} is complete before syncfs`).toBe(true)
        seen.add(target)
      }
      if (real !== null) await real(path)
    }
    const report = await sb.apply(filesPolicy(FILES), { writeBatch: { syncFs: recording, minBatch: 8 } })
    expect(report.outcome).toBe('changes')
    expect(report.counts.failed).toBe(0)
    // Every file went through a syncfs (not the per-file fallback).
    expect(seen.size).toBe(FILES)
    const names = await readdir(sb.at('/d'))
    expect(names.sort()).toEqual(Array.from({ length: FILES }, (_, i) => `f${i}`).sort())
    for (let i = 0; i < FILES; i++) {
      expect(await readFile(sb.at(`/d/f${i}`), 'utf8')).toBe(contentOf(i))
      expect(((await lstat(sb.at(`/d/f${i}`))).mode & 0o777).toString(8)).toBe('640')
    }
  })

  it('writes every file through the per-file fallback when syncfs fails', async () => {
    const sb = sandbox()
    let calls = 0
    const report = await sb.apply(filesPolicy(FILES), { writeBatch: { syncFs: async () => { calls++; throw new Error('sync: unsupported') }, minBatch: 8 } })
    expect(calls).toBeGreaterThan(0)
    expect(report.counts.failed).toBe(0)
    expect((await readdir(sb.at('/d'))).filter((n) => n.startsWith('.'))).toEqual([])
    for (let i = 0; i < FILES; i++) expect(await readFile(sb.at(`/d/f${i}`), 'utf8')).toBe(contentOf(i))
  })

  it('does not start a syncfs for a few files, nor for an apply that changes nothing', async () => {
    const sb = sandbox()
    let calls = 0
    const opts = { writeBatch: { syncFs: async () => { calls++ }, minBatch: 8 } }
    expect(summary(await sb.apply(filesPolicy(3), opts))).toEqual(['d:create/ok', 'f0:create/ok', 'f1:create/ok', 'f2:create/ok'])
    expect(calls).toBe(0)
    expect((await sb.apply(filesPolicy(FILES), opts)).counts.failed).toBe(0)
    const before = calls
    expect(before).toBeGreaterThan(0)
    expect((await sb.apply(filesPolicy(FILES), opts)).outcome).toBe('no-changes')
    expect(calls).toBe(before)
  })
})
