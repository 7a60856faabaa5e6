import { createNet, generateIdentity, multiaddr, type GrapevineLibp2p } from '../net/libp2p.js'
import { signPolicy, validateEnvelope, type SigningKey, type VerifiedEnvelope } from '../envelope/index.js'
import type { Policy } from '../policy/index.js'
import type { DigestEntry } from '../sync/index.js'
import { DEFAULT_MESH, policyTopic, receiptTopic } from './constants.js'

export interface PublishTarget {
  /** Join the mesh as a short-lived peer through these multiaddrs... */
  bootstrap?: string[]
  /** ...or hand the envelope to an agent's local API. */
  agent?: string
  mesh?: string
  swarmKey?: Uint8Array
  transport?: 'tcp' | 'memory'
}

export interface PublishOptions extends PublishTarget {
  policy: Policy
  key: SigningKey
  /** Sign exactly this version; by default the next after the newest the mesh holds. */
  version?: number
  now?: () => number
  signal?: AbortSignal
}

export interface PublishResult {
  envelope: VerifiedEnvelope
  /** The newest version the mesh held before this publish, if any. */
  previous?: { version: number, hash: string }
  /** Peers (or the agent) confirmed to hold the envelope. */
  confirmedBy: string[]
  /** When another envelope already holds this version (two admins at once), who won. */
  conflict?: { winner: string, ours: string, version: number }
  /** The publisher's session; present while `--wait` keeps listening, closed by `close()`. */
  session?: PublisherSession
}

export class PublishError extends Error {
  static override name = 'PublishError'
  override name = 'PublishError'
}

/** A short-lived mesh peer used by publish (and fleet/wait views), kept open by the caller. */
export interface PublisherSession {
  net: GrapevineLibp2p
  close: () => Promise<void>
}

function newestFor (name: string, digests: DigestEntry[][]): DigestEntry | undefined {
  let best: DigestEntry | undefined
  for (const d of digests) for (const e of d) if (e.name === name && (best === undefined || e.version > best.version)) best = e
  return best
}

/** Joins the mesh without storing or applying anything: it only learns digests and offers its envelope. */
export async function joinAsPublisher (target: PublishTarget, offer: () => Uint8Array | undefined, name: () => string | undefined): Promise<PublisherSession> {
  const mesh = target.mesh ?? DEFAULT_MESH
  const net = await createNet({
    privateKey: await generateIdentity(),
    listen: [],
    transport: target.transport,
    swarmKey: target.swarmKey,
    scoredTopics: [],
    sync: {
      interval: 0,
      source: {
        wantsEnvelopes: false,
        digest: () => {
          const bytes = offer()
          if (bytes === undefined) return []
          const env = validateEnvelope(bytes, { authorize: () => {} })
          return [{ name: env.name, version: env.version, hash: env.hash, id: env.id }]
        },
        envelope: (n) => n === name() ? offer() : undefined,
        ingest: async () => 'ignored'
      }
    }
  })
  net.services.pubsub.subscribe(policyTopic(mesh))
  net.services.pubsub.subscribe(receiptTopic(mesh))
  return { net, close: async () => { await net.stop() } }
}

/**
 * Publishes a policy from anywhere that reaches one agent. It learns the current version from
 * the mesh, signs the next one, gossips it, and does not return until at least one other peer
 * confirms (in its own digest) that it holds the envelope — so a publish is never lost because
 * the publisher left first.
 */
export async function publishPolicy (opts: PublishOptions & { keepOpen?: boolean }): Promise<PublishResult> {
  if (opts.agent !== undefined) return await publishViaAgent(opts)
  const addrs = opts.bootstrap ?? []
  if (addrs.length === 0) throw new PublishError('give --bootstrap MULTIADDR (any agent of the mesh) or --agent URL')
  let bytes: Uint8Array | undefined
  const session = await joinAsPublisher(opts, () => bytes, () => opts.policy.name)
  const signal = opts.signal ?? AbortSignal.timeout(30_000)
  try {
    const conns = (await Promise.allSettled(addrs.map(async (a) => await session.net.dial(multiaddr(a), { signal })))).flatMap((r) => r.status === 'fulfilled' ? [r.value] : [])
    if (conns.length === 0) throw new PublishError(`could not reach any of: ${addrs.join(', ')}`)
    const peers = conns.map((c) => c.remotePeer)
    // Learn what the mesh holds.
    const before = await Promise.allSettled(peers.map(async (p) => await session.net.services.sync.syncWith(p, { signal })))
    const digests = before.flatMap((r) => r.status === 'fulfilled' && r.value.remoteDigest !== undefined ? [r.value.remoteDigest] : [])
    if (digests.length === 0) throw new PublishError('no agent answered the sync request')
    const previous = newestFor(opts.policy.name, digests)
    const version = opts.version ?? (previous?.version ?? 0) + 1
    bytes = signPolicy(opts.policy, { version, key: opts.key, now: opts.now })
    const envelope = validateEnvelope(bytes, { authorize: () => {} })
    if (previous !== undefined && previous.version > version) {
      throw new PublishError(`the mesh already holds ${opts.policy.name} v${previous.version}; v${version} would be ignored as older`)
    }
    await session.net.services.pubsub.publish(policyTopic(opts.mesh ?? DEFAULT_MESH), bytes).catch(() => {})
    // Deliver by sync too and confirm from the peer's own digest.
    const confirmedBy: string[] = []
    let conflict: PublishResult['conflict']
    for (let attempt = 0; attempt < 5 && confirmedBy.length === 0; attempt++) {
      for (const p of peers) {
        const round = await session.net.services.sync.syncWith(p, { signal }).catch(() => undefined)
        const held = round?.remoteDigest?.find((e) => e.name === envelope.name)
        if (held === undefined) continue
        if (held.id === envelope.id) confirmedBy.push(p.toString())
        else if (held.version === envelope.version && held.hash !== envelope.hash) {
          conflict = { winner: held.hash, ours: envelope.hash, version: held.version }
          confirmedBy.push(p.toString())
        } else if (held.version > envelope.version) {
          throw new PublishError(`${envelope.name} v${held.version} reached the mesh first; v${envelope.version} is superseded`)
        }
      }
    }
    if (confirmedBy.length === 0) throw new PublishError('no peer confirmed holding the envelope')
    const result: PublishResult = { envelope, confirmedBy, ...(previous !== undefined ? { previous: { version: previous.version, hash: previous.hash } } : {}), ...(conflict !== undefined ? { conflict } : {}) }
    if (opts.keepOpen === true) return { ...result, session }
    await session.close()
    return result
  } catch (err) {
    await session.close()
    throw err
  }
}

async function publishViaAgent (opts: PublishOptions): Promise<PublishResult> {
  const base = (opts.agent as string).replace(/\/$/, '')
  const signal = opts.signal ?? AbortSignal.timeout(30_000)
  let previous: PublishResult['previous']
  if (opts.version === undefined) {
    const status = await fetchJson(`${base}/status`, { signal }) as { policies: Array<{ name: string, version: number, hash: string }> }
    const held = status.policies.find((p) => p.name === opts.policy.name)
    if (held !== undefined) previous = { version: held.version, hash: held.hash }
  }
  const version = opts.version ?? (previous?.version ?? 0) + 1
  const bytes = signPolicy(opts.policy, { version, key: opts.key, now: opts.now })
  const envelope = validateEnvelope(bytes, { authorize: () => {} })
  const res = await fetchJson(`${base}/publish`, { method: 'POST', body: Buffer.from(bytes), signal }) as {
    outcome: string, current?: { version: number, hash: string, id: string }
  }
  if (res.outcome === 'rejected') throw new PublishError(`the agent refused the envelope (see its log for the reason: untrusted or out-of-scope key?)`)
  const current = res.current
  if (res.outcome !== 'accepted' && current !== undefined && current.id !== envelope.id) {
    if (current.version === version && current.hash !== envelope.hash) {
      return { envelope, confirmedBy: [base], conflict: { winner: current.hash, ours: envelope.hash, version }, ...(previous !== undefined ? { previous } : {}) }
    }
    throw new PublishError(`${envelope.name} v${current.version} is already held; v${version} was ignored`)
  }
  return { envelope, confirmedBy: [base], ...(previous !== undefined ? { previous } : {}) }
}

async function fetchJson (url: string, init: RequestInit): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(url, init)
  } catch (err) {
    throw new PublishError(`cannot reach the agent at ${url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`)
  }
  const body = await res.json().catch(() => ({})) as { error?: string }
  if (!res.ok && res.status !== 422) throw new PublishError(`${url}: HTTP ${res.status}${body.error !== undefined ? `: ${body.error}` : ''}`)
  return body
}
