// Pure: the names, addresses and commands of one run's simulated network. The shell
// (network.ts) runs them; tests read them.

import type { LatencyDist } from '../random.js'
import { NAME_PREFIX, PARTITION_CHAIN, QUEUE_NUM, SUBNET, SUBNET_PREFIX } from './constants.js'

export type Argv = string[]

export interface RunNames {
  prefix: string
  bridge: string
  namespace: (host: number) => string
  /** The host's veth end in the root namespace, on the bridge; its peer is eth0 in the namespace. */
  veth: (host: number) => string
  address: (host: number) => string
}

/** A run's names: `gv<pid>` and its bridge `gv<pid>br`, namespaces `gv<pid>-h<i>`, veths `gv<pid>h<i>`. */
export function runNames (pid: number): RunNames {
  const prefix = `${NAME_PREFIX}${pid}`
  return {
    prefix,
    bridge: `${prefix}br`,
    namespace: (h) => `${prefix}-h${h}`,
    veth: (h) => `${prefix}h${h}`,
    address: (h) => `${SUBNET_PREFIX}${h + 1}`
  }
}

/** The coordinator pid a name belongs to, if it is one of ours. */
export function ownerOf (name: string): number | undefined {
  const m = new RegExp(`^${NAME_PREFIX}(\\d+)(?:br|-h\\d+|h\\d+)$`).exec(name)
  return m !== null ? Number(m[1]) : undefined
}

/** Which host each agent runs on: round-robin, so node i is on host i mod H, as the live engine deals nodes to workers. */
export function hostOf (node: number, hosts: number): number {
  return node % hosts
}

/** Hosts for N agents at perHost each; more than MAX_HOSTS is refused when the network is made, not crowded onto fewer. */
export function hostCount (nodes: number, perHost: number): number {
  return Math.max(1, Math.ceil(nodes / perHost))
}

/** The bridge, and the root namespace's FORWARD rule that lets bridged traffic through where br_netfilter filters it. */
export function bridgeCommands (n: RunNames): Argv[] {
  return [
    ['ip', 'link', 'add', n.bridge, 'type', 'bridge'],
    ['ip', 'link', 'set', n.bridge, 'up'],
    ['iptables', '-I', 'FORWARD', '-i', n.bridge, '-o', n.bridge, '-j', 'ACCEPT', '-m', 'comment', '--comment', n.prefix]
  ]
}

/** One host: its namespace, a veth pair to the bridge (eth0 inside), its address, lo, and an empty partition chain. */
export function hostCommands (n: RunNames, h: number): Argv[] {
  const ns = n.namespace(h)
  return [
    ['ip', 'netns', 'add', ns],
    ['ip', 'link', 'add', n.veth(h), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns],
    ['ip', 'link', 'set', n.veth(h), 'master', n.bridge, 'up'],
    ['ip', '-n', ns, 'addr', 'add', `${n.address(h)}/24`, 'dev', 'eth0'],
    ['ip', '-n', ns, 'link', 'set', 'eth0', 'up'],
    ['ip', '-n', ns, 'link', 'set', 'lo', 'up'],
    ['ip', 'netns', 'exec', ns, 'iptables', '-N', PARTITION_CHAIN],
    ['ip', 'netns', 'exec', ns, 'iptables', '-A', 'OUTPUT', '-d', SUBNET, '-j', PARTITION_CHAIN]
  ]
}

/**
 * Loss, then delay, on what the host sends to the others: each packet crosses one sender's
 * OUTPUT chain, so loss is per packet and the delay one-way. Loss is an iptables `statistic`
 * rule before the NFQUEUE rule (a lost packet is not delayed first).
 */
export function shapingCommands (n: RunNames, h: number, shape: { loss: number, delay: 'nfqueue' | 'netem' | 'none' }): Argv[] {
  const ns = n.namespace(h)
  const out: Argv[] = []
  if (shape.loss > 0) out.push(['ip', 'netns', 'exec', ns, 'iptables', '-A', 'OUTPUT', '-d', SUBNET, '-m', 'statistic', '--mode', 'random', '--probability', String(shape.loss), '-j', 'DROP'])
  if (shape.delay === 'nfqueue') out.push(['ip', 'netns', 'exec', ns, 'iptables', '-A', 'OUTPUT', '-d', SUBNET, '-j', 'NFQUEUE', '--queue-num', String(QUEUE_NUM)])
  return out
}

/** The delayer's distribution arguments (nfq-delay DIST A B), in ms. */
export function delayerArgs (latency: LatencyDist): [string, string, string] {
  switch (latency.dist) {
    case 'constant': return ['constant', String(latency.ms), '0']
    case 'uniform': return ['uniform', String(latency.min), String(latency.max)]
    case 'normal': return ['normal', String(latency.mean), String(latency.stddev)]
    case 'lognormal': return ['lognormal', String(latency.median), String(latency.sigma)]
  }
}

/**
 * netem's delay for a distribution it has (constant, uniform as mean ± half-width, normal), or
 * undefined (lognormal: netem's tables have no lognormal; the NFQUEUE delayer does it).
 */
export function netemArgs (latency: LatencyDist): string[] | undefined {
  switch (latency.dist) {
    case 'constant': return ['delay', `${latency.ms}ms`]
    case 'uniform': return ['delay', `${(latency.min + latency.max) / 2}ms`, `${(latency.max - latency.min) / 2}ms`]
    case 'normal': return ['delay', `${latency.mean}ms`, `${latency.stddev}ms`, 'distribution', 'normal']
    case 'lognormal': return undefined
  }
}

export function netemCommand (n: RunNames, h: number, latency: LatencyDist): Argv | undefined {
  const args = netemArgs(latency)
  return args !== undefined ? ['tc', '-n', n.namespace(h), 'qdisc', 'add', 'dev', 'eth0', 'root', 'netem', ...args] : undefined
}

export type PartitionMode = 'drop' | 'reset'

/**
 * Host h's partition chain while hosts are split into groups: everything to a host of another
 * group is dropped (a silent cut: connections hang until TCP gives up), or, in reset mode,
 * TCP is refused with a reset (and the run kills the existing connections, see network.ts).
 * A host in no group (see hostPartition) is cut from no one. An empty list heals.
 */
export function partitionCommands (n: RunNames, h: number, groups: number[][], mode: PartitionMode): Argv[] {
  const ns = n.namespace(h)
  const out: Argv[] = [['ip', 'netns', 'exec', ns, 'iptables', '-F', PARTITION_CHAIN]]
  const mine = groups.find((g) => g.includes(h))
  if (mine === undefined) return out
  const hosts = new Set(groups.flat())
  for (const other of hosts) {
    if (mine.includes(other)) continue
    const target = mode === 'reset' ? ['-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset'] : ['-j', 'DROP']
    out.push(['ip', 'netns', 'exec', ns, 'iptables', '-A', PARTITION_CHAIN, '-d', n.address(other), ...target])
    // UDP and the rest: dropped in either mode (the agents speak TCP only).
    if (mode === 'reset') out.push(['ip', 'netns', 'exec', ns, 'iptables', '-A', PARTITION_CHAIN, '-d', n.address(other), '-j', 'DROP'])
  }
  return out
}

/** Kills the host's TCP sockets to these addresses (ss -K: the kernel aborts them, both ends see a reset or an abort). */
export function resetCommands (n: RunNames, h: number, others: number[]): Argv[] {
  return others.map((o) => ['ip', 'netns', 'exec', n.namespace(h), 'ss', '-K', 'dst', n.address(o)])
}

/**
 * A POSIX shell script that removes everything named with `prefix`, whatever state a run
 * left it in: kills every process in its namespaces (agents' workers, delayers), deletes the
 * namespaces (their veth ends and iptables rules go with them), any veth or bridge left in the
 * root namespace, and the root's FORWARD rule. Idempotent; used by the run's own teardown,
 * by the reaper when the coordinator dies, and by the sweep of dead runs.
 */
export function teardownScript (prefix: string): string {
  if (!/^[a-z]+\d+$/.test(prefix)) throw new Error(`not a run prefix: ${prefix}`)
  return [
    `for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^${prefix}-h[0-9]+$'); do`,
    '  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done',
    '  ip netns del "$ns" 2>/dev/null',
    'done',
    `for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^${prefix}(br|h[0-9]+)$'); do ip link del "$l" 2>/dev/null; done`,
    `iptables -S FORWARD 2>/dev/null | grep -E -- '--comment "?${prefix}"?( |$)' | sed 's/^-A //' | while read -r rule; do eval "iptables -D $rule" 2>/dev/null; done`,
    'true'
  ].join('\n')
}

/**
 * A partition of nodes as a partition of hosts: a host whose agents are all in one group goes
 * to that group; a host with agents on both sides (`split`) stays out of the iptables rules, and
 * its agents are kept apart by their block lists instead, as the live engine does.
 */
export function hostPartition (groups: number[][], hosts: number): { groups: number[][], split: number[] } {
  const groupOf = new Map<number, Set<number>>()
  groups.forEach((g, gi) => { for (const node of g) groupOf.set(hostOf(node, hosts), (groupOf.get(hostOf(node, hosts)) ?? new Set()).add(gi)) })
  const split = [...groupOf].filter(([, gs]) => gs.size > 1).map(([h]) => h).sort((a, b) => a - b)
  const out = groups.map((_, gi) => [...groupOf].filter(([, gs]) => gs.size === 1 && gs.has(gi)).map(([h]) => h).sort((a, b) => a - b))
  return { groups: out, split }
}
