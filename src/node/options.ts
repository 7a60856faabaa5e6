import type { VerifiedEnvelope } from '../envelope/index.js'
import type { NodeReport } from '../receipt/index.js'
import type { ApplyReport } from '../apply/index.js'
import type { FetchRound, SyncRound } from '../sync/index.js'
import type { LinkShaper, NetOptions } from '../net/libp2p.js'
import type { Logger } from './logger.js'
import type { SetTimer } from './clock.js'
import type { Via } from './rules.js'
import type { ConflictRecord, ForkRecord } from './book.js'
import type { Refusal } from './intake.js'

export interface AgentOptions {
  stateDir: string
  /** Managed paths are prefixed with this directory; `/` on a real server. */
  root: string
  listen?: string[]
  bootstrap?: string[]
  /** Root public key ids trusted to sign the trust policy (and anything else). */
  trust: string[]
  tags?: Record<string, string>
  /**
   * This node's admission certificate (`grapevine admit`); without it, `<state>/admission.cert`
   * is read if present. Refused at start if it names another peer id.
   */
  admission?: Uint8Array
  /**
   * `--admitted-only`: drop and block, for ADMISSION_BLOCK_MS, peers that show no certificate
   * that holds for their peer id within the grace. Refused at start while the trust policy lists no enrollers.
   */
  admittedOnly?: boolean
  /** How long a new connection may go without a valid certificate under admittedOnly; default ADMISSION_GRACE_MS. */
  admissionGraceMs?: number
  /** Human name used in templates and reports; defaults to the host name. */
  name?: string
  mdns?: boolean
  swarmKey?: Uint8Array
  mesh?: string
  transport?: 'tcp' | 'memory'
  memoryLatency?: number
  /** Simulations: delay this node's outbound bytes (latency, loss as retransmission delay). */
  shapeLink?: LinkShaper
  /** Simulations: libp2p's per-host inbound connection limits (many agents share one address). */
  inboundLimits?: NetOptions['inboundLimits']
  reapplyInterval?: number
  syncInterval?: number
  /** Mean time between presence beacons; 0 disables them. */
  beaconInterval?: number
  targetPeers?: number
  /**
   * Envelopes over this many bytes are announced (signed header) and fetched by each node,
   * instead of gossiped whole; 0 or Infinity gossips every envelope whole. Default 16 KiB.
   */
  announceThreshold?: number
  logger?: Logger
  now?: () => number
  random?: () => number
  /** Tests: the agent's timers (periodic tasks, beacons, sync rounds) through a fake. */
  setTimer?: SetTimer
  /** Collect process-wide metrics too (CPU, memory); off in simulations hosting many agents. */
  processMetrics?: boolean
}

export interface AgentEvents {
  accepted: [{ envelope: VerifiedEnvelope, via: Via, from?: string }]
  rejected: [Refusal]
  applied: [{ envelope: VerifiedEnvelope, report: ApplyReport }]
  'not-targeted': [{ envelope: VerifiedEnvelope }]
  sync: [SyncRound]
  fetch: [FetchRound]
  conflict: [ConflictRecord]
  fork: [ForkRecord]
  report: [NodeReport]
}

