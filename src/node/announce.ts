import { decodeAnnouncement, verifyAnnouncement, matchesAnnouncement, type Announcement } from '../envelope/index.js'
import { TopicValidatorResult, peerIdFromString, type GrapevineLibp2p, type PeerId } from '../net/libp2p.js'
import type { AntiEntropy, FetchRequest } from '../sync/index.js'
import type { AgentMetrics } from './metrics.js'
import type { Logger } from './logger.js'
import type { PolicyBook } from './book.js'
import { TRUST_REFUSALS, type Intake } from './intake.js'
import { fetchCandidates } from './rules.js'
import { FairQueue } from './fair-queue.js'

/**
 * Announced bodies fetched at once, in all and per announcing peer, and announcements one peer
 * may have waiting for a fetch. An honest announcer's envelope waits for at most a round of the
 * others' fetches, however many a flooding peer (or a compromised admin) announced; past the
 * backlog an announcement is ignored, and anti-entropy brings what was real.
 */
export const FETCH_LIMITS = { total: 8, perKey: 2, queuedPerKey: 64 }

export interface FetcherComponents {
  book: Pick<PolicyBook, 'get' | 'trust' | 'versionConflict'>
  intake: Pick<Intake, 'take' | 'refuse' | 'conflict'>
  /** Connected peers, the sync service's fetch (bytes, unverified, or undefined), and hang-ups. */
  net: Pick<GrapevineLibp2p, 'getPeers' | 'hangUp'> & { services: { sync: Pick<AntiEntropy, 'fetch'> } }
  random: () => number
  metrics: Pick<AgentMetrics, 'announcements' | 'envelopesIgnored'>
  log: Logger
  signal: AbortSignal
}

/**
 * Announce-and-fetch: large envelopes gossip as a signed header, and each node fetches the
 * body once, from the announcer or else from other peers (rules.fetchCandidates).
 */
export class Fetcher {
  /** Announced envelopes being fetched, by what was announced: one fetch however many copies arrive. */
  private readonly fetching = new Map<string, Promise<TopicValidatorResult>>()
  /** Fetches take turns by the peer that announced them (FETCH_LIMITS). */
  private readonly queue = new FairQueue(FETCH_LIMITS)

  constructor (private readonly c: FetcherComponents) {}

  /**
   * The gossip validator for announcements. Cheapest first: size and decode, the version rule
   * against what is held (a replay costs no crypto), signature and trust, then one fetch of the
   * body. Accept only once the body is held, so gossipsub relays the announcement only from
   * nodes that can serve it. Never throws.
   */
  async validate (bytes: Uint8Array, peer: PeerId): Promise<TopicValidatorResult> {
    const from = peer.toString()
    this.c.metrics.announcements.inc({ result: 'received' })
    let ann: Announcement
    try {
      ann = decodeAnnouncement(bytes)
      const current = this.c.book.get(ann.name)
      if (current !== undefined) {
        if (ann.version < current.version) return this.ignored('older')
        if (ann.version === current.version) {
          if (ann.hash === current.hash) return this.ignored('duplicate')
          if (ann.hash < current.hash) {
            // The loser of a same-version conflict: record it (once verified), as for a whole envelope.
            verifyAnnouncement(ann, this.c.book.trust)
            const record = this.c.book.versionConflict(ann.name, { version: ann.version, winner: current.hash, loser: ann.hash })
            if (record !== undefined) this.c.intake.conflict(record)
            return this.ignored('conflict-lost')
          }
        }
      }
      verifyAnnouncement(ann, this.c.book.trust)
    } catch (err) {
      const outcome = this.c.intake.refuse(err as Error, 'gossip', from)
      this.c.metrics.announcements.inc({ result: outcome === 'rejected' ? 'rejected' : 'ignored' })
      return outcome === 'rejected' ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    }
    const key = `${ann.name}\n${ann.version}\n${ann.hash}\n${ann.signature}`
    let pending = this.fetching.get(key)
    if (pending === undefined) {
      const queued = this.queue.run(from, async () => await this.fetchAnnounced(ann, from))
      if (queued === undefined) return this.ignored('fetch-backlog')
      pending = queued.finally(() => { this.fetching.delete(key) })
      this.fetching.set(key, pending)
    }
    return await pending
  }

  /** Fetches an announced body from the announcer, else from other connected peers; Ignore if nobody serves it. */
  private async fetchAnnounced (ann: Announcement, from: string): Promise<TopicValidatorResult> {
    const req: FetchRequest = { name: ann.name, version: ann.version, hash: ann.hash }
    const candidates = fetchCandidates(from, this.c.net.getPeers().map((p) => p.toString()), this.c.random)
    for (const peer of candidates) {
      if (this.c.signal.aborted) break
      // Sync (or another path) may have brought it meanwhile.
      const held = this.c.book.get(ann.name)
      if (held !== undefined && matchesAnnouncement(held, ann)) return this.fetched()
      if (held !== undefined && held.version > ann.version) return this.ignored('older')
      let bytes: Uint8Array | undefined
      try {
        bytes = await this.c.net.services.sync.fetch(peerIdFromString(peer), req, { signal: this.c.signal })
      } catch (err) {
        this.c.log.debug({ name: ann.name, version: ann.version, peer, err: (err as Error).message }, 'fetch failed')
        continue
      }
      if (bytes === undefined) continue
      const { outcome, envelope, reason } = this.c.intake.take(bytes, 'gossip', peer, ann)
      if (outcome === 'accepted') return this.fetched()
      if (outcome === 'ignored' && (envelope !== undefined || reason === 'older' || reason === 'duplicate')) {
        // Valid and announced, but not taken: held already (say by sync meanwhile), or superseded.
        const now = this.c.book.get(ann.name)
        return now !== undefined && matchesAnnouncement(now, ann) ? this.fetched() : this.ignored('superseded')
      }
      if (outcome === 'ignored' || !this.allowed(ann) || TRUST_REFUSALS.has(reason ?? '')) {
        // Not the server's fault: checking it failed inside this node (the intake logged the bug),
        // a trust policy taken since the announcement was checked refuses its signer, or the body
        // is the one announced but goes beyond its signer's limits. Every peer would serve these
        // same bytes, so blame none and ask no more.
        this.c.metrics.announcements.inc({ result: 'ignored' })
        return TopicValidatorResult.Ignore
      }
      // It served something else than announced, or garbage: hang up on it, as sync does on a
      // peer whose envelope fails verification, and ask the next one.
      this.c.log.warn({ name: ann.name, version: ann.version, peer }, 'peer served a body that is not the envelope announced; disconnecting')
      await this.c.net.hangUp(peerIdFromString(peer)).catch((err) => { this.c.log.debug({ peer, err: (err as Error).message }, 'hang-up failed') })
    }
    const held = this.c.book.get(ann.name)
    if (held !== undefined && matchesAnnouncement(held, ann)) return this.fetched()
    this.c.metrics.announcements.inc({ result: 'fetch-failed' })
    this.c.log.warn({ name: ann.name, version: ann.version, from, asked: candidates.length }, 'no peer served an announced envelope; anti-entropy will bring it')
    return TopicValidatorResult.Ignore
  }

  /** Whether the trust held now still lets the announcement's signer publish its name. */
  private allowed (ann: Announcement): boolean {
    try {
      this.c.book.trust.authorize(ann.signer, ann.name)
      return true
    } catch {
      return false
    }
  }

  private ignored (reason: string): TopicValidatorResult {
    this.c.metrics.announcements.inc({ result: 'ignored' })
    this.c.metrics.envelopesIgnored.inc({ reason })
    return TopicValidatorResult.Ignore
  }

  private fetched (): TopicValidatorResult {
    this.c.metrics.announcements.inc({ result: 'fetched' })
    return TopicValidatorResult.Accept
  }
}
