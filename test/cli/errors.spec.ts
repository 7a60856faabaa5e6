import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CLI_PATH, runCli, type CliResult } from '../helpers/cli.js'
import { generateSigningKey } from '../../src/envelope/index.js'

// Errors whose cause is the machine or the command line (issue 15, "Errors a person can act
// on"): each is one line naming what to fix, exit 64 (usage) or 69 (unavailable), never
// "internal error" with a stack trace (70).

let dir: string
let server: Server | undefined
beforeAll(async () => {
  await runCli(['--version']).then((r) => expect(r.code, r.stderr).toBe(0))
})
afterEach(async () => {
  server?.close()
  server = undefined
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

async function tempDir (): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'grapevine-cli-errors-'))
  return dir
}

/** One line on stderr, no stack trace, no "internal error". */
function expectOneLine (r: CliResult, contains: string): void {
  expect(r.stderr).toContain(contains)
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1)
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /)
}

const POLICY = 'name: t/dirs\nresources:\n  - { id: etc, type: directory, path: /etc }\n'

describe('policy files that cannot be read', () => {
  it('a directory given as the policy is a usage error (64) for validate, plan and apply', async () => {
    const d = await tempDir()
    for (const args of [['validate', d], ['plan', d, '--root', d, '--state', join(d, 's')], ['apply', d, '--root', d, '--state', join(d, 's')]]) {
      const r = await runCli(args)
      expect(r.code, `${args[0] ?? ''}: ${r.stderr}`).toBe(64)
      expectOneLine(r, `${d} is a directory: give a policy file`)
    }
  })

  it('a missing policy file is unavailable (69), as the README says, for validate, apply and sign', async () => {
    const d = await tempDir()
    const missing = join(d, 'missing.yaml')
    for (const args of [['validate', missing], ['apply', missing, '--root', d, '--state', join(d, 's')], ['sign', missing, '--key', join(d, 'k'), '--version', '1']]) {
      const r = await runCli(args)
      expect(r.code, `${args[0] ?? ''}: ${r.stderr}`).toBe(69)
      expectOneLine(r, `cannot read the policy file ${missing}: no such file or directory [ENOENT]`)
    }
  })
})

describe('a state directory this user may not write', () => {
  /** Runs the CLI as a user that may not write `parent`: nobody when the tests run as root, else this user with the directory made read-only. */
  async function runLockedOut (parent: string, args: string[]): Promise<CliResult> {
    const asRoot = process.getuid?.() === 0
    await chmod(parent, asRoot ? 0o755 : 0o555)
    const child = spawn(process.execPath, [CLI_PATH, ...args], { cwd: parent, env: { ...process.env, NO_COLOR: '1', HOME: parent }, ...(asRoot ? { uid: 65534, gid: 65534 } : {}) })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    return await new Promise((resolve) => child.once('close', (code, signal) => { resolve({ code, signal, stdout, stderr }) }))
  }

  it('apply and agent exit 69 with one line naming the directory (EACCES), not 70 with a stack', async () => {
    const d = await tempDir()
    await chmod(d, 0o755)
    const locked = join(d, 'locked')
    await mkdir(join(d, 'root'), { mode: 0o777 })
    await chmod(join(d, 'root'), 0o777)
    await mkdir(locked)
    await writeFile(join(d, 'p.yaml'), POLICY, { mode: 0o644 })
    const apply = await runLockedOut(locked, ['apply', join(d, 'p.yaml'), '--root', join(d, 'root'), '--state', join(locked, 'state')])
    expect(apply.code, apply.stderr).toBe(69)
    expectOneLine(apply, `cannot mkdir ${join(locked, 'state')}: permission denied`)
    const agent = await runLockedOut(locked, ['agent', '--trust', generateSigningKey().id, '--state', join(locked, 'state'), '--root', join(d, 'root'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-api'])
    expect(agent.code, agent.stderr).toBe(69)
    expectOneLine(agent, `${join(locked, 'state')}`)
    expect(agent.stderr).toContain('permission denied')
  })
})

describe('agent flags are checked before anything starts', () => {
  async function agent (d: string, extra: string[]): Promise<CliResult> {
    return await runCli(['agent', '--trust', generateSigningKey().id, '--state', join(d, 'state'), '--root', join(d, 'root'), '--no-api', ...extra])
  }

  it.each([
    [['--listen', '/ip4/127.0.0.1/tcp/0', '--tag', 'web'], '--tag expects key=value, got "web"'],
    [['--listen', 'garbage'], '--listen "garbage": not a multiaddr'],
    [['--listen', '/ip4/127.0.0.1/udp/7410'], '--listen "/ip4/127.0.0.1/udp/7410": expected an IP address and a TCP port'],
    [['--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', 'garbage'], '--bootstrap "garbage": not a multiaddr'],
    [['--listen', '/ip4/127.0.0.1/tcp/0', '--bootstrap', '/ip4/127.0.0.1/tcp/7410'], '--bootstrap "/ip4/127.0.0.1/tcp/7410": no valid /p2p/<peer id>'],
    [['--listen', '/ip4/127.0.0.1/tcp/0', '--reapply-interval', '-5'], '--reapply-interval must be a number of seconds, 0 or more'],
    [['--listen', '/ip4/127.0.0.1/tcp/0', '--sync-interval', 'soon'], '--sync-interval must be a number of seconds, 0 or more'],
    [['--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'garbage'], '--api expects HOST:PORT'],
    [['--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:99999'], '--api expects HOST:PORT with a port from 0 to 65535'],
    [['--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'garbage.invalid:7411'], '--api garbage.invalid:7411: not an address of this machine']
  ])('%j: exit 64, one line, and no state directory created', async (extra, message) => {
    const d = await tempDir()
    const r = await agent(d, extra)
    expect(r.code, r.stderr).toBe(64)
    expectOneLine(r, message)
    expect(existsSync(join(d, 'state'))).toBe(false)
  })

  it('a --config, --admission or --swarm-key file that cannot be read: exit 69, one line naming it', async () => {
    const d = await tempDir()
    for (const [flag, message] of [['--config', 'cannot read config'], ['--admission', 'cannot read --admission'], ['--swarm-key', 'cannot open']] as const) {
      const r = await agent(d, ['--listen', '/ip4/127.0.0.1/tcp/0', flag, join(d, 'missing')])
      expect(r.code, `${flag}: ${r.stderr}`).toBe(69)
      expectOneLine(r, `${message} ${join(d, 'missing')}`)
    }
  })

  it('a --listen or --api port in use: exit 69, one line naming the address, without libp2p\'s faultTolerance advice', async () => {
    const d = await tempDir()
    server = createServer()
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    const r = await agent(d, ['--listen', `/ip4/127.0.0.1/tcp/${port}`])
    expect(r.code, r.stderr).toBe(69)
    expectOneLine(r, `cannot listen on /ip4/127.0.0.1/tcp/${port} (listen EADDRINUSE`)
    expect(r.stderr).not.toContain('faultTolerance')
    // The --api port is tried before the agent starts: it never joins, takes or applies anything.
    await rm(join(d, 'state'), { recursive: true, force: true })
    const api = await agent(d, ['--listen', '/ip4/127.0.0.1/tcp/0', '--api', `127.0.0.1:${port}`])
    expect(api.code, api.stderr).toBe(69)
    expectOneLine(api, `--api 127.0.0.1:${port}: cannot listen there (listen EADDRINUSE`)
    expect(existsSync(join(d, 'state'))).toBe(false)
  })
})

describe('a reader that closes the pipe (grapevine … | head -1)', () => {
  it('ends the command quietly, as coreutils do (141), instead of crashing on EPIPE', async () => {
    for (const args of [['schema'], ['validate', '--json', ...Array(20).fill(join(CLI_PATH, '../../policies/web.yaml'))]]) {
      const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      // The reader is gone before the first write.
      child.stdout.destroy()
      let stderr = ''
      child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
      const code = await new Promise<number | null>((resolve) => child.once('close', (c) => { resolve(c) }))
      expect(stderr, args[0]).toBe('')
      expect(code, args[0]).toBe(141)
    }
  })
})

describe('exit codes agree with the README table', () => {
  it('a key file that cannot be read is unavailable (69) for sign and publish, not "invalid" (1)', async () => {
    const d = await tempDir()
    await writeFile(join(d, 'p.yaml'), POLICY)
    for (const args of [['sign', join(d, 'p.yaml'), '--key', join(d, 'missing.key'), '--version', '1'], ['publish', join(d, 'p.yaml'), '--key', join(d, 'missing.key'), '--agent', join(d, 'no.sock')]]) {
      const r = await runCli(args)
      expect(r.code, `${args[0] ?? ''}: ${r.stderr}`).toBe(69)
      expectOneLine(r, `${join(d, 'missing.key')}: cannot read the key file: ENOENT`)
    }
  })

  it('a --bootstrap that is no peer address is a usage error (64) for every command that takes one, before any dial', async () => {
    const d = await tempDir()
    await writeFile(join(d, 'p.yaml'), POLICY)
    const key = join(d, 'root.key')
    for (const args of [['publish', join(d, 'p.yaml'), '--key', key, '--bootstrap', 'garbage'], ['fleet', '--bootstrap', '/ip4/127.0.0.1/tcp/9'], ['retire', 'web/x', '--key', key, '--bootstrap', 'garbage']]) {
      const r = await runCli(args)
      expect(r.code, `${args[0] ?? ''}: ${r.stderr}`).toBe(64)
      expectOneLine(r, '--bootstrap "')
    }
  })

  it('status, history and fleet: 69 for an agent that is not there (with or without http://), 64 for a bad --limit or --agent', async () => {
    for (const args of [['status', '--agent', '127.0.0.1:1'], ['history', '--agent', 'http://127.0.0.1:1'], ['fleet', '--agent', '127.0.0.1:1']]) {
      const r = await runCli(args)
      expect(r.code, `${args[0] ?? ''}: ${r.stderr}`).toBe(69)
      expectOneLine(r, 'no agent answers at http://127.0.0.1:1')
    }
    const limit = await runCli(['history', '--limit', 'abc', '--agent', '127.0.0.1:1'])
    expect(limit.code).toBe(64)
    expectOneLine(limit, '--limit must be a positive integer: got "abc"')
    const https = await runCli(['status', '--agent', 'https://127.0.0.1:1'])
    expect(https.code).toBe(64)
  })
})
