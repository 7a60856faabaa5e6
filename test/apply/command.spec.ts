import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describeCommand, runCommand, TailBuffer } from '../../src/apply/command.js'
import { useTempDir } from '../helpers/tmp.js'

const opts = { cwd: '/', env: { PATH: '/usr/bin:/bin' }, timeoutMs: 30_000 }

describe('runCommand', () => {
  const dir = useTempDir('grapevine-cmd-')

  it('runs an argv array without a shell', async () => {
    const r = await runCommand(['/bin/echo', '$HOME', 'a b'], opts)
    expect(r).toMatchObject({ exitCode: 0, stdout: '$HOME a b\n', timedOut: false })
  })

  it('runs a string through /bin/sh -c with the given env and cwd', async () => {
    const r = await runCommand('echo "$GREETING from $(pwd)"; echo oops >&2; exit 3', { ...opts, cwd: dir(), env: { ...opts.env, GREETING: 'hi' } })
    expect(r).toMatchObject({ exitCode: 3, stdout: `hi from ${dir()}\n`, stderr: 'oops\n' })
  })

  it('reports a command that cannot start', async () => {
    const r = await runCommand(['/no/such/command'], opts)
    expect(r.spawnError).toBe('ENOENT')
  })

  it('kills the whole process group on timeout', async () => {
    const pidFile = join(dir(), 'child.pid')
    // The shell starts a background sleeper, records its pid, then waits: both must die.
    const r = await runCommand(`sleep 60 & echo $! > ${pidFile}; wait`, { ...opts, timeoutMs: 1500 })
    expect(r.timedOut).toBe(true)
    const pid = Number(await readFile(pidFile, 'utf8'))
    await expect.poll(() => { try { process.kill(pid, 0); return 'alive' } catch { return 'gone' } }, { timeout: 10_000 }).toBe('gone')
  })

  it('stops on abort', async () => {
    const controller = new AbortController()
    const running = runCommand(['sleep', '60'], { ...opts, signal: controller.signal })
    controller.abort()
    expect(await running).toMatchObject({ aborted: true })
  })

  it('does not wait for a daemon that keeps the output open', async () => {
    const pidFile = join(dir(), 'daemon.pid')
    const r = await runCommand(`(sleep 60 & echo $! > ${pidFile}); echo started`, opts)
    expect(r).toMatchObject({ exitCode: 0, stdout: 'started\n' })
    process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGKILL')
  })
})

describe('TailBuffer', () => {
  it('keeps only the last bytes', () => {
    const t = new TailBuffer(10)
    for (let i = 0; i < 100; i++) t.push(Buffer.from(`${i % 10}`))
    expect(t.toString()).toBe('0123456789')
    const big = new TailBuffer(4)
    big.push(Buffer.from('abcdefgh'))
    expect(big.toString()).toBe('efgh')
  })

  it('does not start with half a character', () => {
    const t = new TailBuffer(3)
    t.push(Buffer.from('aé€'))
    expect(t.toString()).toBe('€')
  })
})

describe('describeCommand', () => {
  it.each<[string | string[], string]>([
    ['systemctl reload nginx', 'systemctl reload nginx'],
    [['touch', '/tmp/a b'], "touch '/tmp/a b'"],
    [['echo', "it's"], "echo 'it'\\''s'"]
  ])('%j is shown as %s', (command, shown) => {
    expect(describeCommand(command)).toBe(shown)
  })
})
