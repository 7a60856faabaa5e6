import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_PATH, runCli } from '../helpers/cli.js'
import { waitFor } from '../node/fixtures.js'
import { agentProcesses } from '../helpers/agent-process.js'
import { generateSigningKey } from '../../src/envelope/index.js'

let dir: string | undefined
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  dir = undefined
})

const spawnAgent = agentProcesses()

async function statusOf (api: string): Promise<{ policies: Array<{ name: string, version: number, lastApply?: { outcome: string } }>, peers: unknown[] }> {
  const r = await runCli(['status', '--agent', api, '--json'])
  expect(r.code).toBe(0)
  return JSON.parse(r.stdout)
}

describe('grapevine agent as separate processes', () => {
  it('joins, publishes, applies, survives SIGKILL and rejoins without bootstrap', async () => {
    dir = await mkdtemp(join(tmpdir(), 'grapevine-cli-agent-'))
    const d = dir
    expect((await runCli(['keygen', '--out', join(d, 'root.key')])).code).toBe(0)
    const trust = join(d, 'root.key.pub')
    const policy = join(d, 'motd.yaml')
    const writePolicy = async (text: string): Promise<void> => {
      await writeFile(policy, `name: site/motd\nresources:\n  - id: etc\n    type: directory\n    path: /etc\n  - id: motd\n    type: file\n    path: /etc/motd\n    content: "${text} on {{ node.name }}\\n"\n`)
    }
    await writePolicy('v1')

    const a = await spawnAgent(['--state', join(d, 'a/state'), '--root', join(d, 'a/root'), '--trust', trust, '--name', 'a'])
    // b takes its settings from a config file, as a systemd unit would.
    await writeFile(join(d, 'b.yaml'), `state: ${join(d, 'b/state')}\nroot: ${join(d, 'b/root')}\ntrust: [${trust}]\nname: b\nbootstrap: [${a.addr}]\ntags: { role: web }\n`)
    const b = await spawnAgent(['--config', join(d, 'b.yaml')])
    const c = await spawnAgent(['--state', join(d, 'c/state'), '--root', join(d, 'c/root'), '--trust', trust, '--name', 'c', '--bootstrap', b.addr])

    const pub = await runCli(['publish', policy, '--key', join(d, 'root.key'), '--bootstrap', a.addr, '--json'])
    expect(pub.stderr).toBe('')
    expect(pub.code).toBe(0)
    expect(JSON.parse(pub.stdout)).toMatchObject({ name: 'site/motd', version: 1 })
    for (const n of ['a', 'b', 'c']) {
      await waitFor(async () => await readFile(join(d, n, 'root/etc/motd'), 'utf8').catch(() => '') === `v1 on ${n}\n`, `the file on ${n}`)
    }
    const s = await statusOf(c.api)
    expect(s.policies).toEqual([expect.objectContaining({ name: 'site/motd', version: 1 })])
    expect((await runCli(['status', '--agent', b.api, '--json'])).stdout).toContain('"role": "web"')

    // SIGKILL c, publish v2 while it is down, restart it with no --bootstrap: it rejoins through remembered peers.
    c.child.kill('SIGKILL')
    await c.exited
    await writePolicy('v2')
    const pub2 = await runCli(['publish', policy, '--key', join(d, 'root.key'), '--bootstrap', b.addr, '--json'])
    expect(pub2.code).toBe(0)
    expect(JSON.parse(pub2.stdout)).toMatchObject({ version: 2, previous: { version: 1 } })
    const restarted = await spawnAgent(['--state', join(d, 'c/state'), '--root', join(d, 'c/root'), '--trust', trust, '--name', 'c'])
    await waitFor(async () => await readFile(join(d, 'c/root/etc/motd'), 'utf8').catch(() => '') === 'v2 on c\n', 'c to catch up after restart')

    expect((await statusOf(restarted.api)).policies[0]).toMatchObject({ version: 2, lastApply: { outcome: 'changes' } })

    // Clean shutdown on SIGTERM exits 0.
    a.child.kill('SIGTERM')
    expect(await a.exited).toBe(0)
  })

  it('keeps its connection to a peer whose process stalls for 18 s (SIGSTOP), then goes on', async () => {
    dir = await mkdtemp(join(tmpdir(), 'grapevine-cli-agent-'))
    const d = dir
    expect((await runCli(['keygen', '--out', join(d, 'root.key')])).code).toBe(0)
    const trust = join(d, 'root.key.pub')
    const a = await spawnAgent(['--state', join(d, 'a/state'), '--root', join(d, 'a/root'), '--trust', trust, '--name', 'a'])
    const b = await spawnAgent(['--state', join(d, 'b/state'), '--root', join(d, 'b/root'), '--trust', trust, '--name', 'b', '--bootstrap', a.addr])
    const peersOfA = async (): Promise<Array<{ id: string, addrs: string[] }>> => (await statusOf(a.api)).peers as Array<{ id: string, addrs: string[] }>
    await waitFor(async () => (await peersOfA()).length === 1, 'a and b connected')
    const [before] = await peersOfA()

    // A stalled event loop (a long apply, an overloaded host) answers no ping. libp2p's default
    // 5 s ping timeout dropped the connection; the agent's waits 30 s.
    b.child.kill('SIGSTOP')
    await new Promise((resolve) => setTimeout(resolve, 18_000))
    b.child.kill('SIGCONT')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    // The very same connection (same remote port), not a new one dialled after a drop.
    expect(await peersOfA()).toEqual([before])
  }, 60_000)

  it('refuses --admitted-only (exit 64) while the trust policy lists no enrollers, from a flag or the config file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'grapevine-cli-agent-'))
    const common = ['agent', '--trust', generateSigningKey().id, '--state', join(dir, 'state'), '--root', join(dir, 'root'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-api']
    const flag = await runCli([...common, '--admitted-only'])
    expect(flag.code).toBe(64)
    expect(flag.stderr).toContain('--admitted-only needs a trust policy that lists enrollers')
    await writeFile(join(dir, 'agent.yaml'), 'admittedOnly: true\n')
    const file = await runCli([...common, '--config', join(dir, 'agent.yaml')])
    expect(file.code).toBe(64)
    expect(file.stderr).toContain('--admitted-only needs a trust policy that lists enrollers')
  })

  it('refuses a private key as --trust (exit 64), and says to give the .pub', async () => {
    dir = await mkdtemp(join(tmpdir(), 'grapevine-cli-agent-'))
    expect((await runCli(['keygen', '--out', join(dir, 'root.key')])).code).toBe(0)
    const r = await runCli(['agent', '--trust', join(dir, 'root.key'), '--state', join(dir, 'state'), '--root', join(dir, 'root'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-api'])
    expect(r.code).toBe(64)
    expect(r.stderr).toContain('root.key is a private key: give its public key instead (the .pub file')
    expect((await runCli(['verify', join(dir, 'nothing.env'), '--trust', join(dir, 'root.key')])).code).not.toBe(0)
  })
})

describe('one agent per state directory', () => {
  it('a second agent on the same --state exits 69 naming the holder\'s pid; after a SIGKILL the lock is taken over', async () => {
    dir = await mkdtemp(join(tmpdir(), 'grapevine-cli-agent-'))
    const trust = generateSigningKey().id
    const args = ['--state', join(dir, 'state'), '--root', join(dir, 'root'), '--trust', trust]
    const first = await spawnAgent(args)
    const second = await runCli(['agent', ...args, '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(second.code, second.stderr).toBe(69)
    expect(second.stderr).toBe(`error: the state directory ${join(dir, 'state')} is in use by another agent (pid ${first.child.pid ?? '?'}); stop it, or give this one its own --state\n`)
    // The holder still runs, with its socket: the refused agent touched nothing of it.
    expect((await runCli(['status', '--state', join(dir, 'state'), '--json'])).code).toBe(0)
    first.child.kill('SIGKILL')
    await first.exited
    const third = await spawnAgent(args)
    expect(third.lines.some((l) => l.msg === 'agent started')).toBe(true)
    third.child.kill('SIGTERM')
    expect(await third.exited).toBe(0)
    expect(existsSync(join(dir, 'state', 'agent.lock'))).toBe(false)
  }, 60_000)
})

describe('grapevine history | head -1', () => {
  it('history, status and fleet stop quietly (141) when their reader has gone, instead of crashing on EPIPE', async () => {
    dir = await mkdtemp(join(tmpdir(), 'grapevine-cli-agent-'))
    const a = await spawnAgent(['--state', join(dir, 'state'), '--root', join(dir, 'root'), '--trust', generateSigningKey().id])
    for (const command of ['history', 'status', 'fleet']) {
      const child = spawn(process.execPath, [CLI_PATH, command, '--agent', a.api], { stdio: ['ignore', 'pipe', 'pipe'] })
      child.stdout!.destroy()
      let stderr = ''
      child.stderr!.on('data', (b: Buffer) => { stderr += b.toString() })
      const code = await new Promise<number | null>((resolve) => child.once('close', (c) => { resolve(c) }))
      expect(stderr, command).toBe('')
      expect(code, command).toBe(141)
    }
  }, 60_000)
})
