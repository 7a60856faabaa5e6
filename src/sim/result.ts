// What a simulation run produces, whichever engine ran it: the raw record (what happened,
// when) and the result derived from it (the figures, the checks). Times are milliseconds
// since the scenario's time zero, unless named otherwise.

import type { Policy, Target } from '../policy/index.js'
import type { Via } from '../node/rules.js'
import type { Quantiles } from './metrics.js'

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
  scenario: { name: string, description?: string, file: string, engine: 'live' | 'model', seed: number, nodes: number, topology: string, network: string }
  engine: {
    kind: 'live' | 'model'
    workers?: number
    transport?: string
    node?: string
    cpus?: number
    /** 1-minute load average at the start and end of the run: a busy machine explains slow figures. */
    load?: [number, number]
    /** Model engine: one agent per host, or every agent sharing one machine's cores (as the live engine runs them). */
    host?: { kind: 'dedicated' } | { kind: 'shared', cores: number }
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
  passed: boolean
}
