// What a simulation run produces, whichever engine ran it: the raw record (what happened,
// when) and the result derived from it (the figures, the checks). Times are milliseconds
// since the scenario's time zero, unless named otherwise.

import type { Policy, Target } from '../policy/index.js'
import type { Via } from '../node/rules.js'
import type { Quantiles } from './metrics.js'
import type { RolloutState } from '../rollout/index.js'

/** How an envelope reached a node: the agent's own vocabulary (src/node/rules.ts). */
export type { Via }

export interface Traffic {
  gossipBytesSent: number
  gossipBytesReceived: number
  syncBytesSent: number
  syncBytesReceived: number
  /** Policy messages gossipsub saw again after the first copy. */
  policyDuplicates: number
  policyMessages: number
  /** Announce-and-fetch: bodies fetched over the sync protocol (absent from the model engine and older records). */
  fetchBytesSent?: number
  fetchBytesReceived?: number
  announceMessages?: number
  announceDuplicates?: number
}

export interface RecordNode {
  index: number
  name: string
  tags: Record<string, string>
  peerId?: string
  worker?: number
  /** When the node was up: [start, stop]; stop is absent while it still runs. */
  up: Array<[number, number?]>
  /** Wall time each (re)start took, ms. */
  startMs: number[]
  /** Traffic over the whole run, summed across restarts. */
  traffic: Traffic
}

export interface RecordPublish {
  id: string
  name: string
  version: number
  hash: string
  /** Node index, or -1 for an admin peer outside the fleet. */
  from: number
  signer: string
  at: number
  kind: Policy['kind']
  /** Size of the signed envelope, bytes. */
  bytes?: number
  target?: Target
  /** Traffic of every node over the publish's window (until all targeted nodes applied, or a bound). */
  traffic?: { window: [number, number], byNode: Record<number, Traffic> }
}

export interface RecordDelivery { node: number, name: string, version: number, hash: string, via: Via, at: number }
export interface RecordApply { node: number, name: string, version: number, hash: string, at: number, outcome: string, changed: number, failed: number, errors?: Array<{ resource: string, error: string }>, /** How long the apply itself took, ms. */ durationMs?: number }
export interface RecordConflict { node: number, name: string, version?: number, at: number, kind: string }
/** A newer version a node held back because it does not extend the one it holds (linkOf: `unlinked` after a catch-up, or `jump`). */
export interface RecordFork { node: number, name: string, version: number, at: number, reason: 'unlinked' | 'jump' }
export interface RecordRejection { node: number, reason: string, via: string, at: number, error: string }
export interface RecordMarker { id: string, do: string, at: number, detail: string }

/** One signed record of a rollout (`rollout/<policy>`), as its signer published it. */
export interface RecordRolloutStep {
  /** Version of the record envelope. */
  version: number
  at: number
  /** Node index of the signer's process (-1: outside the fleet). */
  by: number
  signer: string
  /** What was signed: the first record, or nextRecord's action. */
  action: 'start' | 'advance' | 'pause' | 'resume' | 'halt' | 'abort'
  state: RolloutState
  /** Index of the current stage. */
  stage: number
  reason?: string
  rolledBack: boolean
}

/**
 * A staged publish (`publish --rollout`): its plan and every record signed for it. Nodes'
 * outcomes are in `applies` (outcome `unhealthy` when a health check failed), by name and version.
 */
export interface RecordRollout {
  /** The publish event's id. */
  publish: string
  name: string
  version: number
  hash: string
  /** Stages as written (`1,5%,25%,100%`). */
  spec: string
  /** Each stage as resolved when the rollout started: its text and the targeted nodes in it or an earlier one. */
  stages: Array<{ text: string, members: number }>
  bakeMs: number
  /** As written: `0`, `3`, `10%`. */
  maxFailures: string
  stageTimeoutMs: number
  autoRollback: boolean
  steps: RecordRolloutStep[]
}

/** Everything observed during a run, engine-neutral: the input to analyse() and the report. */
export interface RunRecord {
  /** Epoch ms of time zero (the moment the timeline started). */
  t0: number
  /** Run end, ms since time zero. */
  end: number
  nodes: RecordNode[]
  publishes: RecordPublish[]
  deliveries: RecordDelivery[]
  applies: RecordApply[]
  conflicts: RecordConflict[]
  /** Absent from records made before versions formed a chain. */
  forks?: RecordFork[]
  rejections: RecordRejection[]
  markers: RecordMarker[]
  errors: string[]
  /** Trouble in the harness that did not stop the run (a topology dial that timed out): reported, not failed on. */
  warnings?: string[]
  /** Staged publishes; absent when the run had none. */
  rollouts?: RecordRollout[]
}

export interface NodeOutcome {
  node: number
  name: string
  /** online: up from the publish until it applied; catch-up: (re)started later; missing: up at the end, never applied. */
  class: 'online' | 'catch-up' | 'missing'
  /** ms from the publish (online) or from the node's (re)start (catch-up). */
  latency?: number
  /** When it had it, ms since time zero. */
  at?: number
  via?: Via
}

export interface PublishResult {
  id: string
  name: string
  version: number
  hash: string
  from: string
  signer: string
  at: number
  /** Targeted nodes up from the publish to the end of the run: the denominator of the quantiles. */
  targeted: number
  applied: number
  times: Quantiles
  /** The same quantiles for merely holding the envelope (gossip or sync delivery), before applying it. */
  held?: Quantiles
  /** How long applying it took on the nodes (ms): the applier's share of `times`. */
  applyMs?: { p50: number, max: number }
  /** [ms since publish, fraction of targeted online nodes applied] */
  curve: Array<[number, number]>
  /** [ms since time zero, fraction of the targeted nodes running at the end that had it]: online, catch-up and missing alike. */
  coverage: Array<[number, number]>
  latencies: number[]
  catchUp: Array<{ node: string, ms: number }>
  missing: string[]
  /** How the nodes that hold this envelope got it. */
  via: Partial<Record<Via, number>>
  /** Same name and version, another content: which hash won everywhere. */
  conflict?: { with: string, won: boolean }
  /** Nodes that held this version back as a fork (it did not extend what they held); absent when none did. */
  forkedBy?: string[]
  failures: Array<{ node: string, errors: Array<{ resource: string, error: string }> }>
  /** A staged publish, or one that some node reported failed or unhealthy: how far it reached and when all were healthy. */
  health?: HealthResult
  /** A staged publish: its stages over time and how it ended. */
  rollout?: RolloutResult
  traffic?: {
    windowMs: number
    /** Absent when the publisher stopped before the window closed (its counters went with it). */
    publisherBytes?: number
    totalBytes: number
    duplicates: number
    duplicatesPerNode: number
    /**
     * Bytes each node other than the publisher received in the window (gossip, sync and fetch,
     * receipts and control included): mean and max, and both as multiples of the envelope size.
     */
    receivedPerNode?: { mean: number, max: number, meanX?: number, maxX?: number }
    /** Envelope bodies fetched after announcements, bytes, all nodes. */
    fetchBytes?: number
  }
}

export interface HealthResult {
  /** Nodes that ever applied this version (healthy or not): a bad change's reach. */
  blastRadius: number
  /** The same as a share of the targeted nodes, 0–100. */
  blastRadiusPercent: number
  /** Nodes whose latest report of this version is failed or unhealthy. */
  unhealthy: number
  /** ms from the publish until every targeted node running at the end had reported it healthy (applied or unchanged, nothing failed); absent if never. */
  allHealthyMs?: number
}

export interface RolloutStageResult {
  index: number
  text: string
  /** Targeted nodes in this stage or an earlier one when the rollout started, and as a share of them. */
  members: number
  percent: number
  /** ms since time zero; absent for a stage never reached. */
  startedAt?: number
  /** When the next record replaced it (advance, halt, abort, done); absent while it stood at the end. */
  endedAt?: number
  /** How the stage ended: passed (advanced or done), halted, aborted, or still standing (running, paused). */
  outcome?: 'passed' | 'halted' | 'aborted' | 'running' | 'paused'
}

export interface RolloutResult {
  spec: string
  /** The last record's state, and why (paused, halted, aborted). */
  state: RolloutState
  reason?: string
  rolledBack: boolean
  /** Index of the stage it stood at in the end. */
  stage: number
  /** ms since the publish until done; absent when it did not finish. */
  doneMs?: number
  bakeMs: number
  maxFailures: string
  stageTimeoutMs: number
  autoRollback: boolean
  stages: RolloutStageResult[]
  steps: RecordRolloutStep[]
}

export interface ConvergenceResult {
  after: string
  at: number
  /** ms from the event until every running node held the newest envelope of every policy; absent if never. */
  ms?: number
}

export interface CheckResult {
  check: string
  text: string
  status: 'pass' | 'fail' | 'pending'
  detail: string
}

export interface NodeResult {
  index: number
  name: string
  tags: Record<string, string>
  peerId?: string
  up: boolean
  restarts: number
  traffic: Traffic
  policies: Record<string, { version: number, hash: string, via?: Via }>
}

export interface SimResult {
  format: 1
  scenario: { name: string, description?: string, file: string, engine: 'live' | 'model' | 'netns', seed: number, nodes: number, topology: string, network: string }
  engine: {
    kind: 'live' | 'model' | 'netns'
    workers?: number
    transport?: string
    node?: string
    cpus?: number
    /** 1-minute load average at the start and end of the run: a busy machine explains slow figures. */
    load?: [number, number]
    /** Model engine: one agent per host, or every agent sharing one machine's cores (as the live engine runs them), with the costs fitted to the live or netns engine. */
    host?: { kind: 'dedicated' } | { kind: 'shared', cores: number, fit?: 'live' | 'netns' }
    /** netns engine: simulated hosts (namespaces), agents per host, how packets were delayed, and the network's set-up and tear-down times. */
    network?: { hosts: number, perHost: number, delay: 'netem' | 'nfqueue' | 'none', setupMs: number, teardownMs?: number }
  }
  startedAt: string
  /** Setup (start agents, wire the topology, wait for the gossip mesh) then the timeline, ms. */
  setupMs: number
  durationMs: number
  agentStart?: { meanMs: number, p90Ms: number, maxMs: number }
  memory?: { rssBytes: number, perAgentBytes?: number }
  publishes: PublishResult[]
  convergence: ConvergenceResult[]
  nodes: NodeResult[]
  markers: RecordMarker[]
  checks: CheckResult[]
  failures: string[]
  warnings?: string[]
  /** Ctrl-C or SIGTERM ended the run early: checks still pending were not decided, and it did not pass. */
  interrupted?: true
  passed: boolean
}
