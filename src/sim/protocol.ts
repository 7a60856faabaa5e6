// Messages between the coordinator and the worker processes that host the agents (Node IPC,
// 'advanced' serialization so envelope bytes travel as Uint8Array). Times are epoch ms.

import type { LinkModel } from './link.js'
import type { Traffic, Via } from './result.js'
import type { FleetNode as ReportedNode } from '../receipt/index.js'
import type { DigestEntry } from '../sync/index.js'

export type { ReportedNode, DigestEntry }

export interface AgentSettings {
  syncInterval?: number
  reapplyInterval?: number
  beaconInterval?: number
  targetPeers?: number
  announceThreshold?: number
  /** The demo's rehearsal of the web-server role: services' running state recorded under each root (AgentOptions.serviceRuntime). */
  serviceRuntime?: 'systemd' | 'sandbox'
}

export interface NodeSpec {
  index: number
  name: string
  stateDir: string
  root: string
  tags: Record<string, string>
  trust: string[]
  listen: string[]
  bootstrap: string[]
  agent: AgentSettings
  /** Absent: a perfect link (loopback as it is). */
  link?: LinkModel
  /** Seeds the agent's random source and its links; a restart derives a new stream from it. */
  seed: number
  /** Peer ids this node refuses (partitions, cluster firewalls), applied before it dials anyone. */
  blocked: string[]
}

export interface Started {
  peerId: string
  addrs: string[]
  /** Envelopes the node already held from its state directory (a restart). */
  held: Array<{ name: string, version: number, hash: string }>
  at: number
  startMs: number
}

export interface WorkerMemory {
  rss: number
  heapUsed: number
  agents: number
  /** Event loop delay in this worker since the last sample (p99, ms): how loaded it is. */
  loopDelayP99Ms: number
  /** CPU time this worker has used since it started (user + system), ms. */
  cpuMs: number
}

export type Request =
  | { op: 'start', spec: NodeSpec }
  | { op: 'stop', index: number }
  | { op: 'connect', index: number, addrs: string[] }
  | { op: 'block', index: number, peers: string[] }
  | { op: 'publish', index: number, bytes: Uint8Array }
  | { op: 'head', index: number, name: string }
  /** What an admin client asks of the agent it goes through (a staged rollout's evaluator): its digest, fleet view, an archived envelope. */
  | { op: 'digest', index: number }
  | { op: 'fleet', index: number }
  | { op: 'envelope', index: number, name: string, version: number }
  | { op: 'traffic', indexes: number[] }
  | { op: 'ready', indexes: number[], heartbeats: number, timeoutMs: number }
  | { op: 'peers', indexes: number[] }
  | { op: 'memory' }
  | { op: 'shutdown' }

export type WorkerEvent =
  | { kind: 'accepted', node: number, name: string, version: number, hash: string, via: Via, at: number }
  | { kind: 'applied', node: number, name: string, version: number, hash: string, outcome: string, changed: number, failed: number, errors?: Array<{ resource: string, error: string }>, durationMs: number, at: number }
  | { kind: 'conflict', node: number, name: string, version?: number, conflict: string, at: number }
  | { kind: 'fork', node: number, name: string, version: number, reason: 'unlinked' | 'jump', at: number }
  | { kind: 'rejected', node: number, reason: string, via: string, error: string, at: number }
  | { kind: 'error', node?: number, message: string, at: number }

export type ToWorker = { type: 'req', id: number, req: Request }
export type FromWorker =
  | { type: 'res', id: number, ok: true, value: unknown }
  | { type: 'res', id: number, ok: false, error: string }
  | { type: 'event', event: WorkerEvent }
  | { type: 'hello' }

export type TrafficByNode = Record<number, Traffic>

/** The envelope a node holds for a name: what a new version it publishes supersedes (`prev`). */
export interface Head { version: number, id: string }
