import { createNet, multiaddr, type GrapevineLibp2p, type PeerId } from '../net/libp2p.js'
import { generateIdentity } from '../net/identity.js'
import { contentHash, signPolicy, validateEnvelope, type SigningKey, type VerifiedEnvelope } from '../envelope/index.js'
import type { Policy } from '../policy/index.js'
import type { DigestEntry } from '../sync/index.js'
import { FleetView, type FleetNode } from '../receipt/index.js'
import { DEFAULT_MESH, policyTopic } from '../node/constants.js'
import { queryEnvelope, queryFleet } from '../query/index.js'
import { serveReceipts, verifyNodeReport } from '../node/receipts.js'
import { isComplete, progressOf, type Progress } from './watch.js'
import { PolicyUnchangedError, PublishError, UnknownPolicyError } from './errors.js'
import { AgentRefusedError, agentJson, agentRequest, errorOf, parseAgentAddress, type AgentEndpoint } from './agent-api.js'

/** How an admin command reaches the mesh: as a short-lived peer through --bootstrap, or through an agent's API. */
export interface MeshTarget {
  bootstrap?: string[]
  /** An agent's local API: `unix:/path`, a socket path, `http://host:port`, or an endpoint with its token. */
  agent?: string | AgentEndpoint
  mesh?: string
  swarmKey?: Uint8Array
  transport?: 'tcp' | 'memory'
  signal?: AbortSignal
}

export interface Delivery {
  /** Peers (or the agent URL) that confirmed holding the envelope. */
  confirmedBy: string[]
  /** Another envelope holds this version (two admins at once): its content hash won. */
  conflict?: { winner: string, ours: string, version: number }
}

/** What admin commands need from the mesh, whichever way they reach it. */
export interface MeshClient {
  /** The newest version the mesh holds for a name. */
  current: (name: string) => Promise<DigestEntry | undefined>
  /** The newest version of every name the mesh holds (as current() judges each). */
  heads: () => Promise<DigestEntry[]>
  deliver: (envelope: VerifiedEnvelope) => Promise<Delivery>
  fleet: () => Promise<FleetNode[]>
  envelope: (name: string, version: number) => Promise<Uint8Array | undefined>
  close: () => Promise<void>
}

const DEFAULT_TIMEOUT_MS = 30_000
/** Peers a publisher asks for a name's head before it builds on it (docs/versions.md). */
const HEAD_WITNESSES = 3
/** Peer hints kept from the agents' sync answers. */
const MAX_HINTS = 64

export async function connectMesh (target: MeshTarget): Promise<MeshClient> {
  if (target.agent !== undefined) return agentClient(typeof target.agent === 'string' ? parseAgentAddress(target.agent) : target.agent, target.signal)
  const addrs = target.bootstrap ?? []
  if (addrs.length === 0) throw new PublishError('give --bootstrap MULTIADDR (any agent of the mesh) or --agent URL')
  return await peerClient(addrs, target)
}

/**
 * A peer that stores and applies nothing: it learns digests, offers one envelope, and asks
 * queries. Receipts for the envelope it offers are routed back to it (node/receipts.ts), so its
 * fleet view is the agents' views with those receipts on top.
 */
async function peerClient (addrs: string[], target: MeshTarget): Promise<MeshClient> {
  let offered: VerifiedEnvelope | undefined
  /** Peers the agents reached offered in their sync answers: more witnesses for the head. */
  const hints = new Map<string, string[]>()
  const net: GrapevineLibp2p = await createNet({
    privateKey: await generateIdentity(),
    listen: [],
    transport: target.transport,
    swarmKey: target.swarmKey,
    scoredTopics: [],
    sync: {
      interval: 0,
      source: {
        wantsEnvelopes: false,
        digest: () => offered === undefined ? [] : [{ name: offered.name, version: offered.version, hash: offered.hash, id: offered.id }],
        envelope: (n) => n === offered?.name ? offered.bytes : undefined,
        ingest: async () => 'ignored',
        onPeerHints: (hs) => { for (const h of hs) if (hints.size < MAX_HINTS) hints.set(h.id, h.addrs) }
      }
    }
  })
  const signal = (): AbortSignal => target.signal ?? AbortSignal.timeout(DEFAULT_TIMEOUT_MS)
  const mesh = target.mesh ?? DEFAULT_MESH
  net.services.pubsub.subscribe(policyTopic(mesh))
  const receipts = new FleetView()
  await serveReceipts(net, (bytes) => {
    const report = verifyNodeReport(bytes)
    if (report?.kind !== 'receipt') return false
    receipts.add(report)
    return true
  })
  let peers: PeerId[]
  try {
    const conns = (await Promise.allSettled(addrs.map(async (a) => await net.dial(multiaddr(a), { signal: signal() }))))
    peers = conns.flatMap((r) => r.status === 'fulfilled' ? [r.value.remotePeer] : [])
    if (peers.length === 0) {
      const why = conns.map((r) => r.status === 'rejected' ? (r.reason as Error).message : '').filter((m) => m !== '')
      throw new PublishError(`could not reach any of: ${addrs.join(', ')}${why.length > 0 ? ` (${why[0]})` : ''}`)
    }
  } catch (err) {
    await net.stop()
    throw err
  }
  const digests = async (): Promise<Array<{ peer: PeerId, digest: DigestEntry[] }>> => {
    // A round is skipped while the on-connect sync with that peer is still running, so retry briefly.
    for (let attempt = 0; ; attempt++) {
      const rounds = await Promise.allSettled(peers.map(async (p) => ({ peer: p, round: await net.services.sync.syncWith(p, { signal: signal() }) })))
      const got = rounds.flatMap((r) => r.status === 'fulfilled' && r.value.round.remoteDigest !== undefined ? [{ peer: r.value.peer, digest: r.value.round.remoteDigest }] : [])
      if (got.length > 0 || attempt >= 20) return got
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  // With fewer than HEAD_WITNESSES peers reached, dial some of the peers they offered, so the
  // head is never one peer's word while the mesh has more to ask.
  const widen = async (): Promise<void> => {
    const known = new Set([...peers.map((p) => p.toString()), net.peerId.toString()])
    const extra = [...hints].filter(([id]) => !known.has(id)).slice(0, Math.max(0, HEAD_WITNESSES - peers.length))
    const dialed = await Promise.allSettled(extra.map(async ([id, a]) => await net.dial(a.map((x) => multiaddr(x.includes('/p2p/') ? x : `${x}/p2p/${id}`)), { signal: signal() })))
    for (const r of dialed) if (r.status === 'fulfilled') peers.push(r.value.remotePeer)
  }
  const firstAnswer = async <T>(fn: (p: PeerId) => Promise<T>): Promise<T> => {
    let last: unknown
    for (const p of peers) {
      try { return await fn(p) } catch (err) { last = err }
    }
    throw new PublishError(`no agent answered: ${(last as Error)?.message ?? 'unknown error'}`)
  }
  return {
    current: async (name) => {
      if (peers.length < HEAD_WITNESSES) {
        await digests()
        await widen()
      }
      const ds = await digests()
      if (ds.length === 0) throw new PublishError('no agent answered the sync request')
      return meshHead(name, ds.map(({ peer, digest }) => ({ peer: peer.toString(), entry: digest.find((e) => e.name === name) })))
    },
    heads: async () => {
      const ds = await digests()
      if (ds.length === 0) throw new PublishError('no agent answered the sync request')
      const names = new Set(ds.flatMap(({ digest }) => digest.map((e) => e.name)))
      return [...names].sort().flatMap((name) => {
        try {
          const head = meshHead(name, ds.map(({ peer, digest }) => ({ peer: peer.toString(), entry: digest.find((e) => e.name === name) })))
          return head === undefined ? [] : [head]
        } catch {
          // Peers that disagree on a name's head: current() says so when that name is asked for.
          return []
        }
      })
    },
    deliver: async (envelope) => {
      offered = envelope
      await net.services.pubsub.publish(policyTopic(mesh), envelope.bytes).catch(() => {})
      // Sync pushes it to each peer, whose digest then confirms it: a publish is never lost because we left first.
      let answered: Held[] = []
      for (let attempt = 0; attempt < 5; attempt++) {
        const confirmedBy: string[] = []
        let conflict: Delivery['conflict']
        const round = await digests()
        answered = round.map(({ peer, digest }) => ({ peer: peer.toString(), held: digest.find((e) => e.name === envelope.name) }))
        for (const { peer, digest } of round) {
          const held = digest.find((e) => e.name === envelope.name)
          if (held === undefined) continue
          if (held.id === envelope.id || (held.version === envelope.version && held.hash === envelope.hash)) confirmedBy.push(peer.toString())
          else if (held.version === envelope.version) {
            conflict = { winner: held.hash, ours: envelope.hash, version: held.version }
            confirmedBy.push(peer.toString())
          } else if (held.version > envelope.version) {
            throw new PublishError(`${envelope.name} v${held.version} reached the mesh first; v${envelope.version} is superseded`)
          }
        }
        if (confirmedBy.length > 0) return { confirmedBy, ...(conflict !== undefined ? { conflict } : {}) }
      }
      throw new PublishError(whyUnconfirmed(envelope, answered))
    },
    fleet: async () => {
      for (const node of await firstAnswer(async (p) => await queryFleet(net, p, signal()))) receipts.merge(node)
      return receipts.list()
    },
    // A peer that has pruned the version answers "none": ask the next one before saying nobody holds it.
    envelope: async (name, version) => {
      let failed: unknown
      let answered = false
      for (const p of peers) {
        try {
          const bytes = await queryEnvelope(net, p, name, version, signal())
          if (bytes !== undefined) return bytes
          answered = true
        } catch (err) { failed = err }
      }
      if (!answered) throw new PublishError(`no agent answered: ${(failed as Error)?.message ?? 'unknown error'}`)
      return undefined
    },
    close: async () => { await net.stop() }
  }
}

interface Held { peer: string, held?: DigestEntry }

/**
 * Why no peer holds the envelope it was offered, as far as their digests tell: an agent does
 * not say why it refused an envelope over the mesh, only through its local API.
 */
function whyUnconfirmed (envelope: VerifiedEnvelope, answered: Held[]): string {
  if (answered.length === 0) return `no agent answered the sync request, so none confirmed ${envelope.name} v${envelope.version} (are --mesh and --swarm-key those of the agents?)`
  const holdings = answered.map((a) => `${a.peer.slice(-8)} holds ${a.held === undefined ? 'no version' : `v${a.held.version}`}`).join(', ')
  return `no peer took ${envelope.name} v${envelope.version} signed by ${envelope.signer} (${holdings}). ` +
    'Agents refuse an envelope whose signer is neither one of their --trust roots nor an admin of their trust policy, ' +
    'whose name is outside that admin\'s scope, or whose signer is revoked; each agent logs the refusal ("envelope refused", with the reason). ' +
    'Publish through an agent\'s local API (on its host: no --bootstrap, or --agent) to have the reason back.'
}

/**
 * The mesh through one agent's local API. A publish is taken exactly as gossip would take it:
 * a refusal comes back with the agent's named reason, and a valid envelope the agent did not
 * take (older, or the loser of a conflict) with the version it holds.
 */
function agentClient (endpoint: AgentEndpoint, outer?: AbortSignal): MeshClient {
  const signal = (): AbortSignal => outer ?? AbortSignal.timeout(DEFAULT_TIMEOUT_MS)
  return {
    current: async (name) => {
      const status = await agentJson<{ policies: Array<{ name: string, version: number, hash: string, id: string }> }>(endpoint, '/status', signal())
      return status.policies.find((p) => p.name === name)
    },
    heads: async () => {
      const status = await agentJson<{ policies: Array<{ name: string, version: number, hash: string, id: string }> }>(endpoint, '/status', signal())
      return status.policies.map((p) => ({ name: p.name, version: p.version, hash: p.hash, id: p.id }))
    },
    deliver: async (envelope) => {
      const res = await agentRequest(endpoint, '/publish', { method: 'POST', body: envelope.bytes, signal: signal() })
      const confirmed = { confirmedBy: [endpoint.display] }
      if (res.status === 200) return confirmed
      const { error, reason } = errorOf(res)
      if (res.status === 409) {
        const held = (JSON.parse(res.body.toString('utf8')) as { current?: { version: number, hash: string, id: string } }).current
        if (held !== undefined && (held.id === envelope.id || (held.version === envelope.version && held.hash === envelope.hash))) return confirmed
        if (held?.version === envelope.version) return { ...confirmed, conflict: { winner: held.hash, ours: envelope.hash, version: held.version } }
        if (held !== undefined && held.version > envelope.version) throw new AgentRefusedError(`${envelope.name} v${held.version} is already held; v${envelope.version} was ignored as older`, reason)
        throw new AgentRefusedError(`the agent at ${endpoint.display} did not take it: ${error}`, reason)
      }
      throw new AgentRefusedError(`the agent at ${endpoint.display} refused ${envelope.name} v${envelope.version} (${reason}): ${error}`, reason)
    },
    fleet: async () => await agentJson<FleetNode[]>(endpoint, '/fleet', signal()),
    envelope: async (name, version) => {
      const res = await agentRequest(endpoint, `/envelope?name=${encodeURIComponent(name)}&version=${version}`, { signal: signal() })
      if (res.status === 404) return undefined
      if (res.status !== 200) {
        const { error, reason } = errorOf(res)
        throw new AgentRefusedError(`${endpoint.display}/envelope: ${error}`, reason)
      }
      return new Uint8Array(res.body)
    },
    close: async () => {}
  }
}

export interface PublishOptions {
  policy: Policy
  key: SigningKey
  /** Sign exactly this version; by default the next after the newest the mesh holds. */
  version?: number
  /** A reason to replace whatever nodes hold, chain or not; the audit trail records it. */
  force?: string
  /**
   * Without `force`, sign nothing when the mesh's newest version already has this content:
   * throw PolicyUnchangedError instead of bumping the version (and re-applying everywhere)
   * for nothing. The CLI sets it; `--force REASON` republishes anyway.
   */
  skipUnchanged?: boolean
  /** Sign it staged: nodes apply it only as its rollout record includes them (docs/rollout.md). */
  staged?: boolean
  now?: () => number
}

export interface PublishResult extends Delivery {
  envelope: VerifiedEnvelope
  previous?: { version: number, hash: string }
}

/** A signed envelope not yet delivered, and the head it builds on. */
export interface PreparedPublish {
  envelope: VerifiedEnvelope
  previous?: DigestEntry
}

/**
 * Learns the current version from the mesh and signs the next, without sending it: a staged
 * rollout signs the policy first, so its record can name the envelope, and delivers the record
 * before the policy (src/client/rollout.ts).
 */
export async function preparePublish (client: MeshClient, opts: PublishOptions): Promise<PreparedPublish> {
  const previous = await client.current(opts.policy.name)
  // A tombstone for a name nobody holds would only bring the name into being, retired.
  if (opts.policy.kind === 'retired' && previous === undefined) throw new UnknownPolicyError(opts.policy.name)
  if (opts.skipUnchanged === true && opts.force === undefined && previous !== undefined && previous.hash === contentHash(opts.policy)) {
    throw new PolicyUnchangedError(opts.policy.name, previous)
  }
  const version = opts.version ?? (previous?.version ?? 0) + 1
  if (previous !== undefined && previous.version > version) {
    throw new PublishError(`the mesh already holds ${opts.policy.name} v${previous.version}; v${version} would be ignored as older (omit --version to publish v${previous.version + 1})`)
  }
  // The new version names the one it supersedes, so nodes take it along the chain (docs/versions.md).
  const bytes = signPolicy(opts.policy, { version, key: opts.key, now: opts.now, ...(previous !== undefined ? { prev: previous.id } : {}), ...(opts.force !== undefined ? { force: opts.force } : {}), ...(opts.staged === true ? { staged: true } : {}) })
  return { envelope: validateEnvelope(bytes, { authorize: () => {} }), ...(previous !== undefined ? { previous } : {}) }
}

/** Delivers a prepared envelope: gossiped, and confirmed by at least one other peer. */
export async function deliverPrepared (client: MeshClient, prepared: PreparedPublish): Promise<PublishResult> {
  const delivery = await client.deliver(prepared.envelope)
  const previous = prepared.previous
  return { envelope: prepared.envelope, ...delivery, ...(previous !== undefined ? { previous: { version: previous.version, hash: previous.hash } } : {}) }
}

/**
 * Learns the current version from the mesh, signs the next, and delivers it: gossiped, and
 * confirmed by at least one other peer before this returns.
 */
export async function publishPolicy (client: MeshClient, opts: PublishOptions): Promise<PublishResult> {
  return await deliverPrepared(client, await preparePublish(client, opts))
}

/**
 * The head of a name as several peers report it, never one peer's word (docs/versions.md):
 * the newest version at least two peers hold, or what the only peer answering holds. A claim
 * no other peer backs (a malicious bootstrap offering "v999") is refused, not built upon.
 */
export function meshHead (name: string, answers: Array<{ peer: string, entry?: DigestEntry }>): DigestEntry | undefined {
  const held = answers.flatMap((a) => a.entry !== undefined ? [{ peer: a.peer, entry: a.entry }] : [])
  if (held.length === 0) return undefined
  if (answers.length === 1) return held[0]?.entry
  const backers = new Map<string, { entry: DigestEntry, peers: number }>()
  for (const { entry } of held) {
    const b = backers.get(entry.id)
    if (b !== undefined) b.peers++
    else backers.set(entry.id, { entry, peers: 1 })
  }
  const sorted = [...backers.values()].sort((a, b) => b.entry.version - a.entry.version)
  const backed = sorted.find((b) => b.peers >= 2) ?? (held.length === 1 ? sorted[0] : undefined)
  const top = sorted[0] as { entry: DigestEntry, peers: number }
  if (backed === undefined || top.entry.version - backed.entry.version > 0) {
    const claims = sorted.map((b) => `v${b.entry.version} (${b.entry.id.slice(0, 12)}…, ${b.peers} peer${b.peers === 1 ? '' : 's'})`).join(', ')
    throw new PublishError(`the peers disagree on the newest ${name}: ${claims}; no version is held by two of them. Publish through more peers (--bootstrap more than one), or through your own agent (--agent)`)
  }
  return backed.entry
}

export interface WaitOptions {
  timeoutMs: number
  expect?: number
  pollMs?: number
  /** A node not heard from for this long is stale, not waited for (default NODE_STALE_AFTER_MS). */
  staleAfterMs?: number
  /** Ends the wait early (Ctrl-C): the result is what is known by then, `interrupted`. */
  signal?: AbortSignal
  now?: () => number
  onProgress?: (p: Progress) => void
}

export interface WaitResult {
  progress: Progress
  timedOut: boolean
  interrupted: boolean
}

/** Watches the fleet's receipts for one envelope until every known live targeted node reported, `expect` is met, time runs out or `signal` ends it. */
export async function waitForFleet (client: MeshClient, envelope: VerifiedEnvelope, opts: WaitOptions): Promise<WaitResult> {
  const now = opts.now ?? Date.now
  const deadline = now() + opts.timeoutMs
  const signal = opts.signal ?? new AbortController().signal
  const look = async (): Promise<Progress> => progressOf(await client.fleet(), envelope.policy, envelope.version, envelope.hash, { now: now(), staleAfterMs: opts.staleAfterMs })
  let progress = await look()
  for (;;) {
    opts.onProgress?.(progress)
    if (isComplete(progress, opts.expect)) return { progress, timedOut: false, interrupted: false }
    if (signal.aborted) return { progress, timedOut: false, interrupted: true }
    if (now() >= deadline) return { progress, timedOut: true, interrupted: false }
    await abortableSleep(Math.min(opts.pollMs ?? 300, Math.max(0, deadline - now())), signal)
    if (signal.aborted) return { progress, timedOut: false, interrupted: true }
    // An answer still on its way when the wait is ended is not waited for: what is known is shown.
    const next = await untilAborted(look(), signal)
    if (next === undefined) return { progress, timedOut: false, interrupted: true }
    progress = next
  }
}

async function abortableSleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

async function untilAborted<T> (work: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  let stop = (): void => {}
  const aborted = new Promise<undefined>((resolve) => {
    stop = () => { resolve(undefined) }
    signal.addEventListener('abort', stop, { once: true })
  })
  try {
    return await Promise.race([work, aborted])
  } finally {
    signal.removeEventListener('abort', stop)
  }
}
