import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CLI_PATH, runCli } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'

const FILES = 48
const SIZE = 512 * 1024

/** Distinct, recognisable content per file, so a mix-up or a torn write shows. */
function contentOf (i: number): string {
  const line = `file ${i} `.padEnd(63, String.fromCharCode(97 + (i % 26))) + '\n'
  return line.repeat(SIZE / 64)
}

describe('crash safety', () => {
  const dir = useTempDir('grapevine-crash-')

  it('never leaves a partial file after SIGKILL, and the next apply converges', async () => {
    const sources = join(dir(), 'sources')
    const root = join(dir(), 'root')
    await mkdir(sources)
    await mkdir(root)
    const lines = ['name: test/crash', 'resources:', '  - { id: data, type: directory, path: /data }']
    for (let i = 0; i < FILES; i++) {
      await writeFile(join(sources, `f${i}`), contentOf(i))
      lines.push(`  - { id: f${i}, type: file, path: /data/f${i}, source: sources/f${i} }`)
    }
    const policy = join(dir(), 'policy.yaml')
    await writeFile(policy, lines.join('\n') + '\n')
    const args = ['apply', policy, '--root', root, '--state', join(dir(), 'state')]

    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: 'ignore' })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
    const targets = async (): Promise<string[]> => (await readdir(join(root, 'data')).catch(() => [])).filter((n) => !n.startsWith('.'))
    // Kill as soon as the first file is in place: the others are being written.
    await expect.poll(async () => (await targets()).length, { timeout: 30_000, interval: 5 }).toBeGreaterThan(0)
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')

    const present = await targets()
    expect(present.length).toBeLessThan(FILES)
    for (const name of present) {
      const i = Number(name.slice(1))
      expect(await readFile(join(root, 'data', name), 'utf8') === contentOf(i), `${name} is complete`).toBe(true)
    }

    const next = await runCli(args)
    expect(next.stderr).toBe('')
    expect([0, 2]).toContain(next.code)
    const after = await readdir(join(root, 'data'))
    expect(after.sort()).toEqual(Array.from({ length: FILES }, (_, i) => `f${i}`).sort())
    for (let i = 0; i < FILES; i++) {
      expect(await readFile(join(root, 'data', `f${i}`), 'utf8') === contentOf(i), `f${i} is complete`).toBe(true)
    }
    expect((await runCli(args)).code).toBe(0)
  })
})
