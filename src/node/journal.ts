import { StateStore, type HistoryEntry } from '../store/index.js'
import { validateEnvelope, envelopeId, EnvelopeError, type VerifiedEnvelope } from '../envelope/index.js'
import { TRUST_POLICY_NAME } from '../policy/index.js'
import type { Logger } from './logger.js'
import type { PolicyBook, UntrustedRecord } from './book.js'
import { PEER_FAULTS, TRUST_REFUSALS } from './intake.js'
import { systemSetTimer, type Clock } from './clock.js'
import { STATE_RETRY_FIRST_MS, STATE_RETRY_MAX_MS } from './constants.js'

export type JournalStore = Pick<StateStore, 'appendHistory' | 'readHistory'>

export interface JournalComponents {
  store: JournalStore
  log: Logger
  now: () => number
  /** Timers for persist()'s retries (the agent's Clock); plain unref'd timers without. */
  after?: Clock['after']
  /** Ends persist()'s retries: the agent is stopping. */
  signal?: AbortSignal
  /** Counts failed attempts of persist() writes. */
  failures?: { inc: () => void }
}

/** A write persist() keeps retrying: what the status and the metrics show. */
export interface FailingWrite {
  what: string
  error: string
  /** When its first attempt failed. */
  since: string
  attempts: number
}

/** The wait before retry `attempt` (1, 2, …): doubling from STATE_RETRY_FIRST_MS, capped at STATE_RETRY_MAX_MS. */
export function retryDelay (attempt: number): number {
  return Math.min(STATE_RETRY_MAX_MS, STATE_RETRY_FIRST_MS * 2 ** Math.min(attempt - 1, 30))
}

/**
 * The agent's writes to its state directory, one at a time and in order (an envelope before
 * the history line that says it was accepted). A failed write is logged and the chain goes on.
 * History entries carry the time of their event, not the time the write got its turn.
 */
export class Journal {
  private chain: Promise<void> = Promise.resolve()
  private readonly latest = new Map<string, () => Promise<void>>()
  private failingWrite?: FailingWrite
  /** Readers waiting for the queue to drain, told when a write starts being retried instead. */
  private readonly onStall = new Set<() => void>()

  constructor (private readonly c: JournalComponents) {}

  /** The write being retried after a failure (a full or broken state disk), if any. */
  get failing (): FailingWrite | undefined {
    return this.failingWrite === undefined ? undefined : { ...this.failingWrite }
  }

  /**
   * Queues a write that must not be lost (an envelope, before anything is applied from it): a
   * failure (ENOSPC, EIO, EACCES…) is logged, counted and retried with backoff, in its turn,
   * until it succeeds; later writes wait behind it. Resolves once it is written; rejects only if
   * the journal stops (`signal`) first.
   */
  async persist (what: string, fn: () => Promise<void>): Promise<void> {
    const written = this.chain.then(async () => { await this.untilWritten(what, fn) })
    this.chain = written.catch((err) => {
      this.c.log.error({ what, err: (err as Error).message }, 'writing state failed; given up as the agent stops')
    })
    await written
  }

  private async untilWritten (what: string, fn: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await fn()
        if (attempt > 1) this.c.log.info({ what, attempts: attempt }, 'state written after retrying')
        this.failingWrite = undefined
        return
      } catch (err) {
        if (this.c.signal?.aborted === true) throw err
        const delay = retryDelay(attempt)
        const error = (err as Error).message
        this.failingWrite = { what, error, since: this.failingWrite?.what === what ? this.failingWrite.since : new Date(this.c.now()).toISOString(), attempts: attempt }
        this.c.failures?.inc()
        for (const resolve of this.onStall) resolve()
        this.onStall.clear()
        this.c.log.error({ what, err: error, attempt, retryInMs: delay }, 'writing state failed; retrying (nothing is applied from it until it is written)')
        await this.sleep(delay)
      }
    }
  }

  private async sleep (ms: number): Promise<void> {
    const signal = this.c.signal
    if (signal?.aborted === true) return
    await new Promise<void>((resolve) => {
      const done = (): void => {
        cancel()
        signal?.removeEventListener('abort', done)
        resolve()
      }
      const cancel = this.c.after !== undefined ? this.c.after(ms, done) : systemSetTimer(done, ms)
      signal?.addEventListener('abort', done, { once: true })
    })
  }

  /** Queues a state write after every earlier one. */
  write (what: string, fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((err) => {
      this.c.log.error({ what, err: (err as Error).message }, 'writing state failed')
    })
  }

  /**
   * Queues a write of the latest state of something (applied records, the peer list): a write
   * of `key` still waiting for its turn is replaced, not followed by another. The queue then
   * stays as long as the number of keys, however often the state changes (a re-apply every
   * millisecond on a slow disk queued a write per apply before).
   */
  replace (key: string, fn: () => Promise<void>): void {
    const queued = this.latest.has(key)
    this.latest.set(key, fn)
    if (queued) return
    this.write(key, async () => {
      const latest = this.latest.get(key)
      this.latest.delete(key)
      await latest?.()
    })
  }

  /** Queues an audit-trail line, stamped now. */
  history (entry: Omit<HistoryEntry, 'at'>): void {
    const line: HistoryEntry = { at: new Date(this.c.now()).toISOString(), ...entry }
    this.write('history', async () => { await this.c.store.appendHistory(line) })
  }

  /** Resolves once every queued write is done. */
  async idle (): Promise<void> {
    let seen: Promise<void>
    do {
      seen = this.chain
      await seen
    } while (seen !== this.chain)
  }

  /**
   * The history on disk once the lines queued before are written; while a write is being retried
   * (a full disk) what is on disk now, rather than waiting as long as the disk stays full.
   */
  async readHistory (limit?: number): Promise<HistoryEntry[]> {
    if (this.failingWrite === undefined) {
      const stalled = new Promise<void>((resolve) => { this.onStall.add(resolve) })
      await Promise.race([this.idle(), stalled])
    }
    return await this.c.store.readHistory(limit)
  }
}

/**
 * Loads the stored envelopes into the book at start, trust policy first, re-verifying each: a
 * file that no longer verifies because it is corrupt is quarantined, never trusted. Returns
 * the ones refused by the trust policy (a signer revoked while this node was down), for the
 * caller to fall back to an older version.
 */
export async function restoreBook (store: Pick<StateStore, 'loadEnvelopes' | 'quarantine'>, book: Pick<PolicyBook, 'offer' | 'trust'>, log: Logger, now: () => number): Promise<UntrustedRecord[]> {
  const stored = await store.loadEnvelopes()
  const trustFile = stored.find((s) => s.file === StateStore.envelopeFile(TRUST_POLICY_NAME))
  const ordered = trustFile !== undefined ? [trustFile, ...stored.filter((s) => s !== trustFile)] : stored
  const untrusted: UntrustedRecord[] = []
  for (const { file, bytes } of ordered) {
    try {
      book.offer(validateEnvelope(bytes, book.trust))
    } catch (err) {
      const reason = err instanceof EnvelopeError ? err.reason : 'error'
      log.warn({ file, reason, err: (err as Error).message }, 'stored envelope no longer verifies')
      if (PEER_FAULTS.has(reason)) await store.quarantine(file)
      else if (TRUST_REFUSALS.has(reason)) untrusted.push({ ...storedHeader(bytes), reason, error: (err as Error).message, at: new Date(now()).toISOString() })
    }
  }
  return untrusted
}

/** The header fields of an envelope that verified once (it was stored), read without checking it again. */
function storedHeader (bytes: Uint8Array): Pick<UntrustedRecord, 'name' | 'version' | 'hash' | 'signer'> {
  const e = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>
  return { name: String(e.name), version: Number(e.version), hash: String(e.hash), signer: String(e.signer) }
}

/**
 * What a peer that holds `since` needs to reach `held` along the chain: the archived versions
 * between, then `held`, oldest first. When the archive does not link them (the peer is on
 * another branch, or further behind than the archive reaches), only `held`: the peer then
 * sees a fork, not a silent jump.
 */
export async function chainSince (store: Pick<StateStore, 'archivedVersions' | 'loadArchived'>, held: VerifiedEnvelope | undefined, since?: { version: number, id: string }): Promise<Uint8Array[]> {
  if (held === undefined) return []
  if (since === undefined || since.version >= held.version || held.prev === undefined || held.prev === since.id) return [held.bytes]
  const out = [held.bytes]
  let prev: string | undefined = held.prev
  for (const version of await store.archivedVersions(held.name)) {
    if (prev === since.id || prev === undefined || version <= since.version) break
    if (version >= held.version) continue
    const bytes = await store.loadArchived(held.name, version)
    if (bytes === undefined || envelopeId(bytes) !== prev) continue
    out.push(bytes)
    prev = (JSON.parse(new TextDecoder().decode(bytes)) as { prev?: string }).prev
  }
  return prev === since.id ? out.reverse() : [held.bytes]
}
