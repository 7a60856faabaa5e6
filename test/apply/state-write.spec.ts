import { existsSync } from 'node:fs'
import * as fsp from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { applyPolicy, StateWriteError } from '../../src/apply/index.js'
import { describeError } from '../../src/apply/apply.js'
import { LOCK_FILE } from '../../src/apply/constants.js'
import type { ConfigPolicy } from '../../src/policy/index.js'
import { useTempDir } from '../helpers/tmp.js'

// The lock's write goes through node:fs/promises' open: wrapped so that a test can make the
// disk full for one file handle (creating the file works, writing to it fails, as on a full disk).
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>()
  return { ...actual, open: vi.fn(actual.open) }
})

const enospc = (): NodeJS.ErrnoException => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' })

/** The next open() of `file` yields a handle whose writes fail with ENOSPC. */
async function fullDiskFor (file: string): Promise<void> {
  const real = (await vi.importActual<typeof import('node:fs/promises')>('node:fs/promises')).open
  vi.mocked(fsp.open).mockImplementationOnce(async (path, flags, mode) => {
    const fh = await real(path, flags, mode)
    if (path !== file) return fh
    return new Proxy(fh, {
      get: (target, prop) => {
        if (prop === 'writeFile') return async () => { throw enospc() }
        const value: unknown = Reflect.get(target, prop)
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
  })
}

const policy: ConfigPolicy = { kind: 'policy', name: 'test/motd', resources: [{ id: 'motd', type: 'file', path: '/motd', ensure: 'present', content: 'hello\n' }] } as unknown as ConfigPolicy

describe('a full state disk (issue 15)', () => {
  const dir = useTempDir('grapevine-state-write-')

  it('makes apply fail with a named one-line error and removes the apply.lock it created', async () => {
    const stateDir = join(dir(), 'state')
    const root = join(dir(), 'root')
    await fsp.mkdir(root)
    await fsp.mkdir(stateDir)
    await fullDiskFor(join(stateDir, LOCK_FILE))
    const err = await applyPolicy(policy, { root, stateDir, facts: { id: 'n', name: 'n', tags: {} } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StateWriteError)
    expect((err as StateWriteError).code).toBe('ENOSPC')
    expect((err as Error).message).toBe(`cannot write ${join(stateDir, LOCK_FILE)}: no space left on the device [ENOSPC]; nothing was applied. Free space there, or give --state another directory`)
    expect((err as Error).message).not.toContain('\n')
    expect(existsSync(join(stateDir, LOCK_FILE))).toBe(false)
    expect(existsSync(join(root, 'motd'))).toBe(false)
    // Once there is room, the next apply takes the lock: nothing was left to get in its way.
    const report = await applyPolicy(policy, { root, stateDir, facts: { id: 'n', name: 'n', tags: {} } })
    expect(report.outcome).toBe('changes')
  })
})

describe('describeError', () => {
  it('names a system error\'s code once, not "ENOSPC: ENOSPC: …"', () => {
    const file = { id: 'motd', type: 'file' as const, path: '/etc/motd' }
    expect(describeError(file, enospc())).toEqual({ name: 'ResourceFailedError', message: '/etc/motd: ENOSPC: no space left on device, write' })
  })

  it('adds the code when the message does not carry it', () => {
    const file = { id: 'motd', type: 'file' as const, path: '/etc/motd' }
    expect(describeError(file, Object.assign(new Error('the disk went away'), { code: 'EIO' })).message).toBe('/etc/motd: EIO: the disk went away')
  })
})
