import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempOwner, tempPathFor, writeFileAtomic } from '../../src/store/atomic.js'
import { useTempDir } from '../helpers/tmp.js'

describe('writeFileAtomic', () => {
  const dir = useTempDir()

  it.each([
    ['bytes, 0600', new TextEncoder().encode('secret\n'), 0o600],
    ['a string, 0644', 'hello\n', 0o644],
    // Wider than a usual umask (022) lets open(2) give: the mode is set, not masked.
    ['a string, 0666', 'shared\n', 0o666]
  ])('writes %s with exactly that mode and leaves no temporary file', async (_, data, mode) => {
    const file = join(dir(), 'f')
    await writeFileAtomic(file, data, { mode })
    expect(await readFile(file, 'utf8')).toBe(typeof data === 'string' ? data : new TextDecoder().decode(data))
    expect((await stat(file)).mode & 0o777).toBe(mode)
    expect(await readdir(dir())).toEqual(['f'])
  })

  it.each([true, false])('replaces an existing file (durable: %s)', async (durable) => {
    const file = join(dir(), 'f')
    await writeFile(file, 'old')
    await writeFileAtomic(file, 'new', { mode: 0o644, durable })
    expect(await readFile(file, 'utf8')).toBe('new')
    expect(await readdir(dir())).toEqual(['f'])
  })

  it('exclusive: refuses a file that exists with EEXIST, leaving it intact and no temporary file', async () => {
    const file = join(dir(), 'f')
    await writeFileAtomic(file, 'first', { mode: 0o600, exclusive: true })
    await expect(writeFileAtomic(file, 'second', { mode: 0o600, exclusive: true })).rejects.toMatchObject({ code: 'EEXIST' })
    expect(await readFile(file, 'utf8')).toBe('first')
    expect(await readdir(dir())).toEqual(['f'])
  })

  it('removes the temporary file and leaves the target alone when the write fails before the rename', async () => {
    const file = join(dir(), 'f')
    await writeFile(file, 'old')
    let temp = ''
    const batch = { durable: async (t: string) => { temp = t; throw new Error('disk on fire') } }
    await expect(writeFileAtomic(file, 'new', { mode: 0o644, batch })).rejects.toThrow('disk on fire')
    expect(tempOwner(basename(temp))).toBe(process.pid)
    expect(await readFile(file, 'utf8')).toBe('old')
    expect(await readdir(dir())).toEqual(['f'])
  })

  it('with `dirs`, hands the directory over for a later fsync; with a batch, waits for it before the rename', async () => {
    const file = join(dir(), 'f')
    const added: string[] = []
    const events: string[] = []
    const batch = {
      durable: async (temp: string, bytes: number) => {
        events.push(`durable ${bytes} ${(await readdir(dir())).includes('f') ? 'after' : 'before'} the rename`)
        expect(await readFile(temp, 'utf8')).toBe('content')
      }
    }
    await writeFileAtomic(file, 'content', { mode: 0o644, batch, onWait: () => events.push('wait'), dirs: { add: (d) => added.push(d) } })
    expect(events).toEqual(['wait', 'durable 7 before the rename'])
    expect(added).toEqual([dir()])
  })

  it('fails with ENOENT when the directory is missing, creating nothing', async () => {
    await expect(writeFileAtomic(join(dir(), 'missing', 'f'), 'x', { mode: 0o644 })).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await readdir(dir())).toEqual([])
  })
})

describe('temporary names', () => {
  it('are ours, name this process, stay under NAME_MAX and differ each time', () => {
    const long = `/d/${'n'.repeat(255)}`
    const a = tempPathFor(long)
    const b = tempPathFor(long)
    expect(a).not.toBe(b)
    expect(basename(a).length).toBeLessThanOrEqual(255)
    expect(tempOwner(basename(a))).toBe(process.pid)
    expect(tempOwner('f.conf')).toBeUndefined()
    expect(tempOwner('.f.conf.tmp')).toBeUndefined()
  })
})
