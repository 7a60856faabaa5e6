import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import type { LatencyDist } from '../random.js'
import { NetnsUnavailableError, NetworkCommandError } from './errors.js'
import { MAX_HOSTS } from './constants.js'
import { delayerBinary, startDelayer } from './delayer.js'
import { bridgeCommands, hostCommands, hostOf, netemCommand, ownerOf, partitionCommands, resetCommands, runNames, shapingCommands, teardownScript, type Argv, type PartitionMode, type RunNames } from './plan.js'

const execFileP = promisify(execFile)

async function sh (argv: Argv): Promise<void> {
  try {
    await execFileP(argv[0] as string, argv.slice(1))
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    throw new NetworkCommandError(`${argv.join(' ')}: ${e.code === 'ENOENT' ? 'command not found' : (e.stderr ?? e.message).trim().split('\n')[0] ?? ''}`)
  }
}

async function script (text: string): Promise<void> {
  await execFileP('sh', ['-c', text])
}

/** How the run delays packets: netem where the kernel has it, else the NFQUEUE delayer; none on a perfect network. */
export type DelayMode = 'netem' | 'nfqueue' | 'none'

export interface NetworkOptions {
  hosts: number
  latency: LatencyDist
  loss: number
  seed: number
  /** Force a delay mode (GRAPEVINE_NETNS_DELAY does the same from the environment). */
  delay?: 'netem' | 'nfqueue'
  say?: (message: string) => void
}

/** One line, the same for the CLI and the runner: the netns engine needs root. */
export function requireRoot (): void {
  if (process.getuid?.() !== 0) throw new NetnsUnavailableError('the netns engine needs root (it makes network namespaces, veths, a bridge and iptables rules): run it as root, or use --engine live')
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Removes what runs whose coordinator is gone left behind (a reaper that could not finish, a machine that lost power mid-run); returns their prefixes. */
export async function sweepDeadRuns (): Promise<string[]> {
  const names: string[] = []
  const ns = await execFileP('ip', ['netns', 'list']).catch(() => ({ stdout: '' }))
  names.push(...ns.stdout.split('\n').map((l) => l.split(' ')[0] ?? ''))
  const links = await execFileP('ip', ['-o', 'link', 'show']).catch(() => ({ stdout: '' }))
  names.push(...links.stdout.split('\n').map((l) => (l.split(': ')[1] ?? '').split('@')[0] ?? ''))
  const rules = await execFileP('iptables', ['-S', 'FORWARD']).catch(() => ({ stdout: '' }))
  const owners = new Set(names.flatMap((n) => { const o = ownerOf(n); return o !== undefined ? [o] : [] }))
  for (const m of rules.stdout.matchAll(/--comment "?gv(\d+)"?/g)) owners.add(Number(m[1]))
  const dead = [...owners].filter((pid) => pid !== process.pid && !alive(pid))
  for (const pid of dead) await script(teardownScript(runNames(pid).prefix))
  return dead.map((pid) => runNames(pid).prefix)
}

/**
 * A detached shell (its own session, so a Ctrl-C to the terminal's process group does not
 * reach it) that reads one line from a pipe to this process. "done" means the run tore down
 * its network; end of file without it means the coordinator died (SIGKILL, a crash), and the
 * reaper tears down everything named with the run's prefix.
 */
function startReaper (prefix: string): ChildProcess {
  const reaper = spawn('sh', ['-c', `read -r line; [ "$line" = done ] && exit 0\n${teardownScript(prefix)}`], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] })
  reaper.unref()
  // The pipe must not keep the coordinator alive; it closes when the coordinator exits.
  ;(reaper.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  return reaper
}

/**
 * One run's simulated network: a bridge, a namespace per simulated host with eth0 on the
 * bridge, loss by iptables, delay by netem or an NFQUEUE delayer per host, partitions by
 * iptables. Everything is named `gv<pid>…` and torn down on close, or by the reaper if this
 * process dies first.
 */
export class NetnsNetwork {
  private readonly delayers: ChildProcess[] = []
  private closed = false
  delay: DelayMode = 'none'
  setupMs = 0

  private constructor (readonly names: RunNames, readonly hosts: number, private readonly reaper: ChildProcess) {}

  static async open (opts: NetworkOptions): Promise<NetnsNetwork> {
    requireRoot()
    if (opts.hosts > MAX_HOSTS) throw new NetworkCommandError(`${opts.hosts} hosts: the netns engine makes at most ${MAX_HOSTS} (one /24); put more agents on each with nodes.perHost`)
    for (const tool of [['ip', '-V'], ['iptables', '-V']]) {
      await execFileP(tool[0] as string, tool.slice(1)).catch(() => { throw new NetnsUnavailableError(`the netns engine needs ${tool[0] as string} (Debian: apt-get install iproute2 iptables)`) })
    }
    const t = Date.now()
    const swept = await sweepDeadRuns()
    if (swept.length > 0) opts.say?.(`setup: removed what ${swept.length} dead run${swept.length === 1 ? '' : 's'} left behind (${swept.join(', ')})`)
    const names = runNames(process.pid)
    const net = new NetnsNetwork(names, opts.hosts, startReaper(names.prefix))
    try {
      await net.build(opts)
    } catch (err) {
      await net.close()
      throw err
    }
    net.setupMs = Date.now() - t
    return net
  }

  private async build (opts: NetworkOptions): Promise<void> {
    const n = this.names
    const all = Array.from({ length: this.hosts }, (_, h) => h)
    for (const c of bridgeCommands(n)) await sh(c)
    await Promise.all(all.map(async (h) => { for (const c of hostCommands(n, h)) await sh(c) }))
    const latency = opts.latency
    const perfect = latency.dist === 'constant' && latency.ms <= 0
    const forced = opts.delay ?? (process.env.GRAPEVINE_NETNS_DELAY === 'netem' || process.env.GRAPEVINE_NETNS_DELAY === 'nfqueue' ? process.env.GRAPEVINE_NETNS_DELAY : undefined)
    this.delay = perfect ? 'none' : forced ?? await this.probeNetem(latency)
    if (this.delay === 'netem') {
      await Promise.all(all.map(async (h) => { await sh(netemCommand(n, h, latency) as Argv) }))
    } else if (this.delay === 'nfqueue') {
      const binary = await delayerBinary()
      await Promise.all(all.map(async (h) => { this.delayers.push(await startDelayer(binary, n.namespace(h), latency, opts.seed * 1000 + h)) }))
    }
    await Promise.all(all.map(async (h) => { for (const c of shapingCommands(n, h, { loss: opts.loss, delay: this.delay })) await sh(c) }))
  }

  /** netem on host 0's eth0, kept when it works; the kernel without sch_netem says "Specified qdisc kind is unknown". */
  private async probeNetem (latency: LatencyDist): Promise<'netem' | 'nfqueue'> {
    const c = netemCommand(this.names, 0, latency)
    if (c === undefined) return 'nfqueue'
    try {
      await sh(c)
    } catch {
      return 'nfqueue'
    }
    await sh(['tc', '-n', this.names.namespace(0), 'qdisc', 'del', 'dev', 'eth0', 'root'])
    return 'netem'
  }

  /** The command line that runs `argv` inside worker w's host namespace (one worker per host). */
  launch (worker: number, argv: string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', this.names.namespace(worker), ...argv]]
  }

  /** The address node i's agent listens on: its host's. */
  listen (node: number): string[] {
    return [`/ip4/${this.names.address(hostOf(node, this.hosts))}/tcp/0`]
  }

  /** Splits the hosts into groups (a host in no group reaches everyone); `reset` also kills the TCP connections across. */
  async partition (groups: number[][], mode: PartitionMode): Promise<void> {
    const all = Array.from({ length: this.hosts }, (_, h) => h)
    await Promise.all(all.map(async (h) => { for (const c of partitionCommands(this.names, h, groups, mode)) await sh(c) }))
    if (mode !== 'reset') return
    await Promise.all(all.map(async (h) => {
      const mine = groups.find((g) => g.includes(h))
      if (mine === undefined) return
      const others = groups.flat().filter((o) => !mine.includes(o))
      for (const c of resetCommands(this.names, h, others)) await sh(c)
    }))
  }

  async heal (): Promise<void> {
    await this.partition([], 'drop')
  }

  /** Tears everything down (idempotent); returns how long it took, ms. */
  async close (): Promise<number> {
    if (this.closed) return 0
    this.closed = true
    const t = Date.now()
    await Promise.all(this.delayers.map(async (d) => {
      if (d.exitCode !== null || d.signalCode !== null) return
      const exited = new Promise<void>((resolve) => { d.once('exit', () => { resolve() }) })
      d.kill('SIGTERM')
      const timer = setTimeout(() => { d.kill('SIGKILL') }, 2_000)
      await exited
      clearTimeout(timer)
    }))
    await script(teardownScript(this.names.prefix))
    this.reaper.stdin?.end('done\n')
    return Date.now() - t
  }
}
