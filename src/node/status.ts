import type { VerifiedEnvelope } from '../envelope/index.js'
import type { NodeFacts } from '../policy/index.js'
import type { AppliedRecord } from '../store/index.js'
import type { AgentMetrics } from './metrics.js'
import type { ConflictRecord, ForkRecord, UntrustedRecord } from './book.js'
import type { FailingWrite } from './journal.js'
import type { RecentRefusal } from './refusals.js'

export interface PolicyState {
  name: string
  version: number
  hash: string
  signer: string
  issuedAt: string
  id: string
  kind: string
  targeted: boolean
  /** Signed for a staged rollout: applied only as its rollout record includes this node. */
  staged?: boolean
  /** Why this node enforces another version than this one (its rollout stage has not come, or it was rolled back). */
  heldBack?: string
  /** Why this version was not applied here: its secrets are not sealed to this node (or to its current key). */
  sealed?: string
  lastApply?: AppliedRecord
}

export interface AgentStatus {
  /** `recipient`: the node's encryption key (age1…), to give a publisher as `--recipient PEERID=age1…`. */
  node: NodeFacts & { addrs: string[], mesh: string, root: string, recipient?: string }
  peers: Array<{ id: string, addrs: string[] }>
  policies: PolicyState[]
  conflicts: ConflictRecord[]
  /** Policies dropped because the trust policy no longer allows their signer (no allowed version to fall back to). */
  untrusted: UntrustedRecord[]
  /** Newer versions that do not extend the one held: held back until an admin resolves them (`grapevine resolve`). */
  forks: ForkRecord[]
  trust: { roots: string[], policyVersion?: number }
  applying: boolean
  /** A state write being retried (a full or broken --state disk): the versions behind it wait to be applied. */
  stateWriteFailing?: FailingWrite
  /** Envelopes refused lately (name and signer as claimed, reason): why a node with the wrong --trust holds nothing. */
  refused: RecentRefusal[]
}

/** What status is built from: each part's own view, read at the moment it is asked. */
export interface StatusSources {
  node: AgentStatus['node']
  peers: AgentStatus['peers']
  held: Iterable<VerifiedEnvelope>
  applied: Record<string, AppliedRecord>
  targets: (env: VerifiedEnvelope) => boolean
  heldBack?: (env: VerifiedEnvelope) => string | undefined
  sealed?: (env: VerifiedEnvelope) => string | undefined
  conflicts: ConflictRecord[]
  untrusted: UntrustedRecord[]
  forks: ForkRecord[]
  roots: string[]
  trustVersion?: number
  applying: boolean
  stateWriteFailing?: FailingWrite
  refused?: RecentRefusal[]
}

export function buildStatus (s: StatusSources): AgentStatus {
  return {
    node: s.node,
    peers: s.peers,
    policies: [...s.held].sort((a, b) => a.name.localeCompare(b.name)).map((e) => {
      const heldBack = s.heldBack?.(e)
      const sealed = s.sealed?.(e)
      return {
        name: e.name,
        version: e.version,
        hash: e.hash,
        signer: e.signer,
        issuedAt: e.issuedAt,
        id: e.id,
        kind: e.policy.kind,
        targeted: s.targets(e),
        ...(e.staged === true ? { staged: true } : {}),
        ...(heldBack !== undefined ? { heldBack } : {}),
        ...(sealed !== undefined ? { sealed } : {}),
        ...(s.applied[e.name] !== undefined ? { lastApply: s.applied[e.name] } : {})
      }
    }),
    conflicts: s.conflicts,
    untrusted: s.untrusted,
    forks: s.forks,
    trust: { roots: s.roots, ...(s.trustVersion !== undefined ? { policyVersion: s.trustVersion } : {}) },
    applying: s.applying,
    refused: s.refused ?? [],
    ...(s.stateWriteFailing !== undefined ? { stateWriteFailing: s.stateWriteFailing } : {})
  }
}

/**
 * This node's traffic counters. Gossip bytes are every gossipsub RPC (policies, announcements,
 * receipts, control); fetch bytes are the announced envelopes fetched over the sync protocol.
 */
export interface AgentTraffic {
  gossipBytesSent: number
  gossipBytesReceived: number
  policyDuplicates: number
  policyMessages: number
  syncBytesSent: number
  syncBytesReceived: number
  fetchBytesSent: number
  fetchBytesReceived: number
  announceMessages: number
  announceDuplicates: number
}

type Labels = Record<string, string>
interface Readable { get: () => Promise<{ values: Array<{ value: number, labels: Partial<Record<string, string | number>> }> }> }

async function sum (metric: Readable | undefined, labels: Labels = {}): Promise<number> {
  if (metric === undefined) return 0
  const { values } = await metric.get()
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((total, v) => total + v.value, 0)
}

/** Traffic so far, from this node's own counters: what simulations and benchmarks report. */
export async function readTraffic (metrics: AgentMetrics): Promise<AgentTraffic> {
  const g = metrics.gossip
  return {
    gossipBytesSent: await sum(g.rpcSentBytes()),
    gossipBytesReceived: await sum(g.rpcRecvBytes()),
    policyDuplicates: await sum(g.duplicates(), { topic: 'policies' }),
    policyMessages: await sum(g.received(), { topic: 'policies' }),
    syncBytesSent: await sum(metrics.syncBytes, { direction: 'sent' }),
    syncBytesReceived: await sum(metrics.syncBytes, { direction: 'received' }),
    fetchBytesSent: await sum(metrics.fetchBytes, { direction: 'sent' }),
    fetchBytesReceived: await sum(metrics.fetchBytes, { direction: 'received' }),
    announceMessages: await sum(g.received(), { topic: 'announcements' }),
    announceDuplicates: await sum(g.duplicates(), { topic: 'announcements' })
  }
}
