import type { VerifiedEnvelope } from '../envelope/index.js'
import type { NodeReport } from '../receipt/index.js'
import type { ApplyReport } from '../apply/index.js'
import type { FetchRound, SyncRound } from '../sync/index.js'
import type { LinkShaper, NetOptions } from '../net/libp2p.js'
import type { Logger } from './logger.js'
import type { SetTimer } from './clock.js'
import type { StateWriter } from '../store/index.js'
import type { Via } from './rules.js'
import type { ConflictRecord, ForkRecord } from './book.js'
import type { Refusal } from './intake.js'
import { multiaddr, peerIdFromString } from '../net/libp2p.js'
import { AgentOptionsError } from './errors.js'
import type { ServiceRuntime } from '../apply/system.js'
import { resolve } from 'node:path'

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
  /** Custom facts: `*.json`, `*.yaml` and `*.yml` here (default /etc/grapevine/facts.d; docs/facts.md). */
  factsDir?: string
  /**
   * `sandbox` (`--sandbox-services`): for rehearsals under a sandbox root, services' running state
   * is recorded in ROOT/run/grapevine/services/ instead of asking systemd; enablement stays
   * systemctl --root. Default `systemd`; refused with root `/`.
   */
  serviceRuntime?: ServiceRuntime
  /** Simulations and tests: these facts, as they are, instead of gathering any. */
  facts?: Record<string, unknown>
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
  /** While this node bakes in a running rollout stage, how often it re-applies (and so re-runs the checks); 0 disables. */
  bakeCheckInterval?: number
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
  /** Tests: the state directory's writes through a fake (a full disk, an I/O error). */
  stateWriter?: StateWriter
  /** Collect process-wide metrics too (CPU, memory); off in simulations hosting many agents. */
  processMetrics?: boolean
}

export interface AgentEvents {
  accepted: [{ envelope: VerifiedEnvelope, via: Via, from?: string }]
  rejected: [Refusal]
  applied: [{ envelope: VerifiedEnvelope, report: ApplyReport }]
  'not-targeted': [{ envelope: VerifiedEnvelope }]
  /** Targeted, but its secrets are not sealed to this node's key: not applied. */
  sealed: [{ envelope: VerifiedEnvelope, why: string }]
  sync: [SyncRound]
  fetch: [FetchRound]
  conflict: [ConflictRecord]
  fork: [ForkRecord]
  report: [NodeReport]
}


/** Where a TCP agent can listen, and what it can dial: an IP (or, to dial, a DNS name) then a TCP port. */
const LISTEN_HOSTS = new Set(['ip4', 'ip6'])
const DIAL_HOSTS = new Set(['ip4', 'ip6', 'dns', 'dns4', 'dns6'])

/**
 * Checks every option before the agent starts anything, so a flag that cannot work is refused
 * with a reason (the CLI exits 64) instead of starting a node that listens nowhere, dials
 * nobody or never repairs drift. Throws AgentOptionsError naming the option and the value.
 */
export function checkAgentOptions (opts: AgentOptions): void {
  const tcp = (opts.transport ?? 'tcp') === 'tcp'
  for (const addr of opts.listen ?? []) {
    const names = protocolsOf('--listen', addr)
    if (tcp && (!LISTEN_HOSTS.has(names[0] ?? '') || names[1] !== 'tcp' || names.length !== 2)) {
      throw new AgentOptionsError('listen', `--listen ${JSON.stringify(addr)}: expected an IP address and a TCP port, such as /ip4/0.0.0.0/tcp/7410 or /ip6/::/tcp/7410`)
    }
  }
  checkBootstrap(opts.bootstrap ?? [], tcp)
  const nonNegative = (option: keyof AgentOptions, flag: string, value: number | undefined): void => {
    if (value !== undefined && !(value >= 0)) throw new AgentOptionsError(option, `${flag} must be 0 or more (0 disables): got ${value}`)
  }
  if (opts.serviceRuntime === 'sandbox' && resolve(opts.root) === '/') throw new AgentOptionsError('serviceRuntime', '--sandbox-services is for rehearsals under a sandbox --root DIR; on / services run through systemd')
  nonNegative('reapplyInterval', 'reapplyInterval (ms)', opts.reapplyInterval)
  nonNegative('bakeCheckInterval', 'bakeCheckInterval (ms)', opts.bakeCheckInterval)
  nonNegative('syncInterval', 'syncInterval (ms)', opts.syncInterval)
  nonNegative('beaconInterval', 'beaconInterval (ms)', opts.beaconInterval)
  nonNegative('announceThreshold', '--announce-threshold', opts.announceThreshold)
  if (opts.targetPeers !== undefined && !(Number.isSafeInteger(opts.targetPeers) && opts.targetPeers >= 0)) throw new AgentOptionsError('targetPeers', `targetPeers must be a whole number, 0 or more: got ${opts.targetPeers}`)
  if (opts.mesh !== undefined && opts.mesh.trim() === '') throw new AgentOptionsError('mesh', '--mesh must not be empty')
  for (const key of Object.keys(opts.tags ?? {})) {
    if (key === '') throw new AgentOptionsError('tags', '--tag expects key=value with a key: got an empty key')
  }
}

/** Peers to join through: multiaddrs with a valid /p2p/<peer id>, and for TCP a host and port before it. */
export function checkBootstrap (addrs: readonly string[], tcp = true): void {
  for (const addr of addrs) {
    const names = protocolsOf('--bootstrap', addr)
    let peer: string | undefined
    try {
      peer = multiaddr(addr).getPeerId() ?? undefined
      if (peer !== undefined) peerIdFromString(peer)
    } catch {
      peer = undefined
    }
    if (peer === undefined) throw new AgentOptionsError('bootstrap', `--bootstrap ${JSON.stringify(addr)}: no valid /p2p/<peer id> at the end; the address a peer logs at start ("agent started", addrs) has one`)
    if (tcp && (!DIAL_HOSTS.has(names[0] ?? '') || names[1] !== 'tcp')) {
      throw new AgentOptionsError('bootstrap', `--bootstrap ${JSON.stringify(addr)}: expected a host and a TCP port before /p2p/, such as /ip4/10.0.0.5/tcp/7410/p2p/12D3KooW…`)
    }
  }
}

function protocolsOf (flag: string, addr: string): string[] {
  try {
    return multiaddr(addr).protoNames()
  } catch (err) {
    throw new AgentOptionsError(flag.slice(2), `${flag} ${JSON.stringify(addr)}: not a multiaddr (${(err as Error).message}); expected something like /ip4/127.0.0.1/tcp/7410`)
  }
}
