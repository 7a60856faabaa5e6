import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { REPO_ROOT } from '../helpers/cli.js'
import { makeTempDir, removeTempDir } from '../helpers/tmp.js'
import { seaBinary } from '../helpers/sea-binary.js'
import { policyTopic } from '../../src/node/constants.js'
import { filePolicy, startMesh, waitFor, type TestMesh } from '../node/fixtures.js'

// The single executable (scripts/build-sea.mjs, `npm run release`) on a "bare machine": run
// with an empty environment whose PATH holds no node, so nothing but the binary can run it.

let dir: string
let binary: string

beforeAll(async () => {
  dir = await makeTempDir('grapevine-sea-')
  binary = await seaBinary()
}, 300_000)
afterAll(async () => { await removeTempDir(dir) })

const bare = (): Record<string, string> => ({ PATH: '/nonexistent', HOME: dir })

interface Result { code: number | null, stdout: string, stderr: string }

async function runBare (args: string[], cwd = REPO_ROOT): Promise<Result> {
  return await new Promise((resolve, reject) => {
    const child = spawn(binary, args, { cwd, env: bare(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    child.once('error', reject)
    child.once('close', (code) => { resolve({ code, stdout, stderr }) })
  })
}

describe('the single binary with no node on PATH', () => {
  it('--version names the Node it embeds', async () => {
    const r = await runBare(['--version'])
    expect(r).toMatchObject({ code: 0, stderr: '' })
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
    expect(r.stdout.trim()).toBe(`${pkg.version} (single binary, Node ${process.version})`)
  })

  it('validates a shipped policy', async () => {
    const r = await runBare(['validate', 'policies/web.yaml'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('policies/web.yaml')
  })

  it('applies a policy into a root, then finds nothing to change', async () => {
    const policy = join(dir, 'motd.yaml')
    await writeFile(policy, 'name: t/motd\nresources:\n  - { id: etc, type: directory, path: /etc }\n  - { id: motd, type: file, path: /etc/motd, content: "hi {{ node.name }}\\n" }\n  - { id: json, type: config, path: /etc/app.json, format: json, data: { port: 8080 } }\n')
    const args = ['apply', policy, '--root', join(dir, 'root'), '--state', join(dir, 'state'), '--name', 'bare']
    await mkdir(join(dir, 'root'))
    const first = await runBare(args)
    expect(first.stderr).toBe('')
    expect(first.code).toBe(2)
    expect(await readFile(join(dir, 'root/etc/motd'), 'utf8')).toBe('hi bare\n')
    expect(JSON.parse(await readFile(join(dir, 'root/etc/app.json'), 'utf8'))).toEqual({ port: 8080 })
    expect((await runBare(args)).code).toBe(0)
  })

  it('writes a swarm key and a key pair (commands that import built-in modules lazily)', async () => {
    const r = await runBare(['swarm-key', '--out', join(dir, 'swarm.key')])
    expect(r.stderr).toMatch(/^wrote .*swarm\.key; copy it to every node/)
    expect(r.code).toBe(0)
    expect(await readFile(join(dir, 'swarm.key'), 'utf8')).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\//)
    expect((await runBare(['keygen', '--out', join(dir, 'root.key')])).code).toBe(0)
    expect(await readFile(join(dir, 'root.key.pub'), 'utf8')).toMatch(/^ed25519:/)
  })

  it('refuses sim and demo in one line, exit 69', async () => {
    for (const command of ['sim', 'demo']) {
      const r = await runBare([command])
      expect(r.code).toBe(69)
      expect(r.stderr).toMatch(new RegExp(`^grapevine: \`${command}\` is not in the single binary: .+\\n$`))
    }
  })

  describe('agent', () => {
    let mesh: TestMesh | undefined
    let child: ChildProcess | undefined
    afterAll(async () => {
      child?.kill('SIGKILL')
      await mesh?.stop()
    })

    it('joins a mesh of ordinary agents and applies a policy published there', async () => {
      mesh = await startMesh(2)
      const m = mesh
      const bootstrap = m.agents[0]!.multiaddrs.find((a) => a.includes('127.0.0.1')) as string
      const root = join(dir, 'agent-root')
      child = spawn(binary, ['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--state', join(dir, 'agent-state'), '--root', root,
        '--trust', m.root.id, '--name', 'bare', '--bootstrap', bootstrap, '--no-api'], { env: bare(), stdio: ['ignore', 'pipe', 'pipe'] })
      let log = ''
      child.stdout!.on('data', (b: Buffer) => { log += b.toString() })
      child.stderr!.on('data', (b: Buffer) => { log += b.toString() })
      const c = child
      await waitFor(() => log.includes('"agent started"') || c.exitCode !== null, 'the binary agent to start')
      expect(c.exitCode, log).toBeNull()
      const peerId = (JSON.parse(log.split('\n').find((l) => l.includes('"agent started"')) as string) as { peerId: string }).peerId
      // Joined, and heard subscribed: a publish before that would reach it only at its next sync.
      const a0 = m.agents[0]!
      await waitFor(() => a0.libp2p.services.pubsub.getSubscribers(policyTopic(a0.mesh)).some((p) => p.toString() === peerId), 'the binary agent to join the mesh')

      await a0.publish(m.sign(filePolicy('site/motd', 'hello from {{ node.name }}\n'), 1))
      await waitFor(async () => await readFile(join(root, 'etc/grapevine-test/motd'), 'utf8').catch(() => '') === 'hello from bare\n', 'the binary agent to apply the policy')

      c.kill('SIGTERM')
      expect(await new Promise((resolve) => c.once('exit', resolve))).toBe(0)
    })
  })
})
