// The README's walkthrough ("A mesh by hand"), run as a new user runs it: the commands come from
// the README's own fenced block, so the two cannot drift. Each runs through `sh` in a fresh
// directory that looks like the checkout (its policies/ and bin/), with `grapevine` on the
// PATH as `npm link` puts it; agents run as child processes, as in their own terminals. The
// only changes made to the commands: /tmp/ becomes a temp dir, the ports become free ones,
// and a `<peer id>` placeholder becomes the id the agent on that port logged.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, symlink } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import { CLI_LAUNCHER, REPO_ROOT, runCli } from '../helpers/cli.js'
import { makeTempDir, removeTempDir } from '../helpers/tmp.js'
import { waitFor } from '../node/fixtures.js'
import { loadPolicyFile, matchesTarget, type NodeFacts } from '../../src/policy/index.js'

/** The walkthrough: the first `sh` block under the README heading that starts "## A mesh". */
function walkthroughCommands (readme: string): string[] {
  const section = /^## A mesh\b[^\n]*\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1]
  const block = section === undefined ? undefined : /^```sh\n([\s\S]*?)^```/m.exec(section)?.[1]
  if (block === undefined) throw new Error('README.md has no "## A mesh …" section with a ```sh block')
  const commands: string[] = []
  let current: string[] = []
  for (const line of block.split('\n')) {
    if (current.length === 0 && (line.trim() === '' || line.trimStart().startsWith('#'))) continue
    current.push(line)
    if (!line.endsWith('\\')) { commands.push(current.join('\n')); current = [] }
  }
  return commands
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return port
}

interface Agent {
  command: string
  child: ChildProcess
  /** The README's port, which the placeholder names. */
  port: number
  lines: Array<Record<string, unknown>>
  output: () => string
}

interface Ran { command: string, code: number | null, stdout: string, stderr: string }

interface Status {
  node: NodeFacts & { root: string }
  peers: unknown[]
  policies: Array<{ name: string, version: number, lastApply?: { outcome: string, failed?: number } }>
}

const agents: Agent[] = []
const ran: Ran[] = []
/** Each agent's status once the walkthrough is done, in the order the agents started. */
const statuses: Status[] = []
let dir = ''
let commands: string[] = []

afterAll(async () => {
  await Promise.all(agents.map(async (a) => {
    if (a.child.exitCode !== null || a.child.signalCode !== null) return
    const exited = new Promise((resolve) => a.child.once('exit', resolve))
    a.child.kill('SIGTERM')
    const timer = setTimeout(() => a.child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }))
  if (dir !== '') await removeTempDir(dir)
})

beforeAll(async () => {
  commands = walkthroughCommands(await readFile(join(REPO_ROOT, 'README.md'), 'utf8'))
  dir = await makeTempDir('grapevine-readme-')
  // What a new user has: a checkout after `npm install` (here its policies/ and bin/), and
  // `grapevine` on the PATH, a link to bin/grapevine as `npm link` makes.
  const checkout = join(dir, 'checkout')
  await mkdir(join(checkout), { recursive: true })
  await symlink(join(REPO_ROOT, 'policies'), join(checkout, 'policies'))
  await symlink(join(REPO_ROOT, 'bin'), join(checkout, 'bin'))
  await mkdir(join(dir, 'path'))
  await symlink(CLI_LAUNCHER, join(dir, 'path', 'grapevine'))
  await mkdir(join(dir, 'home'))
  const env = { ...process.env, PATH: `${join(dir, 'path')}:${process.env.PATH ?? ''}`, HOME: join(dir, 'home'), NO_COLOR: '1', FORCE_COLOR: undefined, GRAPEVINE_STATE: undefined }

  const ports = new Map<number, number>()
  for (const m of commands.join('\n').matchAll(/\/tcp\/(\d+)/g)) if (!ports.has(Number(m[1]))) ports.set(Number(m[1]), await freePort())

  for (const original of commands) {
    // A person takes a moment between commands: agents started so far are up and know each other.
    await settle(env)
    const command = original
      .replaceAll('/tmp/', `${join(dir, 'tmp')}/`)
      .replace(/\/tcp\/(\d+)\/p2p\/<[^>]*>/g, (_, port: string) => {
        const agent = agents.find((a) => a.port === Number(port))
        const id = agent?.lines.find((l) => l.msg === 'agent started')?.peerId
        if (typeof id !== 'string') throw new Error(`no agent logged its peer id on port ${port}, which \`${original}\` names`)
        return `/tcp/${port}/p2p/${id}`
      })
      .replace(/\/tcp\/(\d+)/g, (_, port: string) => `/tcp/${ports.get(Number(port)) as number}`)
    if (/^\s*grapevine\s+agent\b/.test(command)) {
      const port = Number(/--listen\s+\S*\/tcp\/(\d+)/.exec(original)?.[1])
      agents.push(startAgent(command, port, checkout, env))
    } else {
      ran.push(await run(command, checkout, env))
    }
  }
  await settle(env)
  for (const a of agents) statuses.push(await statusOf(a, env) as Status)
}, 60_000)

function startAgent (command: string, port: number, cwd: string, env: NodeJS.ProcessEnv): Agent {
  const child = spawn('/bin/sh', ['-c', `exec ${command}`], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: Array<Record<string, unknown>> = []
  let text = ''
  let buffer = ''
  child.stdout!.on('data', (b: Buffer) => {
    text += b.toString()
    buffer += b.toString()
    let i
    while ((i = buffer.indexOf('\n')) >= 0) {
      try { lines.push(JSON.parse(buffer.slice(0, i)) as Record<string, unknown>) } catch { /* not a log line */ }
      buffer = buffer.slice(i + 1)
    }
  })
  child.stderr!.on('data', (b: Buffer) => { text += b.toString() })
  return { command, child, port, lines, output: () => text }
}

async function run (command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  return { command, code, stdout, stderr }
}

const socketOf = (a: Agent): string | undefined => a.lines.find((l) => l.msg === 'api listening')?.socket as string | undefined

async function statusOf (a: Agent, env: NodeJS.ProcessEnv): Promise<Status | undefined> {
  const socket = socketOf(a)
  if (socket === undefined) return undefined
  const r = await runCli(['status', '--agent', socket, '--json'], { env })
  return r.code === 0 ? JSON.parse(r.stdout) as Status : undefined
}

async function fleetSize (a: Agent, env: NodeJS.ProcessEnv): Promise<number> {
  const r = await runCli(['fleet', '--agent', socketOf(a) as string, '--json'], { env })
  return r.code === 0 ? (JSON.parse(r.stdout) as { nodes: unknown[] }).nodes.length : 0
}

/** How many agents had joined and knew each other at the last settle. */
let settled = 0

async function settle (env: NodeJS.ProcessEnv): Promise<void> {
  for (const a of agents) {
    await waitFor(() => socketOf(a) !== undefined || a.child.exitCode !== null, `the agent \`${a.command}\` to start`, 15_000)
    if (a.child.exitCode !== null) throw new Error(`\`${a.command}\` exited ${a.child.exitCode}:\n${a.output()}`)
  }
  if (agents.length < 2 || settled === agents.length) return
  settled = agents.length
  for (const a of agents) {
    await waitFor(async () => ((await statusOf(a, env))?.peers.length ?? 0) > 0, `\`${a.command}\` to join the mesh`, 15_000)
    await waitFor(async () => (await fleetSize(a, env)) >= agents.length, `\`${a.command}\` to know every agent`, 15_000)
  }
}

describe('the README walkthrough, run literally', () => {
  it('is a block of commands that starts agents and publishes', () => {
    expect(agents.length).toBeGreaterThanOrEqual(2)
    expect(ran.some((r) => /^\s*grapevine\s+publish\b/.test(r.command))).toBe(true)
  })

  it('every command exits 0', () => {
    for (const r of ran) expect(r.code, `${r.command}\n${r.stdout}${r.stderr}`).toBe(0)
  })

  it('the agents have names of their own', () => {
    const names = statuses.map((s) => s.node.name)
    expect(new Set(names).size, names.join(', ')).toBe(agents.length)
  })

  it('every agent holds each published policy, and applied the ones that target it, into its own root', async () => {
    const publishes = ran.filter((r) => /^\s*grapevine\s+publish\b/.test(r.command))
    for (const p of publishes) {
      const file = resolve(join(dir, 'checkout'), /^\s*grapevine\s+publish\s+(\S+)/.exec(p.command)?.[1] as string)
      const policy = await loadPolicyFile(file)
      if (policy.kind !== 'policy') continue
      const version = Number(new RegExp(`published ${policy.name} v(\\d+)`).exec(p.stdout + p.stderr)?.[1])
      expect(version, p.stdout + p.stderr).toBeGreaterThan(0)
      for (const s of statuses) {
        const held = s.policies.find((x) => x.name === policy.name)
        expect(held?.version, `${s.node.name} holds ${policy.name}`).toBe(version)
        if (!matchesTarget(policy, s.node)) continue
        expect(held?.lastApply, `${s.node.name} applied ${policy.name}`).toMatchObject({ outcome: 'changes', failed: 0 })
        for (const r of policy.resources) {
          if (!('path' in r)) continue
          expect(existsSync(join(s.node.root, r.path)), `${s.node.name}: ${r.path} under ${s.node.root}`).toBe(true)
        }
      }
    }
  })

  it('the templates are filled in with each node\'s name and tags', async () => {
    for (const s of statuses) {
      const index = join(s.node.root, 'srv', 'www', 'index.html')
      if (s.node.tags.role === 'web') expect(await readFile(index, 'utf8')).toContain(`<h1>${s.node.name}</h1>`)
      const config = join(s.node.root, 'etc', 'myapp', 'config.toml')
      if (s.node.tags.role === 'app') expect(await readFile(config, 'utf8')).toContain(`datacenter = "${s.node.tags.dc}"`)
    }
  })

  it('status shows the published versions', () => {
    const status = ran.filter((r) => /^\s*grapevine\s+status\b/.test(r.command)).at(-1)
    expect(status, 'the walkthrough ends with a status').toBeDefined()
    for (const p of ran.filter((r) => /^\s*grapevine\s+publish\b/.test(r.command))) {
      const [, name, version] = /published (\S+) v(\d+)/.exec(p.stdout) ?? []
      expect(status?.stdout).toMatch(new RegExp(`^${name ?? '?'}\\s+${version ?? '?'}\\s`, 'm'))
    }
  })
})
