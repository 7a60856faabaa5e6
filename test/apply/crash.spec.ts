import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CLI_PATH, runCli } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'
import { SYNCFS_MIN_BATCH } from '../../src/apply/constants.js'

const SIZE = 512 * 1024

/** Distinct, recognisable content per file, so a mix-up or a torn write shows. */
function contentOf (i: number, size: number): string {
  const line = `file ${i} `.padEnd(63, String.fromCharCode(97 + (i % 26))) + '\n'
  return line.repeat(size / 64)
}

describe('crash safety', () => {
  const dir = useTempDir('grapevine-crash-')

  /**
   * Starts an apply of `files` files, SIGKILLs it once `killWhen` holds for the names in the
   * managed directory, checks that every file present is complete, and that the next apply converges.
   */
  async function crashAndRecover (files: number, size: number, killWhen: (names: string[]) => boolean): Promise<string[]> {
    const sources = join(dir(), 'sources')
    const root = join(dir(), 'root')
    await mkdir(sources)
    await mkdir(root)
    const lines = ['name: test/crash', 'resources:', '  - { id: data, type: directory, path: /data }']
    for (let i = 0; i < files; i++) {
      await writeFile(join(sources, `f${i}`), contentOf(i, size))
      lines.push(`  - { id: f${i}, type: file, path: /data/f${i}, source: sources/f${i} }`)
    }
    const policy = join(dir(), 'policy.yaml')
    await writeFile(policy, lines.join('\n') + '\n')
    const args = ['apply', policy, '--root', root, '--state', join(dir(), 'state')]

    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: 'ignore' })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
    const names = async (): Promise<string[]> => await readdir(join(root, 'data')).catch(() => [])
    await expect.poll(async () => killWhen(await names()), { timeout: 30_000, interval: 5 }).toBe(true)
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')

    const present = (await names()).filter((n) => !n.startsWith('.'))
    for (const name of present) {
      const i = Number(name.slice(1))
      expect(await readFile(join(root, 'data', name), 'utf8') === contentOf(i, size), `${name} is complete`).toBe(true)
    }

    const next = await runCli(args)
    expect(next.stderr).toBe('')
    expect([0, 2]).toContain(next.code)
    const after = await readdir(join(root, 'data'))
    expect(after.sort()).toEqual(Array.from({ length: files }, (_, i) => `f${i}`).sort())
    for (let i = 0; i < files; i++) {
      expect(await readFile(join(root, 'data', `f${i}`), 'utf8') === contentOf(i, size), `f${i} is complete`).toBe(true)
    }
    expect((await runCli(args)).code).toBe(0)
    return present
  }

  it('never leaves a partial file after SIGKILL, and the next apply converges (fdatasync file by file)', async () => {
    const files = 48
    expect(files).toBeLessThan(SYNCFS_MIN_BATCH)
    // Kill as soon as the first file is in place: the others are being written.
    const present = await crashAndRecover(files, SIZE, (names) => names.some((n) => !n.startsWith('.')))
    expect(present.length).toBeLessThan(files)
  })

  it('never leaves a partial file after SIGKILL while a batch is written, and the next apply converges (one syncfs)', async () => {
    const files = SYNCFS_MIN_BATCH * 2
    // Kill while the batch's temporary files are being written: no target may show yet.
    const present = await crashAndRecover(files, SIZE / 4, (names) => names.some((n) => n.startsWith('.f')))
    expect(present.length).toBeLessThan(files)
  })

  it('never leaves a partial file after SIGKILL while a batch is renamed into place', async () => {
    // Kill once the first file of the batch is in place (the rest may or may not be).
    await crashAndRecover(SYNCFS_MIN_BATCH * 2, SIZE / 4, (names) => names.some((n) => !n.startsWith('.')))
  })
})
