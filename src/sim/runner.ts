import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg } from 'node:os'
import { join } from 'node:path'
import { generateSigningKey, signPolicy, validateEnvelope, type SigningKey } from '../envelope/index.js'
import { TRUST_POLICY_NAME, validatePolicyObject, type Policy } from '../policy/index.js'
import { LiveFleet, type FleetNode } from './fleet.js'
import { evaluateChecks } from './checks.js'
import { analyse, describeNetwork } from './summary.js'
import { onlineTargets } from './analysis.js'
import { prng, seedOf } from './random.js'
import { MAX_NODES, selectorText, type Scenario, type ScenarioEvent } from './scenario.js'
import { firewalled, partitionGroups, planTopology, selectNodes, clusterOf, type SelectContext } from './topology.js'
import { renderReport } from './report.js'
import { SimulationError } from './errors.js'
import type { CheckResult, RecordPublish, RunRecord, SimResult, Traffic } from './result.js'
import { LiveRollout } from './live-rollout.js'
import { NetnsNetwork, hostCount, hostOf, hostPartition, type PartitionMode } from './netns/index.js'
import { DEFAULT_SEED, DEFAULT_WORKERS, READY_HEARTBEATS, RUN_GRACE_MS, SETTLE_MAX_MS, SETTLE_MIN_MS, SETTLE_STABLE_MS } from './constants.js'

export interface RunOptions {
  /** Output directory: results.json, record.json, report.html, and each node's state and sandbox root. */
  out: string
  seed?: number
  /** Override the scenario's node count (CI runs the scenarios small). */
  nodes?: number
  workers?: number
  /** Multiplies every check deadline; 1 means as written. */
  deadlineScale?: number
  /**
   * Before the clock starts, wait for the agents' first peer-maintenance burst to pass
   * ('auto', the default), or at most this many ms (0: start as soon as gossip meshes form).
   */
  settleMs?: number | 'auto'
  onProgress?: (p: RunProgress) => void
  signal?: AbortSignal
}

export interface RunProgress {
  phase: 'setup' | 'running' | 'done'
  /** A line worth printing (an event ran, a publish reached a milestone, a check was decided). */
  message?: string
  /** ms since time zero (negative during setup). */
  t: number
  up: number
  total: number
  publishes: Array<{ id: string, label: string, applied: number, targeted: number }>
  checks: { pass: number, fail: number, pending: number }
}

export interface RunOutput {
  result: SimResult
  record: RunRecord
  files: { results: string, record: string, report: string }
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(2)}s`

/**
 * Runs a scenario with the live engine: real agents in worker processes on 127.0.0.1 TCP,
 * latency and loss injected per connection, the timeline played in real time, checks decided
 * as events arrive. Writes results.json, record.json and report.html to `opts.out`.
 * With `engine: netns` (root), each simulated host is a network namespace on a bridge with its
 * own worker process, and the kernel delays and drops packets (src/sim/netns/).
 */
export async function runScenario (scenario: Scenario, opts: RunOptions): Promise<RunOutput> {
  if (scenario.engine === 'model') throw new SimulationError(`${scenario.file} is written for the model engine; runScenario runs the live and netns engines (engine: live or netns)`)
  const count = opts.nodes ?? scenario.nodes.count
  if (count > MAX_NODES) throw new SimulationError(`${scenario.file}: ${count} live agents do not fit one machine (at most ${MAX_NODES}, docs/capacity.md); run it with the model engine`)
  const run = new LiveRun(scenario, opts)
  return await run.execute()
}

class LiveRun {
  private readonly seed: number
  private readonly count: number
  private readonly scale: number
  private readonly random: () => number
  private readonly root: SigningKey = generateSigningKey()
  private readonly admins = new Map<string, SigningKey>()
  private fleet!: LiveFleet
  private bridges: Array<[number, number]> = []
  private partition: number[][] | undefined
  private partitionMode: PartitionMode = 'drop'
  /** netns engine: the simulated network, and the partition its iptables rules hold now. */
  private net: NetnsNetwork | undefined
  private hostGroups: ReturnType<typeof hostPartition> = { groups: [], split: [] }
  private readonly setupStart = Date.now()
  private readonly loadAtStart = loadavg()[0] as number
  private running = false
  private readonly signed = new Map<string, number>()
  /** Every running node's traffic just before the current time slot's publishes. */
  private snapshot: Record<number, Traffic> | undefined
  private readonly milestones = new Map<string, number>()
  private lastChecks: CheckResult[] = []
  /** Staged publishes by publish event id. */
  private readonly rollouts = new Map<string, LiveRollout>()

  constructor (private readonly scenario: Scenario, private readonly opts: RunOptions) {
    this.seed = opts.seed ?? scenario.seed ?? DEFAULT_SEED
    this.count = opts.nodes ?? scenario.nodes.count
    this.scale = opts.deadlineScale ?? 1
    this.random = prng(seedOf(this.seed, 'scenario', scenario.name))
    for (const name of Object.keys(scenario.admins)) this.admins.set(name, generateSigningKey())
  }

  private progress (message?: string): void {
    if (this.opts.onProgress === undefined) return
    const now = Date.now()
    if (this.fleet === undefined) {
      // The netns engine's network comes up before the fleet exists.
      this.opts.onProgress({ phase: 'setup', ...(message !== undefined ? { message } : {}), t: now - this.t0, up: 0, total: 0, publishes: [], checks: { pass: 0, fail: 0, pending: 0 } })
      return
    }
    const record = this.toRecord(now)
    this.opts.onProgress({
      phase: this.running ? 'running' : 'setup',
      ...(message !== undefined ? { message } : {}),
      t: now - this.t0,
      up: this.nodes.filter((n) => n.up).length,
      total: this.nodes.length,
      publishes: record.publishes.filter((p) => p.id !== 'trust').map((p) => {
        const { latencies, targeted } = onlineTargets(record, p)
        return { id: p.id, label: `${p.name} v${p.version}`, applied: latencies.length, targeted }
      }),
      checks: {
        pass: this.lastChecks.filter((c) => c.status === 'pass').length,
        fail: this.lastChecks.filter((c) => c.status === 'fail').length,
        pending: this.lastChecks.filter((c) => c.status === 'pending').length
      }
    })
  }

  private say (message: string): void {
    const t = Date.now() - this.t0
    this.progress(this.running ? `t=${secs(t)} ${message}` : message)
  }

  private get nodes (): FleetNode[] {
    return this.fleet?.nodes ?? []
  }

  private get t0 (): number {
    return this.fleet?.t0 ?? this.setupStart
  }

  private toRecord (now: number): RunRecord {
    const record = this.fleet.toRecord(now)
    if (this.rollouts.size > 0) record.rollouts = [...this.rollouts.values()].map((r) => r.toRecord(this.t0))
    return record
  }

  // ---- nodes ---------------------------------------------------------------

  private selectContext (): SelectContext {
    return {
      total: this.nodes.length,
      isUp: (i) => this.nodes[i]?.up === true,
      tags: (i) => this.nodes[i]?.spec.tags ?? {},
      cluster: (i) => this.nodes[i]?.cluster ?? 0,
      random: this.random
    }
  }

  private newNode (tags: Record<string, string>, cluster: number, neighbours: number[]): FleetNode {
    const skeleton = this.scenario.nodes.skeleton.flatMap((entry) => {
      const path = typeof entry === 'string' ? entry : Object.entries(entry.tags).every(([k, v]) => tags[k] === v) ? entry.path : undefined
      return path !== undefined ? [path] : []
    })
    return this.fleet.add(tags, { cluster, neighbours, skeleton })
  }

  /** Peers a node refuses: the other side of a partition, and other clusters but its bridges. */
  private blockedFor (i: number): string[] {
    const out = new Set<number>()
    if (this.scenario.topology.kind === 'clusters') for (const j of firewalled(i, this.nodes.map((n) => n.cluster), this.bridges)) out.add(j)
    if (this.partition !== undefined) {
      const mine = this.partition.find((g) => g.includes(i))
      for (const g of this.partition) if (g !== mine) for (const j of g) if (!this.cutByNetwork(i, j)) out.add(j)
    }
    return [...out].flatMap((j) => this.nodes[j]?.rec.peerId !== undefined ? [this.nodes[j]?.rec.peerId as string] : [])
  }

  private async startNode (n: FleetNode, bootstrap: number[]): Promise<void> {
    await this.fleet.start(n, bootstrap, this.blockedFor(n.spec.index))
  }

  /** netns engine: the iptables rules already keep i and j apart (different hosts, each wholly on one side). */
  private cutByNetwork (i: number, j: number): boolean {
    if (this.net === undefined) return false
    const [hi, hj] = [hostOf(i, this.net.hosts), hostOf(j, this.net.hosts)]
    return hi !== hj && !this.hostGroups.split.includes(hi) && !this.hostGroups.split.includes(hj)
  }

  /** Re-sends block lists (after a partition changes, or a node appears behind one); on the netns engine, the iptables rules first. */
  private async refreshBlocks (): Promise<void> {
    if (this.net !== undefined) {
      const next = this.partition !== undefined ? hostPartition(this.partition, this.net.hosts) : { groups: [], split: [] }
      if (JSON.stringify(next) !== JSON.stringify(this.hostGroups)) {
        this.hostGroups = next
        await this.net.partition(next.groups.filter((g) => g.length > 0), this.partitionMode)
        if (next.split.length > 0) this.say(`partition: host${next.split.length === 1 ? '' : 's'} ${next.split.join(', ')} ha${next.split.length === 1 ? 's' : 've'} agents on both sides; their agents are kept apart by block lists`)
      }
    }
    await Promise.all(this.fleet.running.map(async (n) => { await this.fleet.cluster.block(n.spec.index, this.blockedFor(n.spec.index)) }))
  }

  // ---- setup ---------------------------------------------------------------

  private async setup (): Promise<void> {
    const s = this.scenario
    const most = this.count + s.timeline.reduce((n, e) => n + (e.do === 'add' ? e.count : 0), 0)
    const net = s.network
    const perfect = net.loss <= 0 && net.latency.dist === 'constant' && net.latency.ms <= 0
    const perHost = s.nodes.perHost ?? 1
    if (s.engine === 'netns') {
      // One worker process per simulated host: its agents share that host's address and CPU share.
      const hosts = hostCount(this.count, perHost)
      this.say(`setup: network: ${hosts} host namespaces on a bridge${perfect ? '' : `, ${describeNetwork(s.network)} by the kernel`}`)
      this.net = await NetnsNetwork.open({ hosts, latency: net.latency, loss: net.loss, seed: this.seed, say: (m) => { this.say(m) } })
      this.say(`setup: network up in ${secs(this.net.setupMs)} (${this.net.names.prefix}*; delay: ${this.net.delay})`)
    }
    const network = this.net
    const workers = network !== undefined ? network.hosts : Math.max(1, Math.min(this.opts.workers ?? Math.min(DEFAULT_WORKERS, availableParallelism()), this.count))
    this.fleet = await LiveFleet.open({
      out: this.opts.out,
      seed: this.seed,
      trust: [this.root.id],
      agent: s.agent,
      // On the netns engine the kernel shapes the link; the in-process shaper stays off.
      ...(perfect || network !== undefined ? {} : { link: { latency: net.latency, loss: net.loss, rto: net.rto } }),
      workers,
      agentsPerWorker: Math.ceil(most / workers),
      ...(network !== undefined ? { listen: (i: number) => network.listen(i), launch: (w: number, argv: string[]) => network.launch(w, argv) } : {})
    })
    const plan = planTopology(s.topology, this.count, this.random, network !== undefined && perHost > 1 ? (i) => hostOf(i, network.hosts) : undefined)
    this.bridges = plan.bridges
    const tagSets = s.nodes.tags
    for (let i = 0; i < this.count; i++) {
      const neighbours = plan.edges.filter(([a]) => a === i).map(([, b]) => b)
      this.newNode(tagSets.length > 0 ? tagSets[i % tagSets.length] as Record<string, string> : {}, plan.cluster[i] ?? 0, neighbours)
    }
    const t = Date.now()
    this.say(network !== undefined
      ? `setup: starting ${this.count} agents on ${workers} hosts (one worker process each, TCP on ${network.names.address(0)}…)`
      : `setup: starting ${this.count} agents in ${workers} worker process${workers === 1 ? '' : 'es'} (TCP on 127.0.0.1${s.network.loss > 0 || s.network.latency.dist !== 'constant' || s.network.latency.ms > 0 ? ', latency and loss injected' : ''})`)
    let started = 0
    await Promise.all(this.nodes.map(async (n) => {
      await this.startNode(n, [])
      started++
      if (started % 50 === 0) this.progress()
    }))
    this.say(`setup: ${this.count} agents up in ${secs(Date.now() - t)}`)
    if (s.topology.kind === 'clusters') await this.refreshBlocks()
    await Promise.all(this.nodes.map(async (n) => {
      if (n.neighbours.length === 0) return
      const failed = await this.fleet.cluster.connect(n.spec.index, n.neighbours.map((j) => this.nodes[j]?.addrs[0] as string))
      if (failed.length > 0) this.fleet.warnings.push(`${n.spec.name}: ${failed.length} of its ${n.neighbours.length} topology connections failed (${failed[0] as string})`)
    }))
    const notReady = await this.fleet.cluster.ready(this.nodes.map((n) => n.spec.index), READY_HEARTBEATS, 30_000)
    if (notReady.length > 0) this.say(`setup: warning: ${notReady.length} node(s) have no gossip mesh peer yet (${notReady.slice(0, 5).map((i) => `node-${i}`).join(', ')})`)
    this.say(`setup: topology ${describeTopology(s)} wired, gossip mesh formed`)
    if (this.admins.size > 0) await this.publishTrust()
    await this.settle()
  }

  /** Waits until no node's connection count has changed for a while, after the agents' first peer-maintenance round. */
  private async settle (): Promise<void> {
    const limit = this.opts.settleMs === undefined || this.opts.settleMs === 'auto' ? SETTLE_MAX_MS : this.opts.settleMs
    if (limit <= 0) return
    const started = Math.max(...this.nodes.map((n) => n.rec.up[0]?.[0] ?? 0))
    const deadline = Date.now() + limit
    const indexes = this.nodes.map((n) => n.spec.index)
    let last = ''
    let since = Date.now()
    let counts: Record<number, number> = {}
    this.say('setup: waiting for the agents\' first peer-maintenance round (connections grow toward 8 each) to settle')
    while (Date.now() < deadline) {
      counts = await this.fleet.cluster.peers(indexes)
      const key = indexes.map((i) => counts[i] ?? 0).join(',')
      if (key !== last) { last = key; since = Date.now() }
      if (Date.now() - started >= SETTLE_MIN_MS && Date.now() - since >= SETTLE_STABLE_MS) break
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    const values = Object.values(counts)
    this.say(`setup: settled at ${(values.reduce((a, b) => a + b, 0) / Math.max(1, values.length)).toFixed(1)} connections per node (min ${Math.min(...values)}, max ${Math.max(...values)})`)
  }

  /** The root signs a trust policy naming the scenario's admins; every node must hold it before the clock starts. */
  private async publishTrust (): Promise<void> {
    const policy = validatePolicyObject({
      kind: 'trust',
      name: TRUST_POLICY_NAME,
      admins: [...this.admins].map(([name, key]) => ({ name, key: key.id, scopes: this.scenario.admins[name]?.scopes ?? [] }))
    })
    await this.publish({ id: 'trust', policy, key: this.root, from: 0, version: 1 })
    const deadline = Date.now() + 30_000
    const holders = (): number => new Set(this.fleet.toRecord().deliveries.filter((d) => d.name === TRUST_POLICY_NAME).map((d) => d.node)).size
    while (holders() < this.nodes.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    this.say(`setup: trust policy (root key + ${this.admins.size} admin key${this.admins.size === 1 ? '' : 's'}) held by ${holders()}/${this.nodes.length} nodes`)
  }

  // ---- the timeline ----------------------------------------------------------

  private async publish (p: { id: string, policy: Policy, key: SigningKey, from: number, version?: number, force?: string }): Promise<RecordPublish> {
    const version = p.version ?? (this.signed.get(p.policy.name) ?? 0) + 1
    this.signed.set(p.policy.name, Math.max(version, this.signed.get(p.policy.name) ?? 0))
    // The new version supersedes what its publishing node holds, as `grapevine publish` names the head it was told.
    const head = await this.fleet.cluster.head(p.from, p.policy.name)
    const bytes = signPolicy(p.policy, { version, key: p.key, ...(head !== undefined ? { prev: head.id } : {}), ...(p.force !== undefined ? { force: p.force } : {}) })
    const env = validateEnvelope(bytes, { authorize: () => {} })
    // Taken ahead of the publish's time when the timeline could (see timeline()), so it costs no delay.
    const before = this.snapshot ?? await this.fleet.traffic()
    const res = await this.fleet.cluster.publish(p.from, bytes)
    const record = this.fleet.recordPublish({
      id: p.id,
      name: env.name,
      version,
      hash: env.hash,
      from: p.from,
      signer: p.key === this.root ? 'root' : [...this.admins].find(([, k]) => k === p.key)?.[0] ?? p.key.id,
      at: res.at,
      kind: p.policy.kind,
      bytes: bytes.byteLength,
      ...(p.policy.kind === 'policy' && p.policy.target !== undefined ? { target: p.policy.target } : {})
    }, before)
    if (res.outcome !== 'accepted') this.say(`${p.id}: node-${p.from} did not take its own envelope (${res.outcome}): a newer or winning version is already there`)
    return record
  }

  private async runEvent (e: ScenarioEvent & { id: string }): Promise<void> {
    const ctx = this.selectContext()
    const names = (xs: number[]): string => xs.length === 0 ? 'no nodes' : xs.length > 6 ? `${xs.length} nodes (${xs.slice(0, 4).map((i) => `node-${i}`).join(', ')}, …)` : xs.map((i) => `node-${i}`).join(', ')
    const mark = (detail: string): void => {
      this.fleet.mark(e.id, e.do, detail)
      this.say(`${e.do} ${detail}`)
    }
    switch (e.do) {
      case 'publish': {
        const candidates = selectNodes([e.from], ctx).filter((i) => this.nodes[i]?.up === true)
        const from = candidates[0]
        const base = this.scenario.loaded[e.policy] as Policy
        const policy = e.vars !== undefined && base.kind === 'policy' ? validatePolicyObject({ ...base, vars: { ...base.vars, ...e.vars } }) : base
        if (from === undefined) {
          this.fleet.errors.push(`${e.id}: no running node matches ${selectorText(e.from)}`)
          mark(`${e.id}: skipped, no running node matches ${selectorText(e.from)}`)
          return
        }
        const key = e.admin === 'root' ? this.root : this.admins.get(e.admin) as SigningKey
        const checked = e.unhealthyOn !== undefined ? await this.unhealthyOn(e.id, policy, selectNodes(e.unhealthyOn, ctx)) : policy
        if (e.rollout !== undefined) {
          if (checked.kind !== 'policy') throw new SimulationError(`${e.id}: only a kind: policy publish can be staged`)
          await this.publishStaged(e.id, checked, e.rollout, from, key, e.admin)
          return
        }
        const p = await this.publish({ id: e.id, policy: checked, key, from, version: e.version, force: e.force })
        // Marked when the envelope is out, so nothing can look converged on the version before it.
        this.fleet.mark(e.id, e.do, `${policy.name} v${p.version} from node-${from} (signed by ${e.admin})`, p.at)
        this.say(`publish ${policy.name} v${p.version} from node-${from} (signed by ${e.admin})`)
        return
      }
      case 'resume': case 'pause': case 'abort': {
        const rollout = this.rollouts.get(e.publish)
        const at = selectNodes([e.from], ctx).filter((i) => this.nodes[i]?.up === true)[0]
        if (rollout === undefined || at === undefined) {
          this.fleet.errors.push(`${e.id}: ${rollout === undefined ? `publish "${e.publish}" started no rollout` : `no running node matches ${selectorText(e.from)}`}`)
          return
        }
        const key = e.admin === 'root' ? this.root : this.admins.get(e.admin) as SigningKey
        const now = Date.now()
        const action = e.do === 'abort' ? { type: e.do, at: now, reason: `aborted by ${e.admin} (${e.id})`, rollback: e.rollback } : e.do === 'pause' ? { type: e.do, at: now, reason: `paused by ${e.admin} (${e.id})` } : { type: e.do, at: now }
        await rollout.act(action, at, key, e.admin)
        mark(`${e.publish}'s rollout from node-${at} (signed by ${e.admin})`)
        return
      }
      case 'partition': {
        this.partition = partitionGroups(e.groups, ctx)
        this.partitionMode = e.mode
        mark(`into ${this.partition.map((g) => `[${names(g)}]`).join(' | ')}`)
        await this.refreshBlocks()
        return
      }
      case 'heal': {
        this.partition = undefined
        mark('every partition lifted; agents reconnect on their own')
        await this.refreshBlocks()
        return
      }
      case 'kill': {
        const picked = selectNodes(e.nodes, ctx).filter((i) => this.nodes[i]?.up === true)
        mark(names(picked))
        await Promise.all(picked.map(async (i) => { await this.fleet.stop(this.nodes[i] as FleetNode) }))
        return
      }
      case 'restart': {
        const picked = selectNodes(e.nodes, ctx).filter((i) => this.nodes[i]?.up === false)
        await Promise.all(picked.map(async (i) => {
          const n = this.nodes[i] as FleetNode
          await this.startNode(n, n.neighbours)
        }))
        // Marked once they run, so "one version after" measures their catch-up, not their start.
        mark(`${names(picked)} (same state directories)`)
        return
      }
      case 'add': {
        const k = e.peers ?? (this.scenario.topology.kind === 'ring' ? 1 : this.scenario.topology.peers)
        const tagSets = this.scenario.nodes.tags
        const added: FleetNode[] = []
        for (let j = 0; j < e.count; j++) {
          const index = this.nodes.length
          const cluster = this.scenario.topology.kind === 'clusters' ? clusterOf(index % this.count, this.count, this.scenario.topology.clusters) : 0
          const pool = this.nodes.filter((n) => n.up && n.cluster === cluster).map((n) => n.spec.index)
          const neighbours = this.scenario.topology.kind === 'ring' ? pool.slice(-1) : pool.sort(() => this.random() - 0.5).slice(0, k)
          added.push(this.newNode(e.tags ?? (tagSets.length > 0 ? tagSets[index % tagSets.length] as Record<string, string> : {}), cluster, neighbours))
        }
        await Promise.all(added.map(async (n) => { await this.startNode(n, n.neighbours) }))
        mark(`${names(added.map((n) => n.spec.index))}, each joining through --bootstrap of ${k} running node${k === 1 ? '' : 's'}`)
        if (this.partition !== undefined || this.scenario.topology.kind === 'clusters') {
          // New nodes join the partition group of the node they bootstrap from.
          if (this.partition !== undefined) {
            for (const n of added) (this.partition.find((g) => g.includes(n.neighbours[0] ?? -1)) ?? this.partition[0] as number[]).push(n.spec.index)
          }
          await this.refreshBlocks()
        }
      }
    }
  }

  /**
   * `unhealthyOn`: the version gets a health check that fails where a marker file is in the
   * node's root, and the harness puts one on the chosen nodes: a real check, run by the agent
   * after its apply, failing the way a service that does not come up would.
   */
  private async unhealthyOn (id: string, policy: Policy, nodes: number[]): Promise<Policy> {
    if (policy.kind !== 'policy') throw new SimulationError(`${id}: unhealthyOn needs a kind: policy publish (one with health checks)`)
    const marker = `.sim-unhealthy-${id}`
    await Promise.all(nodes.map(async (i) => {
      const n = this.nodes[i]
      if (n !== undefined) await writeFile(join(n.spec.root, marker), `${id}: this node's health check fails\n`)
    }))
    const check = { id: `sim-${id}`, type: 'exec', command: `test ! -e "$GRAPEVINE_ROOT/${marker}"` }
    return validatePolicyObject({ ...policy, checks: [...(policy.checks ?? []), check] })
  }

  /** A staged publish: the production client code starts it and evaluates it through node `from`'s agent. */
  private async publishStaged (id: string, policy: Policy & { kind: 'policy' }, spec: NonNullable<Extract<ScenarioEvent, { do: 'publish' }>['rollout']>, from: number, key: SigningKey, admin: string): Promise<void> {
    const before = this.snapshot ?? await this.fleet.traffic()
    const rollout = new LiveRollout({
      publish: id,
      spec,
      policy,
      cluster: this.fleet.cluster,
      delivered: (env, at, node, signer) => {
        if (env.name !== policy.name) return
        this.signed.set(env.name, Math.max(env.version, this.signed.get(env.name) ?? 0))
        this.fleet.recordPublish({
          id, name: env.name, version: env.version, hash: env.hash, from: node, signer, at, kind: 'policy', bytes: env.bytes.byteLength,
          ...(policy.target !== undefined ? { target: policy.target } : {})
        }, before)
        this.fleet.mark(id, 'publish', `${env.name} v${env.version} staged from node-${node} (signed by ${signer})`, at)
      },
      say: (m) => { this.say(m) },
      // Stale after two beacon intervals, as publish --wait judges a node (the agents' own interval when the scenario sets one).
      ...(this.scenario.agent.beaconInterval !== undefined && this.scenario.agent.beaconInterval > 0 ? { staleAfterMs: 2 * this.scenario.agent.beaconInterval } : {})
    })
    this.rollouts.set(id, rollout)
    await rollout.start(from, key, admin)
  }

  // ---- the run -------------------------------------------------------------

  private deadline (): number {
    if (this.scenario.duration !== undefined) return this.t0 + this.scenario.duration
    const last = this.scenario.timeline.reduce((m, e) => Math.max(m, e.at), 0)
    const within = this.scenario.expect.reduce((m, c) => Math.max(m, 'within' in c ? c.within : 0), 0)
    return this.t0 + last + within * this.scale + RUN_GRACE_MS
  }

  private milestone (record: RunRecord): void {
    for (const p of record.publishes) {
      if (p.id === 'trust') continue
      const { latencies, targeted } = onlineTargets(record, p)
      if (targeted === 0) continue
      const reached = latencies.length / targeted
      const prev = this.milestones.get(p.id) ?? 0
      for (const m of [0.5, 0.9, 1]) {
        if (reached >= m && prev < m) {
          const sorted = latencies.slice().sort((a, b) => a - b)
          const k = Math.max(1, Math.ceil(m * targeted - 1e-9))
          this.say(`${p.id} (${p.name} v${p.version}): ${Math.round(m * 100)}% of ${targeted} targeted nodes applied, ${secs(sorted[k - 1] as number)} after publishing`)
        }
      }
      this.milestones.set(p.id, Math.max(prev, reached))
    }
  }

  async execute (): Promise<RunOutput> {
    await mkdir(this.opts.out, { recursive: true })
    const startedAt = new Date().toISOString()
    try {
      await this.setup()
      const setupMs = Date.now() - this.setupStart
      this.running = true
      this.fleet.t0 = Date.now()
      this.say(`timeline starts: ${this.scenario.timeline.length} event${this.scenario.timeline.length === 1 ? '' : 's'}, ${this.scenario.expect.length} check${this.scenario.expect.length === 1 ? '' : 's'}`)
      const timeline = this.timeline()
      let timelineDone = false
      void timeline.finally(() => { timelineDone = true })
      const cap = this.deadline()
      const ids = this.scenario.timeline.map((e) => ({ id: e.id, do: e.do }))
      const decided = new Set<number>()
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 200))
        const now = Date.now()
        const record = this.toRecord(now)
        this.milestone(record)
        this.lastChecks = evaluateChecks(record, this.scenario.expect, { now: now - this.t0, scale: this.scale, final: false, timeline: ids })
        this.lastChecks.forEach((c, i) => {
          if (c.status !== 'pending' && !decided.has(i)) {
            decided.add(i)
            this.say(`check ${c.status === 'pass' ? 'passed' : 'FAILED'}: ${c.check}: ${c.detail}`)
          }
        })
        await this.fleet.closeWindows(record, false)
        this.progress()
        // no-failures and blast-radius are decided on the whole run: the run does not wait for them.
        const waiting = this.lastChecks.some((c) => c.status === 'pending' && c.check !== 'no-failures' && c.check !== 'blast-radius')
        const evaluating = [...this.rollouts.values()].some((r) => r.active())
        if (timelineDone && !this.fleet.windowsOpen && !waiting && !evaluating && this.fleet.settled(record, now)) break
        if (now > cap) {
          this.say(`stopping: the run reached its time limit (${secs(cap - this.t0)})`)
          break
        }
        if (this.opts.signal?.aborted === true) {
          this.fleet.errors.push('interrupted')
          break
        }
      }
      await timeline.catch((err: Error) => { this.fleet.errors.push(`timeline: ${err.message}`) })
      const output = await this.finish(startedAt, setupMs)
      await this.closeAll()
      const network = output.result.engine.network
      if (network !== undefined && this.teardownMs !== undefined) {
        // The tear-down time is known only now: results.json gets it after the fact.
        network.teardownMs = this.teardownMs
        await writeFile(output.files.results, JSON.stringify(output.result, null, 2) + '\n')
      }
      return output
    } finally {
      await this.closeAll()
    }
  }

  private teardownMs: number | undefined

  private async closeAll (): Promise<void> {
    for (const r of this.rollouts.values()) r.close()
    try {
      await this.fleet?.close()
    } finally {
      if (this.net !== undefined && this.teardownMs === undefined) {
        const t = Date.now()
        await this.net.close()
        this.teardownMs = Date.now() - t
        this.say(`teardown: network removed in ${secs(this.teardownMs)}`)
      }
    }
  }

  private async timeline (): Promise<void> {
    let pending: Array<Promise<void>> = []
    let slot = -1
    for (const e of this.scenario.timeline) {
      if (e.at !== slot) {
        // Events at one time run together (two admins at once); a later event waits for earlier ones.
        await Promise.all(pending)
        pending = []
        slot = e.at
        this.snapshot = undefined
        const at = e.at
        if (this.scenario.timeline.some((x) => x.at === at && x.do === 'publish')) {
          this.snapshot = await this.fleet.traffic().catch(() => undefined)
        }
        const wait = this.t0 + e.at - Date.now()
        // Ctrl-C ends the wait for the next event too, so an interrupted run ends at once.
        if (wait > 0) await abortableSleep(wait, this.opts.signal)
      }
      if (this.opts.signal?.aborted === true) break
      pending.push(this.runEvent(e).catch((err: Error) => { this.fleet.errors.push(`${e.id}: ${err.message}`) }))
    }
    await Promise.all(pending)
  }

  private async finish (startedAt: string, setupMs: number): Promise<RunOutput> {
    const now = Date.now()
    await this.fleet.closeWindows(this.toRecord(now), true)
    const up = this.fleet.running
    const memory = await this.fleet.finish()
    const rss = memory.reduce((s, m) => s + m.rss, 0)
    const agents = memory.reduce((s, m) => s + m.agents, 0)
    const usage: SimResult['memory'] = { rssBytes: rss, ...(agents > 0 ? { perAgentBytes: Math.round(rss / agents) } : {}) }
    const record = this.toRecord(now)
    const checks = evaluateChecks(record, this.scenario.expect, { now: record.end, scale: this.scale, final: true, timeline: this.scenario.timeline.map((e) => ({ id: e.id, do: e.do })) })
    const result = analyse(record, {
      scenario: this.scenario,
      seed: this.seed,
      nodes: this.count,
      startedAt,
      setupMs,
      checks,
      engine: {
        kind: this.net !== undefined ? 'netns' : 'live',
        workers: this.fleet.cluster.workers,
        transport: 'tcp',
        node: process.version,
        cpus: availableParallelism(),
        load: [this.loadAtStart, loadavg()[0] as number],
        ...(this.net !== undefined ? { network: { hosts: this.net.hosts, perHost: this.scenario.nodes.perHost ?? 1, delay: this.net.delay, setupMs: this.net.setupMs } } : {})
      },
      memory: usage,
      interrupted: this.opts.signal?.aborted === true
    })
    this.running = false
    const files = { results: join(this.opts.out, 'results.json'), record: join(this.opts.out, 'record.json'), report: join(this.opts.out, 'report.html') }
    await writeFile(files.results, JSON.stringify(result, null, 2) + '\n')
    await writeFile(files.record, JSON.stringify(record) + '\n')
    await writeFile(files.report, renderReport(result))
    this.opts.onProgress?.({ phase: 'done', t: record.end, up: up.length, total: this.nodes.length, publishes: [], checks: { pass: checks.filter((c) => c.status === 'pass').length, fail: checks.filter((c) => c.status === 'fail').length, pending: 0 } })
    return { result, record, files }
  }
}

async function abortableSleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return
  await new Promise<void>((resolve) => {
    const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done)
  })
}

export function describeTopology (s: Pick<Scenario, 'topology'>): string {
  const t = s.topology
  switch (t.kind) {
    case 'random': return `random (each node joins through ${t.peers} random earlier node${t.peers === 1 ? '' : 's'})`
    case 'ring': return 'ring'
    case 'clusters': return `${t.clusters} clusters (${t.peers} peers inside, ${t.bridges} bridge${t.bridges === 1 ? '' : 's'} between neighbours)`
  }
}

