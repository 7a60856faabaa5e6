import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, readdir, readlink, stat, writeFile } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CLI_PATH, REPO_ROOT, type CliResult } from '../helpers/cli.js'
import { makeTempDir, removeTempDir } from '../helpers/tmp.js'
import { seaBinary } from '../helpers/sea-binary.js'
import { trustPolicy } from '../helpers/envelope.js'
import { filePolicy, startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { generateSigningKey, writeSigningKey } from '../../src/envelope/index.js'
import { startApi, type ApiServer } from '../../src/node/api.js'
import type { Policy } from '../../src/policy/index.js'

// `grapevine enroll` against a real OpenSSH server (Debian's sshd, run in the foreground on
// 127.0.0.1 with a generated host key and one authorized client key), into a --prefix so the
// machine's /usr is never touched. The target has no systemd as PID 1: the fallback service.

const run = promisify(execFile)
let dir: string
let binary: string
let sshd: ChildProcess | undefined
let sshdLog = ''
let port: number
let proxy: Proxy | undefined
let proxyPort: number
/** Bytes from the client the proxy passes on before it cuts the connection. */
const PROXY_CUT_AFTER = 4 * 1024 * 1024
let mesh: TestMesh | undefined
let api: ApiServer | undefined
const prefixes: string[] = []

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const p = (server.address() as { port: number }).port
  await new Promise((resolve) => server.close(resolve))
  return p
}

async function keygen (file: string): Promise<string> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'enroll-test', '-f', file])
  return (await readFile(`${file}.pub`, 'utf8')).trim()
}

interface Proxy { server: Server, port: number, cutAll: () => void }

/**
 * A TCP proxy to sshd that cuts each connection once the client has sent `cutAfter` bytes (a
 * connection lost mid-upload), or when told to (`cutAll`: every connection, and those to come).
 */
async function cuttingProxy (target: number, cutAfter = Infinity): Promise<Proxy> {
  const live = new Set<() => void>()
  let down = false
  const server = createServer((client: Socket) => {
    // Once cut, the network stays down: ssh falls back from a dead master to a new connection.
    if (down) { client.destroy(); return }
    const upstream = connect(target, '127.0.0.1')
    let sent = 0
    const cut = (): void => {
      client.destroy()
      upstream.destroy()
      live.delete(cut)
    }
    live.add(cut)
    client.on('data', (b: Buffer) => {
      sent += b.length
      if (sent > cutAfter) cut()
      else upstream.write(b)
    })
    upstream.pipe(client)
    for (const s of [client, upstream]) {
      s.on('error', cut)
      s.on('close', cut)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    server,
    port: (server.address() as { port: number }).port,
    cutAll: () => {
      down = true
      for (const cut of [...live]) cut()
    }
  }
}

/** Processes whose executable lies under a prefix: the agents enroll started there. */
async function agentsUnder (prefix: string): Promise<number[]> {
  const pids: number[] = []
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue
    const exe = await readlink(`/proc/${e}/exe`).catch(() => '')
    const state = await readFile(`/proc/${e}/stat`, 'utf8').then((s) => s.replace(/.*\) /s, '')[0], () => 'Z')
    if (exe.startsWith(`${prefix}/`) && state !== 'Z') pids.push(Number(e))
  }
  return pids
}

/** Whether an install script enroll started under this prefix is still running. */
async function installRunning (prefix: string): Promise<boolean> {
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue
    const cmdline = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(`${prefix}/var/lib/grapevine/enroll-`) && cmdline.startsWith('sh\0')) return true
  }
  return false
}

const alive = async (pid: number): Promise<boolean> => await readFile(`/proc/${pid}/stat`, 'utf8').then((s) => s.replace(/.*\) /s, '')[0] !== 'Z', () => false)

beforeAll(async () => {
  dir = await makeTempDir('grapevine-enroll-')
  binary = await seaBinary()
  // sshd: a host key, one authorized client key, root by key only; its privilege separation directory.
  const hostKey = await keygen(join(dir, 'host_key'))
  await keygen(join(dir, 'other_host_key'))
  await writeFile(join(dir, 'authorized_keys'), `${await keygen(join(dir, 'client_key'))}\n`)
  await keygen(join(dir, 'stranger_key'))
  await mkdir('/run/sshd', { recursive: true })
  port = await freePort()
  await writeFile(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_key')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PidFile none', 'UsePAM no', 'StrictModes no', 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'LogLevel VERBOSE', ''
  ].join('\n'))
  sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] })
  sshd.stderr!.on('data', (b: Buffer) => { sshdLog += b.toString() })
  const s = sshd
  await waitFor(() => sshdLog.includes('Server listening') || s.exitCode !== null, 'sshd to listen')
  expect(s.exitCode, sshdLog).toBeNull()
  await writeFile(join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey.split(' ').slice(0, 2).join(' ')}\n`)
  proxy = await cuttingProxy(port, PROXY_CUT_AFTER)
  proxyPort = proxy.port
  await writeFile(join(dir, 'proxy_known_hosts'), `[127.0.0.1]:${proxyPort} ${hostKey.split(' ').slice(0, 2).join(' ')}\n`)
  const other = (await readFile(join(dir, 'other_host_key.pub'), 'utf8')).trim()
  await writeFile(join(dir, 'wrong_known_hosts'), `[127.0.0.1]:${port} ${other.split(' ').slice(0, 2).join(' ')}\n`)
  await writeFile(join(dir, 'empty_known_hosts'), '')

  // A mesh whose trust policy admits the nodes an enroller key vouches for, with a policy for role=web.
  mesh = await startMesh(1)
  const m = mesh
  const enroller = generateSigningKey()
  await writeSigningKey(join(dir, 'enroller.key'), enroller)
  await writeFile(join(dir, 'root.pub'), `${m.root.id}\n`)
  await writeSigningKey(join(dir, 'root.key'), m.root)
  const a0 = m.agents[0]!
  await a0.publish(m.sign({ ...trustPolicy([]), enrollers: [enroller.id] } as Policy, 1))
  await a0.publish(m.sign(filePolicy('web/motd', 'hello from {{ node.name }}\n', '/etc/motd', { target: { tags: { role: 'web' } } }), 1))
  api = await startApi(a0, { stateDir: join(m.dir, 'node-0', 'state') })
}, 180_000)

afterAll(async () => {
  // Every agent enroll started, by its pid file; then sshd, the proxy and the mesh.
  for (const prefix of prefixes) {
    const pid = Number(await readFile(join(prefix, 'var/lib/grapevine/agent.pid'), 'utf8').catch(() => ''))
    if (pid > 0) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
    for (const p of await agentsUnder(prefix)) { try { process.kill(p, 'SIGKILL') } catch { /* gone */ } }
  }
  sshd?.kill('SIGTERM')
  proxy?.server.close()
  await api?.close()
  await mesh?.stop()
  if (dir !== undefined) await removeTempDir(dir)
}, 60_000)

interface Enrolled { peerId: string, name: string, identity: string, service: string, pid: number, admitted: boolean, policies: Array<{ name: string, version: number, outcome: string }>, bootstrap: string[], timings: Record<string, number> }

interface EnrollOptions {
  port?: number
  knownHosts?: string
  identity?: string
  /** Flags (with their values) left out of the usual ones: --bootstrap, --key, --binary. */
  without?: string[]
  /** Run enroll from the single binary itself, not `node bin/grapevine.js`. */
  fromBinary?: boolean
  /** Called with all of stderr so far, as it comes. */
  onStderr?: (stderr: string) => void
  /** Run on a terminal (util-linux `script`): stdout and stderr both get what the terminal showed. */
  tty?: boolean
}

async function enroll (prefix: string, extra: string[] = [], opts: EnrollOptions = {}): Promise<CliResult> {
  if (!prefixes.includes(prefix)) prefixes.push(prefix)
  const bootstrap = mesh!.agents[0]!.multiaddrs.find((a) => a.includes('127.0.0.1')) as string
  const optional: Array<[string, string]> = [['--bootstrap', bootstrap], ['--key', join(dir, 'enroller.key')], ['--binary', binary]]
  const args = ['enroll', `ssh://root@127.0.0.1:${opts.port ?? port}`, '--prefix', prefix, '--root', join(prefix, '..', `${prefix.split('/').pop() ?? ''}-root`),
    '--trust', join(dir, 'root.pub'), '--tag', 'role=web', '--name', 'newbie',
    '--known-hosts', opts.knownHosts ?? join(dir, 'known_hosts'), '--identity', opts.identity ?? join(dir, 'client_key'),
    '--listen', '/ip4/127.0.0.1/tcp/0', '--agent', `unix:${api!.socket!}`,
    ...optional.filter(([flag]) => !(opts.without ?? []).includes(flag)).flat(), ...extra]
  let [command, argv] = opts.fromBinary === true ? [binary, args] : [process.execPath, [CLI_PATH, ...args]]
  if (opts.tty === true) [command, argv] = ['script', ['-qefc', [command, ...argv].map((a) => `'${a.replace(/'/g, '\'\\\'\'')}'`).join(' '), '/dev/null']]
  return await new Promise((resolve, reject) => {
    const env = opts.fromBinary === true ? { PATH: process.env.PATH ?? '', HOME: dir } : process.env
    const child = spawn(command, argv, { cwd: REPO_ROOT, env: { ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 150_000 })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString()
      opts.onStderr?.(stderr)
    })
    child.once('error', reject)
    child.once('close', (code, signal) => { resolve(opts.tty === true ? { code, signal, stdout, stderr: stdout } : { code, signal, stdout, stderr }) })
  })
}

describe('grapevine enroll over real SSH', () => {
  let target: string
  let first: Enrolled
  let current: Enrolled

  it('installs the binary, config and certificate; the agent starts, joins, counts as admitted and applies the policy for role=web', async () => {
    target = join(dir, 'target')
    const started = performance.now()
    // For the report: from the command to the policy's file on the host (docs/enroll.md, figures).
    let appliedMs: number | undefined
    const watching = (async () => {
      while (appliedMs === undefined && performance.now() - started < 150_000) {
        if (await stat(join(dir, 'target-root/etc/motd')).then(() => true, () => false)) appliedMs = performance.now() - started
        else await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })()
    const r = await enroll(target, ['--wait', '--timeout', '90s', '--json'])
    const tookMs = performance.now() - started
    await watching
    expect(r.code, r.stderr).toBe(0)
    first = JSON.parse(r.stdout) as Enrolled
    process.stderr.write(`enroll.spec: policy applied ${Math.round(appliedMs ?? NaN)} ms after the command started; the command took ${Math.round(tookMs)} ms (${JSON.stringify(first.timings)})\n`)
    expect(first).toMatchObject({ name: 'newbie', identity: 'new', service: 'process', admitted: true })
    expect(first.policies).toContainEqual({ name: 'web/motd', version: 1, outcome: 'applied' })
    expect(r.stderr).toMatch(/^upload: .* MiB binary to .*grapevine\.new-[0-9a-f]+, sha256 checked on the host/m)

    expect(await readFile(join(dir, 'target-root/etc/motd'), 'utf8')).toBe('hello from newbie\n')
    expect((await stat(join(target, 'var/lib/grapevine/identity.key'))).mode & 0o777).toBe(0o600)
    expect(await readFile(join(target, 'var/lib/grapevine/agent.pid'), 'utf8')).toBe(`${first.pid}\n`)
    expect(await agentsUnder(target)).toEqual([first.pid])
    expect(await readFile(join(target, 'etc/grapevine/agent.yaml'), 'utf8')).toMatch(/trust:\n\s+- ed25519:/)
    expect(await readFile(join(target, 'var/log/grapevine.log'), 'utf8')).toContain('"agent started"')
    // The mesh's own view: admitted by its certificate, with the enroller's tags.
    const seen = mesh!.agents[0]!.fleet.list().find((n) => n.id === first.peerId)
    expect(seen).toMatchObject({ name: 'newbie', admitted: true, admission: { name: 'newbie', tags: { role: 'web' } } })
    // Nothing staged is left behind.
    expect((await readdir(join(target, 'usr/bin'))).sort()).toEqual(['grapevine'])
  }, 180_000)

  it('a wrong or unknown host key, and a refused login: a clear error, exit 69 or 77, nothing started on a fresh prefix', async () => {
    const fresh = join(dir, 'fresh')
    const wrong = await enroll(fresh, [], { knownHosts: join(dir, 'wrong_known_hosts') })
    expect(wrong.code).toBe(69)
    expect(wrong.stderr).toMatch(new RegExp(`error: the host key \\[127\\.0\\.0\\.1\\]:${port} offered does not match the one in .*wrong_known_hosts`))
    const unknown = await enroll(fresh, [], { knownHosts: join(dir, 'empty_known_hosts') })
    expect(unknown.code).toBe(69)
    expect(unknown.stderr).toMatch(new RegExp(`error: the host key for \\[127\\.0\\.0\\.1\\]:${port} is not in .*empty_known_hosts.*ssh-keyscan -p ${port} 127\\.0\\.0\\.1`))
    const refused = await enroll(fresh, [], { identity: join(dir, 'stranger_key') })
    expect(refused.code).toBe(77)
    expect(refused.stderr).toMatch(/error: root@127\.0\.0\.1:\d+ refused the login as root with .*stranger_key \(.*Permission denied/)
    for (const r of [wrong, unknown, refused]) expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1)
    expect(await agentsUnder(fresh)).toEqual([])
    expect(await stat(join(fresh, 'usr')).then(() => true, () => false)).toBe(false)
  }, 60_000)

  it('refuses a private key as --trust (64) before connecting, and a binary for another architecture (69) before uploading it', async () => {
    const fresh = join(dir, 'fresh')
    const privateTrust = await enroll(fresh, ['--trust', join(dir, 'enroller.key')])
    expect(privateTrust.code).toBe(64)
    expect(privateTrust.stderr).toMatch(/^error: --trust: .*enroller\.key is a private key: give its public key instead .*would let anyone who reads the node's config sign policies$/m)
    expect(privateTrust.stderr).not.toMatch(/^connect:/m)
    // An ELF header for aarch64 (e_machine 0xb7), which the x86_64 host cannot run.
    const arm = Buffer.alloc(64)
    arm.write('\x7fELF', 0, 'latin1')
    arm.writeUInt16LE(0xb7, 18)
    await writeFile(join(dir, 'grapevine-linux-arm64'), arm)
    const wrongArch = await enroll(fresh, ['--binary', join(dir, 'grapevine-linux-arm64')])
    expect(wrongArch.code).toBe(69)
    expect(wrongArch.stderr).toMatch(/^error: root@127\.0\.0\.1:\d+ is x86_64, and .*grapevine-linux-arm64 is for aarch64: build the binary on a x86_64 machine/m)
    expect(wrongArch.stderr).not.toMatch(/^upload:/m)
    expect(await readdir(join(fresh, 'usr/bin'))).toEqual([])
    expect(await agentsUnder(fresh)).toEqual([])
  }, 60_000)

  it('a connection lost mid-upload: exit 69 naming the step; the enrolled agent keeps running, its binary untouched', async () => {
    const before = (await stat(join(target, 'usr/bin/grapevine'))).ino
    const r = await enroll(target, [], { port: proxyPort, knownHosts: join(dir, 'proxy_known_hosts') })
    expect(r.code, r.stderr).toBe(69)
    expect(r.stderr).toMatch(/error: the SSH connection to root@127\.0\.0\.1:\d+ was lost during "upload" \(.+\): nothing was installed or started; the files staged so far are removed by the next enroll/)
    expect(await alive(first.pid)).toBe(true)
    expect(await agentsUnder(target)).toEqual([first.pid])
    expect((await stat(join(target, 'usr/bin/grapevine'))).ino).toBe(before)
    // What the lost run staged: removed by the next run (below).
    expect((await readdir(join(target, 'usr/bin'))).some((f) => f.startsWith('grapevine.new-'))).toBe(true)
  }, 60_000)

  it('re-enrolling replaces the binary, restarts the agent and keeps its peer id, with the new config', async () => {
    const before = (await stat(join(target, 'usr/bin/grapevine'))).ino
    const r = await enroll(target, ['--tag', 'tier=2', '--expires', '1y', '--wait', '--timeout', '90s', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const again = JSON.parse(r.stdout) as Enrolled
    expect(again).toMatchObject({ peerId: first.peerId, identity: 'kept', admitted: true })
    expect(r.stderr).toMatch(/removed 1 file\(s\) an interrupted run staged/)
    expect(r.stderr).toContain(`stopped the old agent, pid ${first.pid}`)
    expect(again.pid).not.toBe(first.pid)
    expect(await alive(first.pid)).toBe(false)
    expect(await agentsUnder(target)).toEqual([again.pid])
    expect((await stat(join(target, 'usr/bin/grapevine'))).ino).not.toBe(before)
    expect((await readdir(join(target, 'usr/bin'))).sort()).toEqual(['grapevine'])
    expect(await readFile(join(target, 'etc/grapevine/agent.yaml'), 'utf8')).toMatch(/tier: "2"/)
    // A new certificate, for a year, asserting the new tags.
    const cert = JSON.parse(await readFile(join(target, 'var/lib/grapevine/admission.cert'), 'utf8')) as { peer: string, tags: Record<string, string>, issuedAt: string, expires: string }
    expect(cert).toMatchObject({ peer: first.peerId, tags: { role: 'web', tier: '2' } })
    expect(Date.parse(cert.expires) - Date.parse(cert.issuedAt)).toBe(365 * 86_400_000)
    await waitFor(() => mesh!.agents[0]!.fleet.list().find((n) => n.id === first.peerId)?.tags.tier === '2', 'the node to report its new tag')
    current = again
  }, 180_000)

  it('from the single binary, which installs itself; the local agent\'s addresses as bootstrap; without --key the node is heard but not admitted: --wait exits 5 saying so', async () => {
    const unadmitted = join(dir, 'unadmitted')
    const r = await enroll(unadmitted, ['--wait', '--timeout', '10s'], { without: ['--bootstrap', '--key', '--binary'], fromBinary: true })
    expect(r.code, r.stderr).toBe(5)
    const a0 = mesh!.agents[0]!
    expect(r.stderr).toContain(`bootstrap: the local agent's addresses: ${a0.multiaddrs.filter((a) => a.startsWith('/ip4/127.')).join(' ')}`)
    expect(r.stderr).toMatch(/^wait: timed out after 10s: it was heard from \(.+\) but does not count as admitted: no-certificate$/m)
    const peerId = /^enrolled newbie (\S+) on root@127\.0\.0\.1:\d+$/m.exec(r.stdout)?.[1]
    expect(peerId).toMatch(/^12D3KooW/)
    expect(await readFile(join(unadmitted, 'etc/grapevine/agent.yaml'), 'utf8')).toContain(`/p2p/${a0.peerId.toString()}`)
    expect(await stat(join(unadmitted, 'var/lib/grapevine/admission.cert')).catch(() => undefined)).toBeUndefined()
    // The binary it installed is itself.
    const [installed, self] = await Promise.all([readFile(join(unadmitted, 'usr/bin/grapevine')), readFile(binary)])
    expect(installed.equals(self)).toBe(true)
    expect(a0.fleet.list().find((n) => n.id === peerId)).toMatchObject({ admitted: false, unadmitted: 'no-certificate' })
  }, 120_000)

  it('a new agent that does not start: the old binary and config go back and the old agent starts again (exit 69, its log quoted)', async () => {
    const before = { ino: (await stat(join(target, 'usr/bin/grapevine'))).ino, config: await readFile(join(target, 'etc/grapevine/agent.yaml'), 'utf8') }
    // The new config listens on a port something else holds: the new agent exits at once.
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const busy = (taken.address() as { port: number }).port
    try {
      // On a terminal, so the upload shows its live counter too.
      const r = await enroll(target, ['--listen', `/ip4/127.0.0.1/tcp/${busy}`], { tty: true })
      expect(r.code).toBe(69)
      // eslint-disable-next-line no-control-regex
      expect(r.stderr).toMatch(/\r\x1b\[2Kupload: 0\.0 \/ \d+\.\d MiB(\r\x1b\[2Kupload: \d+\.\d \/ \d+\.\d MiB)*\r\x1b\[2Kupload: \d+\.\d MiB binary to /)
      const restarted = /error: install failed on .*cannot listen on \/ip4\/127\.0\.0\.1\/tcp\/\d+.*result=failed the new agent did not start \(its log above\); the old one runs again, pid (\d+)/.exec(r.stderr)
      expect(restarted, r.stderr).not.toBeNull()
      const pid = Number(restarted![1])
      expect(pid).not.toBe(current.pid)
      expect(await agentsUnder(target)).toEqual([pid])
      expect(await readFile(join(target, 'var/lib/grapevine/agent.pid'), 'utf8')).toBe(`${pid}\n`)
      expect((await stat(join(target, 'usr/bin/grapevine'))).ino).toBe(before.ino)
      expect(await readFile(join(target, 'etc/grapevine/agent.yaml'), 'utf8')).toBe(before.config)
      expect((await readdir(join(target, 'usr/bin'))).sort()).toEqual(['grapevine'])
      // The old agent is back in the mesh under its own peer id.
      const since = new Date().toISOString()
      await waitFor(() => (mesh!.agents[0]!.fleet.list().find((n) => n.id === first.peerId)?.lastSeen ?? '') >= since, 'the restored agent to be heard again')
    } finally {
      await new Promise((resolve) => taken.close(resolve))
    }
  }, 120_000)

  it('a connection lost while the install script runs: exit 69 saying so; the script runs to its end, and the new agent runs whole', async () => {
    const cutter = await cuttingProxy(port)
    const hostKey = (await readFile(join(dir, 'host_key.pub'), 'utf8')).split(' ').slice(0, 2).join(' ')
    await writeFile(join(dir, 'cut_known_hosts'), `[127.0.0.1]:${cutter.port} ${hostKey}\n`)
    const before = { pid: Number(await readFile(join(target, 'var/lib/grapevine/agent.pid'), 'utf8')), ino: (await stat(join(target, 'usr/bin/grapevine'))).ino }
    // Once the config step is done, watch for the install script on the host, and cut the connection as soon as it runs.
    let watching: Promise<void> | undefined
    let cutWhileRunning = false
    try {
      const r = await enroll(target, ['--tag', 'cut=1'], {
        port: cutter.port,
        knownHosts: join(dir, 'cut_known_hosts'),
        onStderr: (text) => {
          if (watching !== undefined || !/^config: /m.test(text)) return
          watching = (async () => {
            const until = performance.now() + 30_000
            while (!cutWhileRunning && performance.now() < until) {
              if (await installRunning(target)) {
                cutter.cutAll()
                cutWhileRunning = true
              } else await new Promise((resolve) => setTimeout(resolve, 5))
            }
          })()
        }
      })
      await watching
      expect(cutWhileRunning).toBe(true)
      expect(r.code, r.stderr).toBe(69)
      expect(r.stderr).toMatch(/^error: the SSH connection to root@127\.0\.0\.1:\d+ was lost during "install": if the install script had started, it runs to its end on the host regardless \(its output: .*enroll\.log\)/m)
    } finally {
      cutter.server.close()
    }
    let pid = 0
    await waitFor(async () => {
      if (await installRunning(target)) return false
      const pids = await agentsUnder(target)
      pid = Number(await readFile(join(target, 'var/lib/grapevine/agent.pid'), 'utf8').catch(() => '0'))
      return pids.length === 1 && pids[0] === pid
    }, 'the install script to end, leaving one agent that the pid file names', 60_000)
    expect(pid).not.toBe(before.pid)
    expect(await alive(before.pid)).toBe(false)
    expect((await stat(join(target, 'usr/bin/grapevine'))).ino).not.toBe(before.ino)
    expect(await readFile(join(target, 'etc/grapevine/agent.yaml'), 'utf8')).toMatch(/cut: "1"/)
    expect(await readFile(join(target, 'var/lib/grapevine/enroll.log'), 'utf8')).toMatch(new RegExp(`^result=ok pid=${pid} `, 'm'))
    expect((await readdir(join(target, 'usr/bin'))).sort()).toEqual(['grapevine'])
  }, 120_000)
})
