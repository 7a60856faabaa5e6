import { existsSync } from 'node:fs'
import * as fsp from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import '../../src/shim.js'
import { main } from '../../src/cli/main.js'
import { generateSigningKey } from '../../src/envelope/index.js'
import { useTempDir } from '../helpers/tmp.js'

// A full --state disk for the CLI in this process: creating the lock file works, writing the pid
// into it fails with ENOSPC, as on a full file system (a real one needs root to mount).
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>()
  return { ...actual, open: vi.fn(actual.open) }
})

async function fullDiskFor (file: string): Promise<void> {
  const real = (await vi.importActual<typeof import('node:fs/promises')>('node:fs/promises')).open
  vi.mocked(fsp.open).mockImplementation(async (path, flags, mode) => {
    const fh = await real(path, flags, mode)
    if (path !== file) return fh
    return new Proxy(fh, {
      get: (target, prop) => {
        if (prop === 'writeFile') return async () => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' }) }
        const value: unknown = Reflect.get(target, prop)
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
  })
}

describe('a full --state disk, from the command line (issue 15)', () => {
  const dir = useTempDir('grapevine-cli-full-')
  const stderr: string[] = []
  afterEach(() => {
    vi.mocked(fsp.open).mockReset()
    vi.restoreAllMocks()
    stderr.length = 0
  })
  const run = async (args: string[]): Promise<number> => {
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => { stderr.push(String(chunk)); return true })
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
    return await main(['node', 'grapevine', ...args])
  }

  it('apply exits 74 with one line naming the lock file, and leaves no apply.lock', async () => {
    const state = join(dir(), 'state')
    await fsp.mkdir(state)
    await fsp.mkdir(join(dir(), 'root'))
    await fsp.writeFile(join(dir(), 'motd.yaml'), 'kind: policy\nname: test/motd\nresources:\n  - { id: motd, type: file, path: /motd, content: "hi\\n" }\n')
    await fullDiskFor(join(state, 'apply.lock'))
    expect(await run(['apply', join(dir(), 'motd.yaml'), '--root', join(dir(), 'root'), '--state', state])).toBe(74)
    expect(stderr.join('')).toMatch(/^error: cannot write .*apply\.lock: no space left on the device \[ENOSPC\]; nothing was applied\. Free space there, or give --state another directory\n$/)
    expect(existsSync(join(state, 'apply.lock'))).toBe(false)
    expect(existsSync(join(dir(), 'root', 'motd'))).toBe(false)
  })

  it('the agent exits 74 with one line naming its lock file', async () => {
    const state = join(dir(), 'state')
    await fsp.mkdir(state)
    await fullDiskFor(join(state, 'agent.lock'))
    const code = await run(['agent', '--state', state, '--root', join(dir(), 'root'), '--trust', generateSigningKey().id, '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(code).toBe(74)
    expect(stderr.join('')).toMatch(/^error: cannot write .*agent\.lock: no space left on the device \[ENOSPC\]; nothing was applied\. Free space there, or give --state another directory\n$/)
    expect(existsSync(join(state, 'agent.lock'))).toBe(false)
  })
})
