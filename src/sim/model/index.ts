// The model engine's public face: runModel(scenario, options) plays a parsed scenario
// (`engine: model`) through the discrete-event simulator and returns the same engine-neutral
// RunRecord as the live runner, so analysis, checks and reports serve both engines.

import { performance } from 'node:perf_hooks'
import { canonicalJson, contentHash, sha256Hex } from '../../envelope/index.js'
import { validatePolicyObject, type Policy } from '../../policy/index.js'
import { evaluateChecks } from '../checks.js'
import { analyse } from '../summary.js'
import { isTargeted } from '../analysis.js'
import { prng, seedOf } from '../random.js'
import { clusterOf, partitionGroups, selectNodes, type SelectContext } from '../topology.js'
import type { RolloutEvent, Scenario, ScenarioEvent } from '../scenario.js'
import type { RecordNode, RecordPublish, RunRecord, SimResult, Traffic as RecordTraffic } from '../result.js'
import { DEFAULT_SEED, PUBLISH_WINDOW_MS, RUN_GRACE_MS } from '../constants.js'
import { DEFAULT_ANNOUNCE_THRESHOLD, PEER_ROTATION_CHANCE } from '../../node/constants.js'
import { DEFAULT_BEACON_INTERVAL_MS } from '../../receipt/constants.js'
import { ROLLOUT_NAME_PREFIX, type MaxFailures, type RolloutAction } from '../../rollout/index.js'
import { ModelRollout } from './rollout.js'
import { hostOverrides, sharedFitFor, type HostModel } from './host.js'
import type { RunProgress } from '../runner.js'
import { Engine, chainFieldBytes, type CpuCosts, type EngineParams, type GossipParams, type NetParams } from './engine.js'
import {
  D_LAZY, DEDICATED_CPU, DEFAULT_TAIL_MS, DEFAULT_UPLINK_BYTES_PER_S, FLOOD_PUBLISH, GOSSIP_FACTOR, HEADER_BYTES, HEARTBEAT_MS,
  HISTORY_GOSSIP, LOOPBACK_UPLINK_BYTES_PER_S, MESH_D, MESH_D_HI, MESH_D_LO, RECEIPT_BYTES, RECONNECT_MS, SYNC_INTERVAL_MS, TARGET_PEERS
} from './constants.js'

export { Engine, chainFieldBytes, type EngineParams, type CpuCosts, type GossipParams, type NetParams } from './engine.js'
export { EventQueue } from './heap.js'
export { describeHost, hostOverrides, sharedFitFor, sharedHostOverrides, type HostModel, type SharedFit } from './host.js'

/** Engine parameters to override; nested groups merge with the defaults. */
export interface ModelOverrides {
  gossip?: Partial<GossipParams>
  net?: Partial<NetParams>
  cpu?: Partial<CpuCosts>
  cpuShare?: EngineParams['cpuShare']
  /** Agents per host (default: the scenario's nodes.perHost, else 1). */
  perHost?: number
  loopbackBytesPerS?: number
  /** Bytes over which envelopes are announced and fetched (default: the scenario's agent.announceThreshold, else the agent's default). */
  announceThreshold?: number
  headerBytes?: number
  /** Send a receipt back towards the publisher after every apply, as the agent does (default on). */
  receipts?: boolean
  receiptBytes?: number
}

export interface ModelOptions {
  seed?: number
  /** Override the scenario's node count. */
  nodes?: number
  /** The machines the agents run on (default dedicated); `params` override it. */
  host?: HostModel
  params?: ModelOverrides
  /** Envelope size for every publish, bytes; default: the policy's canonical JSON plus the signed header. */
  policyBytes?: number
  /** After every publish reached its targeted nodes, keep running this long so late duplicates land (the bench waits 1.5 s). */
  settleMs?: number
  /** Multiplies every check deadline, as the live runner's --deadline-scale. */
  deadlineScale?: number
  /**
   * Stop once the timeline is done and every publish window closed, without waiting for the
   * scenario's checks to be decided. Deciding checks runs analysis over the whole record, which
   * is quadratic in N (analysis.ts nodeOutcomes); the scale sweep sets this.
   */
  ignoreChecks?: boolean
  /** Run exactly this long (ms of simulated time), no early stop: for timing the engine. */
  until?: number
  /** Called with each timeline event as it runs, and with a status at most every 100 ms of wall time. */
  onProgress?: (p: RunProgress) => void
}

export interface ModelStats {
  /** Wall-clock time of the simulation, ms. */
  wallMs: number
  events: number
  nodes: number
  params: EngineParams
}

export interface ModelRun {
  record: RunRecord
  stats: ModelStats
  /** The engine after the run, for figures the record does not carry (per-node bytes, connections). */
  engine: Engine
  /** Message index of each publish, in record.publishes order. */
  messages: number[]
}

/** The agent's real parameters on the scenario's network, each agent on its own host. */
export function defaultParams (scenario: Pick<Scenario, 'network' | 'agent'>, overrides: ModelOverrides = {}): EngineParams {
  const gossip: GossipParams = {
    D: MESH_D,
    Dlo: MESH_D_LO,
    Dhi: MESH_D_HI,
    Dlazy: D_LAZY,
    gossipFactor: GOSSIP_FACTOR,
    historyGossip: HISTORY_GOSSIP,
    heartbeatMs: HEARTBEAT_MS,
    floodPublish: FLOOD_PUBLISH,
    syncIntervalMs: scenario.agent.syncInterval ?? SYNC_INTERVAL_MS,
    targetPeers: scenario.agent.targetPeers ?? TARGET_PEERS,
    topUp: true,
    reconnectMs: RECONNECT_MS,
    rotationChance: PEER_ROTATION_CHANCE
  }
  const net: NetParams = { latency: scenario.network.latency, loss: scenario.network.loss, rto: scenario.network.rto, uplinkBytesPerS: DEFAULT_UPLINK_BYTES_PER_S }
  return {
    gossip: { ...gossip, ...overrides.gossip },
    net: { ...net, ...overrides.net },
    cpu: { ...DEDICATED_CPU, ...overrides.cpu },
    cpuShare: overrides.cpuShare ?? 'node',
    perHost: overrides.perHost ?? 1,
    loopbackBytesPerS: overrides.loopbackBytesPerS ?? LOOPBACK_UPLINK_BYTES_PER_S,
    announceThreshold: overrides.announceThreshold ?? scenario.agent.announceThreshold ?? DEFAULT_ANNOUNCE_THRESHOLD,
    headerBytes: overrides.headerBytes ?? HEADER_BYTES,
    receipts: overrides.receipts ?? true,
    receiptBytes: overrides.receiptBytes ?? RECEIPT_BYTES
  }
}

/** `b` over `a`, group by group. */
function mergeOverrides (a: ModelOverrides, b: ModelOverrides = {}): ModelOverrides {
  return { ...a, ...b, gossip: { ...a.gossip, ...b.gossip }, net: { ...a.net, ...b.net }, cpu: { ...a.cpu, ...b.cpu } }
}

/** Bytes of the signed envelope for a policy: its canonical JSON plus the header and signature. */
export function envelopeBytes (policy: Policy): number {
  return Buffer.byteLength(JSON.stringify(policy)) + HEADER_BYTES
}

/**
 * A stand-in for the id of the envelope a publish signs (sha256 of its bytes): a hash of the
 * header fields that tell two envelopes of one version apart, the content, the signer, the
 * signing time and the chain fields. The same policy signed twice differs by id alone, and
 * selectEnvelope keeps the higher one, as it does for real envelopes.
 */
export function modelEnvelopeId (name: string, version: number, hash: string, signer: string, issuedAt: number, chain: { prev?: string, force?: string } = {}): string {
  return sha256Hex(canonicalJson({ name, version, hash, signer, issuedAt, ...chain }))
}

/** Plays a scenario through the model engine. Deterministic: the same scenario, seed and options give the same record. */
export function runModel (scenario: Scenario, options: ModelOptions = {}): RunRecord {
  return simulate(scenario, options).record
}

/** The scenario's figures, checks and all, as `grapevine sim` reports them. */
export function modelResult (scenario: Scenario, run: ModelRun, options: ModelOptions = {}): SimResult {
  const record = run.record
  const checks = evaluateChecks(record, scenario.expect, { now: record.end, scale: options.deadlineScale ?? 1, final: true, timeline: scenario.timeline.map((e) => ({ id: e.id, do: e.do })) })
  return analyse(record, {
    scenario,
    seed: options.seed ?? scenario.seed ?? DEFAULT_SEED,
    nodes: options.nodes ?? scenario.nodes.count,
    startedAt: new Date(0).toISOString(),
    setupMs: 0,
    checks,
    engine: { kind: 'model', host: options.host ?? { kind: 'dedicated' }, node: process.version }
  })
}

interface PublishState {
  rec: RecordPublish
  msg: number
  /** Targeted nodes up at the publish; the window closes when they all applied. */
  targets: number
  done: number
  before: Float64Array[]
  closeAt: number
}

export function simulate (scenario: Scenario, options: ModelOptions = {}): ModelRun {
  const wall = performance.now()
  const seed = options.seed ?? scenario.seed ?? DEFAULT_SEED
  const count = options.nodes ?? scenario.nodes.count
  const placed: ModelOverrides = scenario.nodes.perHost !== undefined ? { perHost: scenario.nodes.perHost } : {}
  const host = options.host ?? { kind: 'dedicated' }
  // A shared host without a named fit takes the costs fitted to the engine the file was written for.
  const fitted: HostModel = host.kind === 'shared' && host.fit === undefined ? { ...host, fit: sharedFitFor(scenario.engine) } : host
  const params = defaultParams(scenario, mergeOverrides(mergeOverrides(placed, hostOverrides(fitted)), options.params))
  const settle = options.settleMs ?? 1500
  const scale = options.deadlineScale ?? 1
  const random = prng(seedOf(seed, 'model', scenario.name))
  const capacity = count + scenario.timeline.reduce((n, e) => n + (e.do === 'add' ? e.count : 0), 0)

  // Policy names in first-publish order: the engine keeps one "held" slot per name.
  const names = new Map<string, number>()
  for (const e of scenario.timeline) {
    if (e.do !== 'publish') continue
    const p = scenario.loaded[e.policy]
    if (p !== undefined && !names.has(p.name)) names.set(p.name, names.size)
    // A staged publish's record is an envelope of its own name (rollout/<policy>).
    if (p !== undefined && e.rollout !== undefined && !names.has(ROLLOUT_NAME_PREFIX + p.name)) names.set(ROLLOUT_NAME_PREFIX + p.name, names.size)
  }
  const rollouts: ModelRollout[] = []
  const rolloutOf = new Map<string, ModelRollout>()
  /** Per message: nodes where that version's health check fails (unhealthyOn). */
  const unhealthyOn = new Map<number, Uint8Array>()
  // A node's peer id, what its rank in a rollout hashes: seeded, so each seed picks other canaries.
  const peerId = (i: number): string => `model-${seed}-${i}`

  const nodes: RecordNode[] = []
  const tagSets = scenario.nodes.tags
  const newNode = (index: number, tags: Record<string, string>, at: number): RecordNode => {
    const n: RecordNode = { index, name: `node-${index}`, tags, up: [[at]], startMs: [0], traffic: zeroTraffic() }
    nodes.push(n)
    return n
  }
  for (let i = 0; i < count; i++) newNode(i, tagSets.length > 0 ? tagSets[i % tagSets.length] as Record<string, string> : {}, 0)

  const deliveries: RunRecord['deliveries'] = []
  const applies: RunRecord['applies'] = []
  const conflicts: RunRecord['conflicts'] = []
  const forks: NonNullable<RunRecord['forks']> = []
  const markers: RunRecord['markers'] = []
  const errors: string[] = []
  const pubs: PublishState[] = []
  const byMsg = new Map<number, PublishState>()
  const signed = new Map<string, number>()
  let timelineLeft = scenario.timeline.length

  const msgInfo = (msg: number): { name: string, version: number, hash: string } => {
    const p = byMsg.get(msg) as PublishState
    return { name: p.rec.name, version: p.rec.version, hash: p.rec.hash }
  }

  const engine: Engine = new Engine(random, params, scenario.topology, count, capacity, {
    onAccept: (node, msg, via, at) => {
      for (const r of rollouts) if (msg === r.target || r.isRecord(msg)) r.update(node, at)
      if (!byMsg.has(msg)) return
      deliveries.push({ node, ...msgInfo(msg), via, at })
      const p = byMsg.get(msg) as PublishState
      if (p.rec.kind !== 'policy') p.done++
    },
    onApply: (node, msg, at) => {
      const p = byMsg.get(msg)
      if (p === undefined) return
      applies.push({ node, ...msgInfo(msg), at, outcome: unhealthyOn.get(msg)?.[node] === 1 ? 'unhealthy' : 'changed', changed: 1, failed: 0 })
      for (const r of rollouts) r.applied(node, msg, at)
      p.done++
    },
    onReport: (node, msg, reporter, at) => {
      for (const r of rollouts) r.reported(node, msg, reporter, at)
    },
    onConflict: (node, msg, at) => {
      const p = byMsg.get(msg)
      if (p !== undefined) conflicts.push({ node, name: p.rec.name, version: p.rec.version, at, kind: 'version' })
    },
    onFork: (node, msg, reason, at) => {
      const p = byMsg.get(msg)
      if (p !== undefined) forks.push({ node, name: p.rec.name, version: p.rec.version, at, reason })
    },
    onTimeline: (index, at) => {
      timelineLeft--
      runEvent(scenario.timeline[index] as ScenarioEvent & { id: string }, at)
    }
  }, names.size)

  const ctx = (): SelectContext => ({
    total: engine.nodes,
    isUp: (i) => engine.up[i] === 1,
    tags: (i) => nodes[i]?.tags ?? {},
    cluster: (i) => engine.g.cluster[i] ?? 0,
    random
  })

  const snapshot = (): Float64Array[] => {
    const t = engine.traffic
    return [t.gossipSent, t.gossipRecv, t.syncSent, t.syncRecv, t.policyDups, t.policyMsgs].map((a) => a.slice())
  }

  const mark = (e: { id: string, do: string }, at: number, detail: string): void => { markers.push({ id: e.id, do: e.do, at, detail }) }

  const runEvent = (e: ScenarioEvent & { id: string }, at: number): void => {
    switch (e.do) {
      case 'publish': {
        const from = selectNodes([e.from], ctx()).find((i) => engine.up[i] === 1)
        const base = scenario.loaded[e.policy] as Policy
        const policy = e.vars !== undefined && base.kind === 'policy' ? validatePolicyObject({ ...base, vars: { ...base.vars, ...e.vars } }) : base
        if (from === undefined) {
          errors.push(`${e.id}: no running node matches the publish's from`)
          mark(e, at, `${e.id}: skipped, no running node`)
          return
        }
        const version = e.version ?? (signed.get(policy.name) ?? 0) + 1
        signed.set(policy.name, Math.max(version, signed.get(policy.name) ?? 0))
        const hash = contentHash(policy)
        const name = names.get(policy.name) as number
        // As the live runner: the envelope names the one its publishing node holds, and the
        // scenario's `root` is the key every node trusts as a root.
        const held = engine.current[name]![from]!
        const chain = { ...(held >= 0 ? { prev: engine.msgs[held]!.id } : {}), ...(e.force !== undefined ? { force: e.force } : {}), ...(e.rollout !== undefined ? { staged: true } : {}) }
        const bytes = (options.policyBytes ?? envelopeBytes(policy)) + chainFieldBytes(chain)
        const rec: RecordPublish = {
          id: e.id,
          name: policy.name,
          version,
          hash,
          from,
          signer: e.admin,
          at,
          kind: policy.kind,
          bytes,
          ...(policy.kind === 'policy' && policy.target !== undefined ? { target: policy.target } : {})
        }
        let targeted: Uint8Array | undefined
        let targets = 0
        if (policy.kind === 'policy') {
          targeted = new Uint8Array(capacity)
          for (let i = 0; i < capacity; i++) {
            const n = nodes[i]
            if (n !== undefined ? isTargeted(rec, n) : policy.target === undefined) targeted[i] = 1
            if (targeted[i] === 1 && i < engine.nodes && engine.up[i] === 1) targets++
          }
        } else {
          for (let i = 0; i < engine.nodes; i++) if (engine.up[i] === 1) targets++
        }
        const msg = engine.addMessage({
          name,
          version,
          hash,
          id: modelEnvelopeId(policy.name, version, hash, e.admin, at, chain),
          ...chain,
          root: e.admin === 'root',
          bytes,
          origin: from,
          at,
          targeted
        })
        const state: PublishState = { rec, msg, targets, done: 0, before: snapshot(), closeAt: Infinity }
        pubs.push(state)
        byMsg.set(msg, state)
        if (e.unhealthyOn !== undefined) {
          const sick = new Uint8Array(capacity)
          for (const i of selectNodes(e.unhealthyOn, ctx())) sick[i] = 1
          unhealthyOn.set(msg, sick)
        }
        mark(e, at, `${policy.name} v${version} from node-${from} (signed by ${e.admin})${e.rollout !== undefined ? `, staged ${e.rollout.stages.text}` : ''}`)
        engine.publish(from, msg)
        if (e.rollout !== undefined && targeted !== undefined) {
          const recordName = ROLLOUT_NAME_PREFIX + policy.name
          const r: ModelRollout = new ModelRollout({
            engine,
            policySlot: name,
            recordSlot: names.get(recordName) as number,
            peerId,
            tags: (i) => nodes[i]?.tags ?? {},
            targeted,
            unhealthy: unhealthyOn.get(msg) ?? new Uint8Array(capacity),
            beaconMs: scenario.agent.beaconInterval ?? DEFAULT_BEACON_INTERVAL_MS,
            random,
            envelopeId: (v, signer, t, prev) => modelEnvelopeId(recordName, v, `rollout:${v}`, signer, t, prev !== undefined ? { prev } : {}),
            errors
          }, {
            publish: e.id,
            policy: policy.name,
            spec: e.rollout.stages.text,
            specs: e.rollout.stages.specs,
            maxFailures: e.rollout.maxFailures,
            maxFailuresText: maxFailuresText(e.rollout.maxFailures),
            bakeMs: e.rollout.bake,
            stageTimeoutMs: e.rollout.stageTimeout,
            autoRollback: e.rollout.autoRollback
          }, msg, held, from, e.admin, at)
          rollouts.push(r)
          rolloutOf.set(e.id, r)
        }
        return
      }
      case 'resume': case 'pause': case 'abort':
        rolloutEvent(e, at)
        return
      case 'partition': {
        const groups = partitionGroups(e.groups, ctx())
        engine.partition(groups)
        mark(e, at, `into ${groups.length} groups of ${groups.map((g) => g.length).join(', ')} nodes`)
        return
      }
      case 'heal':
        engine.heal()
        mark(e, at, 'every partition lifted; agents reconnect on their own')
        return
      case 'kill': {
        const picked = selectNodes(e.nodes, ctx()).filter((i) => engine.up[i] === 1)
        for (const i of picked) {
          for (const r of rollouts) r.stopped(i)
          engine.kill(i)
          const last = nodes[i]?.up[nodes[i].up.length - 1]
          if (last !== undefined) last[1] = at
        }
        for (const r of rollouts) r.touch()
        mark(e, at, `${picked.length} nodes`)
        return
      }
      case 'restart': {
        const picked = selectNodes(e.nodes, ctx()).filter((i) => engine.up[i] === 0)
        for (const i of picked) {
          engine.start(i)
          const n = nodes[i] as RecordNode
          n.up.push([at])
          n.startMs.push(0)
          for (const p of pubs) if (engine.current[engine.msgs[p.msg]!.name]![i] === p.msg) deliveries.push({ node: i, name: p.rec.name, version: p.rec.version, hash: p.rec.hash, via: 'disk', at })
        }
        for (const r of rollouts) r.touch()
        mark(e, at, `${picked.length} nodes (same state directories)`)
        return
      }
      case 'add': {
        const k = e.peers ?? (scenario.topology.kind === 'ring' ? 1 : scenario.topology.peers)
        const first = engine.nodes
        for (let j = 0; j < e.count; j++) {
          const index = engine.nodes
          const tags = e.tags ?? (tagSets.length > 0 ? tagSets[index % tagSets.length] as Record<string, string> : {})
          newNode(index, tags, at)
          const cluster = scenario.topology.kind === 'clusters' ? clusterOf(index % count, count, scenario.topology.clusters) : 0
          engine.g.cluster[index] = cluster
          const pool: number[] = []
          for (let i = 0; i < index; i++) if (engine.up[i] === 1 && engine.g.cluster[i] === cluster) pool.push(i)
          const boot: number[] = []
          while (boot.length < Math.min(k, pool.length)) {
            const b = pool[Math.floor(random() * pool.length)] as number
            if (!boot.includes(b)) boot.push(b)
          }
          if (boot[0] !== undefined) engine.pgroup[index] = engine.pgroup[boot[0]]!
          for (const p of pubs) {
            const m = engine.msgs[p.msg]!
            if (m.targeted !== undefined) m.targeted[index] = isTargeted(p.rec, nodes[index] as RecordNode) ? 1 : 0
          }
          engine.start(index, boot)
        }
        mark(e, at, `${e.count} nodes (node-${first} to node-${engine.nodes - 1}), each joining through ${k} running node${k === 1 ? '' : 's'}`)
      }
    }
  }

  /** resume, pause or abort: an admin at a running node signs the next record from the one its node holds. */
  function rolloutEvent (e: RolloutEvent & { id: string }, at: number): void {
    const r = rolloutOf.get(e.publish)
    const node = selectNodes([e.from], ctx()).find((i) => engine.up[i] === 1)
    if (r === undefined || node === undefined) {
      errors.push(`${e.id}: ${r === undefined ? `publish ${e.publish} did not start a rollout` : 'no running node matches its from'}`)
      mark(e, at, `${e.id}: skipped`)
      return
    }
    const reason = `${e.do === 'pause' ? 'paused' : 'aborted'} by ${e.admin} at node-${node}`
    const action: RolloutAction = e.do === 'resume' ? { type: 'resume', at } : e.do === 'pause' ? { type: 'pause', at, reason } : { type: 'abort', at, reason, rollback: e.rollback }
    try {
      r.act(node, e.admin, action, at)
      mark(e, at, `${r.plan.policy}: ${e.do} by ${e.admin} from node-${node}, now ${r.head.state} at stage ${r.head.stage + 1}/${r.head.stages.length}`)
    } catch (err) {
      errors.push(`${e.id}: ${(err as Error).message}`)
      mark(e, at, `${e.id}: refused: ${(err as Error).message}`)
    }
  }

  for (const [i, e] of scenario.timeline.entries()) engine.scheduleTimeline(e.at, i)
  const last = scenario.timeline.reduce((m, e) => Math.max(m, e.at), 0)
  const within = scenario.expect.reduce((m, c) => Math.max(m, 'within' in c ? c.within : 0), 0)
  const cap = options.until ?? scenario.duration ?? (scenario.expect.length > 0 ? last + within * scale + RUN_GRACE_MS : last + DEFAULT_TAIL_MS)

  const closeWindows = (now: number, force: boolean): boolean => {
    let open = false
    for (const p of pubs) {
      if (p.rec.traffic !== undefined) continue
      if (p.closeAt === Infinity && (p.done >= p.targets || now - p.rec.at >= PUBLISH_WINDOW_MS)) p.closeAt = p.done >= p.targets ? now + settle : now
      if (force || now >= p.closeAt) {
        const after = snapshot()
        const byNode: Record<number, RecordTraffic> = {}
        for (let i = 0; i < engine.nodes; i++) {
          if (engine.up[i] === 0) continue
          const d = (k: number): number => (after[k] as Float64Array)[i]! - (p.before[k] as Float64Array)[i]!
          byNode[i] = { gossipBytesSent: d(0), gossipBytesReceived: d(1), syncBytesSent: d(2), syncBytesReceived: d(3), policyDuplicates: d(4), policyMessages: d(5) }
        }
        p.rec.traffic = { window: [p.rec.at, now], byNode }
      } else {
        open = true
      }
    }
    return open
  }

  const record = (end: number): RunRecord => ({
    t0: 0,
    end,
    nodes,
    publishes: pubs.map((p) => p.rec),
    deliveries,
    applies,
    conflicts,
    forks,
    rejections: [],
    markers,
    errors,
    ...(rollouts.length > 0 ? { rollouts: rollouts.map((r) => r.toRecord()) } : {})
  })

  // Progress for people: each timeline event as a line, and a status at most every 100 ms of
  // wall time (counting the running nodes is O(N)). Never feeds back into the simulation.
  let reported = 0
  let statusAt = -Infinity
  const progress = (t: number): void => {
    if (options.onProgress === undefined) return
    const now = performance.now()
    if (reported === markers.length && now - statusAt < 100) return
    statusAt = now
    let up = 0
    for (let i = 0; i < engine.nodes; i++) up += engine.up[i]!
    const status: RunProgress = {
      phase: 'running',
      t,
      up,
      total: engine.nodes,
      publishes: pubs.filter((p) => p.rec.kind === 'policy').map((p) => ({ id: p.rec.id, label: `${p.rec.name} v${p.rec.version}`, applied: Math.min(p.done, p.targets), targeted: p.targets })),
      checks: { pass: 0, fail: 0, pending: 0 }
    }
    for (; reported < markers.length; reported++) {
      const m = markers[reported] as RunRecord['markers'][number]
      options.onProgress({ ...status, message: `t=${(m.at / 1000).toFixed(2)}s ${m.do} ${m.detail}` })
    }
    options.onProgress(status)
  }

  // Run in slices of simulated time; stop early, as the live runner does, once the timeline
  // is done, every publish window closed and no check is still waiting.
  const slice = 250
  let t = 0
  const ids = scenario.timeline.map((e) => ({ id: e.id, do: e.do }))
  while (t < cap) {
    const from = t
    t = Math.min(cap, t + slice)
    engine.run(t)
    engine.now = t
    // Each evaluator reads its fleet view and decides its gate once a slice, as `publish --wait` polls.
    for (const r of rollouts) r.tick(from, t)
    progress(t)
    const open = closeWindows(t, false) || rollouts.some((r) => r.active())
    if (timelineLeft > 0 || open || options.until !== undefined) continue
    if (scenario.expect.length === 0 || options.ignoreChecks === true) break
    const checks = evaluateChecks(record(t), scenario.expect, { now: t, scale, final: false, timeline: ids })
    if (!checks.some((c) => c.status === 'pending' && c.check !== 'no-failures')) break
  }
  closeWindows(t, true)
  for (const n of nodes) {
    const i = n.index
    const tr = engine.traffic
    n.traffic = {
      gossipBytesSent: tr.gossipSent[i]!,
      gossipBytesReceived: tr.gossipRecv[i]!,
      syncBytesSent: tr.syncSent[i]!,
      syncBytesReceived: tr.syncRecv[i]!,
      policyDuplicates: tr.policyDups[i]!,
      policyMessages: tr.policyMsgs[i]!
    }
  }
  return {
    record: record(t),
    stats: { wallMs: performance.now() - wall, events: engine.events, nodes: engine.nodes, params },
    engine,
    messages: pubs.map((p) => p.msg)
  }
}

function maxFailuresText (m: MaxFailures): string {
  return m.kind === 'count' ? String(m.count) : `${m.milli / 1000}%`
}

function zeroTraffic (): RecordTraffic {
  return { gossipBytesSent: 0, gossipBytesReceived: 0, syncBytesSent: 0, syncBytesReceived: 0, policyDuplicates: 0, policyMessages: 0 }
}
