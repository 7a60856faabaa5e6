import { spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { acquirePidLock } from '../../src/apply/lock.js'

class Locked extends Error {
  constructor (readonly pid: number) { super(`locked by ${pid}`) }
}
const locked = (pid: number): Error => new Locked(pid)

let dir: string | undefined
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  dir = undefined
})

async function lockFile (): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'grapevine-pid-lock-'))
  return join(dir, 'agent.lock')
}

describe('acquirePidLock (apply.lock, the agent\'s agent.lock)', () => {
  it('takes over a lock naming this process\'s own pid that this process does not hold: a container restarts the agent as PID 1 after a SIGKILL', async () => {
    const file = await lockFile()
    await writeFile(file, `${process.pid}\n`)
    const release = await acquirePidLock(file, locked)
    expect(await readFile(file, 'utf8')).toBe(`${process.pid}\n`)
    await release()
    expect(existsSync(file)).toBe(false)
  })

  it('refuses a second holder in this process, even when both ask at once, and frees the lock on release', async () => {
    const file = await lockFile()
    const results = await Promise.allSettled([acquirePidLock(file, locked), acquirePidLock(file, locked)])
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
    expect(refused.reason).toMatchObject({ pid: process.pid })
    await (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<() => Promise<void>>).value()
    await (await acquirePidLock(file, locked))()
  })

  it('refuses a lock held by another live process, naming its pid, and takes over one whose process is gone', async () => {
    const file = await lockFile()
    await writeFile(file, `${process.ppid}\n`)
    await expect(acquirePidLock(file, locked)).rejects.toMatchObject({ pid: process.ppid })
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout
    await writeFile(file, `${gone}\n`)
    await (await acquirePidLock(file, locked))()
  })
})
