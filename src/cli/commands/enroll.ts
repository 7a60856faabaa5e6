import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Register } from '../register.js'
import { CliError, EXIT, liveLine, print, printJson } from '../output.js'
import { agentEndpoint, collect, parseTags } from '../defaults.js'
import { parseDuration } from '../duration.js'
import { connect, EXIT_TIMEOUT } from './mesh.js'
import { parseDuration as certificateLifetime } from './admit.js'
import type { FleetNode } from '../../receipt/index.js'
import type { Layout, SshSession, SshTarget } from '../../enroll/index.js'

// `grapevine enroll ssh://host`: a bare server joins the mesh with one command (docs/enroll.md).
// Every step before the install script only stages files under names of this run's own, so a
// failure anywhere leaves no half-installed agent running; the next run removes what was staged.

interface EnrollFlags {
  bootstrap?: string[]
  trust?: string[]
  tag?: string[]
  name?: string
  swarmKey?: string
  identity?: string
  key?: string
  expires?: string
  wait?: boolean
  timeout: string
  prefix: string
  root?: string
  listen?: string[]
  binary?: string
  knownHosts?: string
  sshOption?: string[]
  agent?: string
  state?: string
  mesh?: string
  json?: boolean
}

/** Exit codes of enroll's named errors (README, "Exit codes"). */
const ENROLL_ERROR_EXIT: Readonly<Record<string, number>> = {
  InvalidTargetError: EXIT.USAGE,
  HostKeyUnknownError: EXIT.UNAVAILABLE,
  HostKeyMismatchError: EXIT.UNAVAILABLE,
  LoginRefusedError: EXIT.NOPERM,
  HostUnreachableError: EXIT.UNAVAILABLE,
  ConnectionLostError: EXIT.UNAVAILABLE,
  UnsupportedTargetError: EXIT.UNAVAILABLE,
  RemoteStepError: EXIT.UNAVAILABLE
}

/** ELF e_machine values and what `uname -m` calls them. */
const ELF_MACHINES: Readonly<Record<number, string>> = { 0x3e: 'x86_64', 0xb7: 'aarch64', 0x28: 'armv7l', 0x03: 'i686' }

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const MiB = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`

/** Progress for people, on stderr: `step: what was done (time)`. */
function progress (step: string, text: string, ms?: number): void {
  process.stderr.write(`${step}: ${text}${ms !== undefined ? ` (${seconds(ms)})` : ''}\n`)
}

/** `upload: 41.0 / 99.3 MiB` on a terminal, redrawn at most every COUNTER_INTERVAL_MS. */
const COUNTER_INTERVAL_MS = 250

function liveCounter (step: string, total: number): { update: (sent: number) => void, done: () => void } {
  const line = liveLine({ everyMs: COUNTER_INTERVAL_MS })
  const update = (sent: number): void => { line.show(`${step}: ${(sent / 1048576).toFixed(1)} / ${MiB(total)}`) }
  update(0)
  return { update, done: line.clear }
}

/** The binary to install: --binary, else this process's own when it is the single binary, else `npm run release`'s. */
async function chooseBinary (flag: string | undefined): Promise<string> {
  if (flag !== undefined) {
    await stat(flag).catch((err: NodeJS.ErrnoException) => { throw new CliError(`cannot read --binary ${flag}: ${err.code ?? err.message}`, EXIT.UNAVAILABLE) })
    return flag
  }
  const sea = await import('node:sea').then((m) => m.isSea(), () => false)
  if (sea) return process.execPath
  const built = fileURLToPath(new URL('../../release/grapevine-linux-x64', import.meta.url))
  if (await stat(built).then((s) => s.isFile(), () => false)) return built
  throw new CliError(`no binary to install: run \`npm run release\` in the checkout (it builds ${built}), or give --binary FILE`, EXIT.UNAVAILABLE)
}

/** The architecture an ELF binary is for, as `uname -m` names it; undefined for anything else. */
async function binaryArch (file: string): Promise<string | undefined> {
  const fh = await open(file, 'r')
  try {
    const head = Buffer.alloc(20)
    await fh.read(head, 0, 20, 0)
    if (head.subarray(0, 4).toString('latin1') !== '\x7fELF') return undefined
    return ELF_MACHINES[head.readUInt16LE(18)] ?? `ELF machine ${head.readUInt16LE(18)}`
  } finally {
    await fh.close()
  }
}

interface LocalAgentStatus { node: { id: string, addrs: string[], mesh: string } }

/**
 * The local agent's own addresses with its peer id: what the new node joins through when no
 * --bootstrap is given. Loopback addresses only for a target that is this machine.
 */
function bootstrapFrom (status: LocalAgentStatus, loopbackTarget: boolean): string[] {
  const withId = status.node.addrs.map((a) => a.includes('/p2p/') ? a : `${a}/p2p/${status.node.id}`)
  const loopback = (a: string): boolean => a.startsWith('/ip4/127.') || a.startsWith('/ip6/::1/') || a.startsWith('/dns4/localhost/')
  return withId.filter((a) => loopbackTarget ? loopback(a) : !loopback(a))
}

/** Runs the steps; the session is the caller's to close. */
async function enroll (target: SshTarget, opts: EnrollFlags, session: SshSession, l: Layout, prepared: Prepared): Promise<Enrolled> {
  const e = await import('../../enroll/index.js')
  const nonce = randomBytes(6).toString('hex')
  const timings: Record<string, number> = {}
  const timed = async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now()
    try { return await fn() } finally { timings[step] = Math.round(performance.now() - t0) }
  }

  await timed('connect', async () => { await session.open() })
  progress('connect', `${e.targetText(target)}, host key checked`, timings.connect)

  const probe = e.parseProbe((await timed('probe', async () => await session.run('probe', 'sh -s', e.probeScript(l)))).stdout)
  const hostname = probe.hostname
  if (probe.arch !== prepared.arch) throw new e.UnsupportedTargetError(`${e.targetText(target)} is ${probe.arch || 'of an unknown architecture'}, and ${prepared.binary} is for ${prepared.arch}: build the binary on a ${probe.arch} machine (npm run release) and give it with --binary`)
  if (probe.missing.length > 0) throw new e.UnsupportedTargetError(`${e.targetText(target)} lacks ${probe.missing.join(', ')}, which enroll's steps need (coreutils, util-linux)`)
  const service: 'systemd' | 'process' = probe.systemd ? 'systemd' : 'process'
  progress('probe', `${probe.arch}, ${service === 'systemd' ? 'systemd' : 'no systemd: a detached process with a pid file'}, ${probe.installed !== undefined ? `installed: ${probe.installed}${probe.runningPid !== undefined ? `, running as pid ${probe.runningPid}` : ''}` : 'no agent installed'}${probe.cleaned > 0 ? `, removed ${probe.cleaned} file(s) an interrupted run staged` : ''}`, timings.probe)

  const stagedBin = e.staged(l.bin, nonce)
  const counter = liveCounter('upload', prepared.bytes)
  const uploaded = await timed('upload', async () => await uploadFile(session, 'upload', createReadStream(prepared.binary), stagedBin, '0755', counter.update).finally(counter.done))
  if (uploaded.remote !== uploaded.local) throw new e.RemoteStepError(`the binary arrived damaged on ${e.targetText(target)} (sha256 ${uploaded.remote.slice(0, 16)}…, sent ${uploaded.local.slice(0, 16)}…): run enroll again`, 'upload')
  progress('upload', `${MiB(prepared.bytes)} binary to ${stagedBin}, sha256 checked on the host`, timings.upload)

  // The node's identity is made on the node, by the binary just uploaded: its private key never leaves it.
  const said = (await timed('identity', async () => await session.run('identity', `${e.shellQuote(stagedBin)} identity --state ${e.shellQuote(l.state)} --json`))).stdout
  let identity: { peerId: string, created: boolean }
  try {
    identity = JSON.parse(said) as typeof identity
    if (typeof identity.peerId !== 'string' || typeof identity.created !== 'boolean') throw new TypeError('no peerId')
  } catch {
    throw new e.RemoteStepError(`the uploaded binary did not print the node's identity on ${e.targetText(target)} (is it a grapevine with the identity command?): ${said.trim().slice(0, 200) || 'no output'}`, 'identity')
  }
  progress('identity', `${identity.peerId} (${identity.created ? 'new' : 'kept from the earlier install'})`, timings.identity)

  const name = opts.name ?? hostname
  const files: Array<{ path: string, bytes: Uint8Array | string, mode: string }> = []
  let enroller: string | undefined
  if (prepared.key !== undefined) {
    const { signAdmission } = await import('../../admission/index.js')
    const now = Date.now()
    files.push({ path: l.cert, bytes: signAdmission({ peer: identity.peerId, name: name ?? identity.peerId, tags: prepared.tags, key: prepared.key, issuedAt: now, ...(prepared.lifetimeMs !== undefined ? { expires: now + prepared.lifetimeMs } : {}) }), mode: '0644' })
    enroller = prepared.key.id
  }
  const { stringify } = await import('yaml')
  const config = e.agentConfig(l, { trust: prepared.trust, bootstrap: prepared.bootstrap, tags: prepared.tags, name, listen: opts.listen, root: opts.root, mesh: opts.mesh, swarmKey: prepared.swarmKey !== undefined })
  files.push({ path: l.config, bytes: `# Written by grapevine enroll; enroll writes it anew each run.\n${stringify(config)}`, mode: '0644' })
  if (prepared.swarmKey !== undefined) files.push({ path: l.swarmKey, bytes: prepared.swarmKey, mode: '0600' })
  if (service === 'systemd') files.push({ path: l.unit, bytes: e.unitFor(l), mode: '0644' })
  const plan = { nonce, cert: prepared.key !== undefined, swarmKey: prepared.swarmKey !== undefined, service }
  const script = join(l.state, `enroll-${nonce}.sh`)
  await timed('config', async () => {
    for (const f of files) await uploadFile(session, 'config', Buffer.from(f.bytes), e.staged(f.path, nonce), f.mode)
    await uploadFile(session, 'config', Buffer.from(e.installScript(l, plan)), script, '0700')
  })
  progress('config', `${l.config}${enroller !== undefined ? `, admission certificate for "${name ?? identity.peerId}" signed by ${enroller}` : ''}${prepared.swarmKey !== undefined ? ', swarm key (0600)' : ''}; bootstrap ${prepared.bootstrap.join(' ')}`, timings.config)

  let out: string
  try {
    out = (await timed('install', async () => await session.run('install', e.runInstallCommand(script, join(l.state, 'enroll.log'))))).stdout
  } catch (err) {
    // The script runs in a session of its own: a lost connection does not stop it half done.
    if (err instanceof e.ConnectionLostError) throw new e.ConnectionLostError(`the SSH connection to ${e.targetText(target)} was lost during "install": if the install script had started, it runs to its end on the host regardless (its output: ${join(l.state, 'enroll.log')}), leaving the new agent running or the old one back; if not, nothing changed. Run enroll again to see where it stands (it removes what this run staged)`, 'install')
    throw err
  }
  const result = /^result=ok pid=(\d+) since=(\S+)$/m.exec(out)
  if (result === null) throw new e.RemoteStepError(`the agent did not start on ${e.targetText(target)}: ${out.trim().split('\n').slice(-6).join(' | ')}`, 'install')
  const pid = Number(result[1])
  progress('install', `${service === 'systemd' ? `systemd unit ${l.unit}` : `started as pid ${pid}, log ${l.log}, pid file ${l.pidFile}`}${probe.runningPid !== undefined ? ` (stopped the old agent, pid ${probe.runningPid})` : ''}`, timings.install)
  return { peerId: identity.peerId, created: identity.created, name, service, pid, since: result[2] as string, enroller, sha256: uploaded.local, timings }
}

interface Prepared {
  binary: string
  bytes: number
  arch: string
  trust: string[]
  tags: Record<string, string>
  bootstrap: string[]
  key?: Awaited<ReturnType<typeof import('../../envelope/index.js')['readSigningKey']>>
  /** --expires: the certificate's lifetime. */
  lifetimeMs?: number
  swarmKey?: Uint8Array
}

interface Enrolled {
  peerId: string
  created: boolean
  name?: string
  service: 'systemd' | 'process'
  pid: number
  since: string
  enroller?: string
  sha256: string
  timings: Record<string, number>
}

/** Streams a file to a staged path on the target; the local and remote SHA-256 of what went. */
async function uploadFile (session: SshSession, step: string, input: Buffer | NodeJS.ReadableStream, path: string, mode: string, onBytes?: (sent: number) => void): Promise<{ local: string, remote: string }> {
  const { uploadCommand } = await import('../../enroll/index.js')
  const hash = createHash('sha256')
  let sent = 0
  if (Buffer.isBuffer(input)) hash.update(input)
  else {
    input.on('data', (b: Buffer) => {
      hash.update(b)
      sent += b.length
      onBytes?.(sent)
    })
  }
  const r = await session.run(step, uploadCommand(path, mode), input as Buffer)
  return { local: hash.digest('hex'), remote: r.stdout.trim().split(/\s+/)[0] ?? '' }
}

/** What --wait saw of the new node. */
interface Seen { node?: FleetNode, pending: string[] }

/**
 * Waits until the new node's own report (a beacon or receipt signed after its start) reaches
 * the local agent's fleet view, it counts as admitted, and it has reported on every policy the
 * mesh holds (applied, unchanged, not targeted, …, anything but pending).
 */
async function waitForNode (opts: EnrollFlags, peerId: string, since: string, timeoutMs: number): Promise<{ seen: Seen, timedOut: boolean }> {
  const { WAIT_POLL_MS } = await import('../../enroll/index.js')
  const client = await connect({ agent: opts.agent, state: opts.state })
  const deadline = performance.now() + timeoutMs
  try {
    for (;;) {
      const [nodes, heads] = await Promise.all([client.fleet(), client.heads()])
      const node = nodes.find((n) => n.id === peerId && n.lastSeen >= since)
      const pending = heads.filter((h) => {
        const state = node?.policies[h.name]
        return state === undefined || state.version < h.version || state.outcome === 'pending'
      }).map((h) => `${h.name} v${h.version}`)
      const seen: Seen = { ...(node !== undefined ? { node } : {}), pending }
      if (node !== undefined && node.admitted && pending.length === 0) return { seen, timedOut: false }
      if (performance.now() >= deadline) return { seen, timedOut: true }
      await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS))
    }
  } finally {
    await client.close()
  }
}

function seenText (seen: Seen): string {
  if (seen.node === undefined) return 'the local agent has heard nothing from it since it started (is its --bootstrap reachable from the host, and the host\'s port open?)'
  if (!seen.node.admitted) return `it was heard from (${seen.node.lastSeen}) but does not count as admitted: ${seen.node.unadmitted ?? 'unknown reason'}`
  return `it was heard from (${seen.node.lastSeen}), admitted, and has not yet reported on ${seen.pending.join(', ')}`
}

export const registerEnroll: Register = (program, done) => {
  program.command('enroll')
    .description('Install and start an agent on a host over SSH: copy the single binary, write its config and admission certificate, start it under systemd (or as a detached process), and with --wait see it join.')
    .argument('<target>', 'ssh://[user@]host[:port]')
    .option('--bootstrap <multiaddr>', 'a peer the new node joins through, repeatable (default: the addresses of the local agent)', collect)
    .option('--trust <key>', 'a root public key id, or a file holding one, for the new node to trust; repeatable (never a private key)', collect)
    .option('--tag <k=v>', 'a tag for the new node (its config, and its certificate with --key), repeatable', collect)
    .option('--name <name>', 'the node\'s name (default: the host\'s name)')
    .option('--key <file>', 'enroller key: sign the node\'s admission certificate here, for the peer id the node made')
    .option('--expires <duration>', 'with --key: the certificate expires after this long: 90d, 12h, 2w, 1y (default: never)')
    .option('--swarm-key <file>', 'the mesh\'s pre-shared swarm key, copied to the host (mode 0600)')
    .option('--listen <multiaddr>', 'the new node\'s listen address, repeatable (default /ip4/0.0.0.0/tcp/7410)', collect)
    .option('--root <dir>', 'the new node\'s managed root (default /)')
    .option('--prefix <dir>', 'install under this directory on the host: DIR/usr/bin/grapevine, DIR/etc/grapevine/, DIR/var/lib/grapevine, DIR/var/log/grapevine.log', '/')
    .option('--binary <file>', 'the binary to install (default: this one when it is the single binary, else dist/release/grapevine-linux-x64)')
    .option('--identity <file>', 'the SSH private key to log in with (ssh -i; only it)')
    .option('--known-hosts <file>', 'the known_hosts file to check the host key against (default ssh\'s own)')
    .option('--ssh-option <option>', 'an ssh -o option (e.g. ProxyJump=bastion), repeatable', collect)
    .option('--wait', 'wait until the new node\'s signed beacon reaches the local agent, it counts as admitted, and it reported on every policy')
    .option('--timeout <duration>', 'how long --wait waits (e.g. 90s, 5m)', '2m')
    .option('--agent <address>', 'the local agent\'s API, for the default bootstrap and --wait: a socket path, unix:PATH or http://HOST:PORT')
    .option('--state <dir>', 'the local agent\'s state directory, where its API socket is')
    .option('--mesh <name>', 'the new node\'s mesh name (default "default")')
    .option('--json', 'print the result as JSON')
    .action(async (targetText: string, opts: EnrollFlags) => {
      const e = await import('../../enroll/index.js')
      let target: SshTarget
      let tags: Record<string, string>
      try {
        target = e.parseSshTarget(targetText)
        tags = parseTags(opts.tag)
      } catch (err) {
        throw new CliError((err as Error).message, EXIT.USAGE)
      }
      if (!isAbsolute(opts.prefix)) throw new CliError(`--prefix must be an absolute path on the host: got "${opts.prefix}"`, EXIT.USAGE)
      if (opts.root !== undefined && !isAbsolute(opts.root)) throw new CliError(`--root must be an absolute path on the host: got "${opts.root}"`, EXIT.USAGE)
      const timeoutMs = parseDuration(opts.timeout)
      if (timeoutMs === undefined || timeoutMs <= 0) throw new CliError(`--timeout expects a duration like 90s or 5m: got "${opts.timeout}"`, EXIT.USAGE)
      if ((opts.trust ?? []).length === 0) throw new CliError('give at least one --trust root public key: an agent that trusts nobody would accept nothing', EXIT.USAGE)
      const { resolveTrustedKey, readSigningKey } = await import('../../envelope/index.js')
      // As the agent does: a private key is refused (exit 64), never copied to the host.
      const trust = await Promise.all((opts.trust ?? []).map(async (v) => await resolveTrustedKey(v).catch((err: Error) => { throw new CliError(`--trust: ${err.message}`, EXIT.USAGE) })))
      for (const [flag, file] of [['--identity', opts.identity], ['--known-hosts', opts.knownHosts]] as const) {
        if (file !== undefined) await stat(file).catch((err: NodeJS.ErrnoException) => { throw new CliError(`cannot read ${flag} ${file}: ${err.code ?? err.message}`, EXIT.UNAVAILABLE) })
      }
      if (opts.expires !== undefined && opts.key === undefined) throw new CliError('--expires is the admission certificate\'s lifetime: give --key too', EXIT.USAGE)
      const lifetimeMs = opts.expires !== undefined ? certificateLifetime(opts.expires) : undefined
      const key = opts.key !== undefined ? await readSigningKey(opts.key) : undefined
      let swarmKey: Uint8Array | undefined
      if (opts.swarmKey !== undefined) {
        swarmKey = new Uint8Array(await readFile(opts.swarmKey).catch((err: NodeJS.ErrnoException) => { throw new CliError(`cannot read --swarm-key ${opts.swarmKey ?? ''}: ${err.code ?? err.message}`, EXIT.UNAVAILABLE) }))
      }
      const binary = await chooseBinary(opts.binary)
      const arch = await binaryArch(binary)
      if (arch === undefined) throw new CliError(`${binary} is not an executable for Linux (no ELF header): give the single binary (npm run release)`, EXIT.USAGE)
      const bytes = (await stat(binary)).size

      // The local agent, asked before anything happens on the host: for the default bootstrap, and --wait.
      let bootstrap = opts.bootstrap ?? []
      if (bootstrap.length === 0 || opts.wait === true) {
        const [{ agentJson }] = await Promise.all([import('../../client/agent-api.js')])
        const endpoint = await agentEndpoint(opts)
        const status = await agentJson<LocalAgentStatus>(endpoint, '/status', AbortSignal.timeout(10_000)).catch((err: Error) => {
          throw new CliError(`${bootstrap.length === 0 ? 'no --bootstrap given, and' : '--wait needs the local agent, but'} the local agent's API at ${endpoint.display} did not answer: ${err.message}`, err.name === 'AgentAccessError' ? EXIT.NOPERM : EXIT.UNAVAILABLE)
        })
        if (bootstrap.length === 0) {
          bootstrap = bootstrapFrom(status, e.isLoopbackHost(target.host))
          if (bootstrap.length === 0) throw new CliError(`no --bootstrap given, and the local agent (${status.node.id}) has no address the host could reach (${status.node.addrs.join(' ') || 'none'}): give --bootstrap MULTIADDR`, EXIT.USAGE)
          progress('bootstrap', `the local agent's addresses: ${bootstrap.join(' ')}`)
        }
      }

      const layout = e.layoutFor(opts.prefix)
      const dir = await mkdtemp(join(tmpdir(), 'grapevine-enroll-'))
      const session = new e.SshSession(target, { identity: opts.identity, knownHosts: opts.knownHosts, options: opts.sshOption, dir })
      const started = performance.now()
      let enrolled: Enrolled
      try {
        enrolled = await enroll(target, opts, session, layout, { binary, bytes, arch, trust, tags, bootstrap, key, lifetimeMs, swarmKey })
      } catch (err) {
        const code = err instanceof Error ? ENROLL_ERROR_EXIT[err.name] : undefined
        if (code !== undefined) throw new CliError((err as Error).message, code)
        throw err
      } finally {
        await session.close()
        await rm(dir, { recursive: true, force: true })
      }

      let waited: Awaited<ReturnType<typeof waitForNode>> | undefined
      if (opts.wait === true) {
        const t0 = performance.now()
        waited = await waitForNode(opts, enrolled.peerId, enrolled.since, timeoutMs)
        enrolled.timings.wait = Math.round(performance.now() - t0)
        if (!waited.timedOut) progress('wait', 'its beacon reached the mesh; it counts as admitted and reported on every policy', enrolled.timings.wait)
      }
      enrolled.timings.total = Math.round(performance.now() - started)
      const policies = Object.entries(waited?.seen.node?.policies ?? {}).map(([name, s]) => ({ name, version: s.version, outcome: s.outcome })).sort((a, b) => a.name.localeCompare(b.name))
      const host = e.targetText(target)
      if (opts.json === true) {
        printJson({
          host,
          peerId: enrolled.peerId,
          name: enrolled.name,
          identity: enrolled.created ? 'new' : 'kept',
          service: enrolled.service,
          pid: enrolled.pid,
          binary: { path: layout.bin, sha256: enrolled.sha256, bytes },
          config: layout.config,
          bootstrap,
          ...(enrolled.enroller !== undefined ? { enroller: enrolled.enroller } : {}),
          ...(waited !== undefined ? { admitted: waited.seen.node?.admitted ?? false, policies, timedOut: waited.timedOut } : {}),
          timings: enrolled.timings
        })
      } else {
        print(`enrolled ${enrolled.name ?? '(host name)'} ${enrolled.peerId} on ${host}`)
        for (const p of policies) print(`  ${p.name} v${p.version} ${p.outcome}`)
      }
      if (waited?.timedOut === true) {
        process.stderr.write(`wait: timed out after ${opts.timeout}: ${seenText(waited.seen)}\n`)
        done(EXIT_TIMEOUT)
        return
      }
      done(EXIT.OK)
    })
}
