import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { validateEnvelope, type VerifiedEnvelope } from '../../src/envelope/index.js'
import type { NodeFacts, Policy } from '../../src/policy/index.js'
import type { HistoryEntry, AppliedRecord, KnownPeer, SealedRecord, StateStore } from '../../src/store/index.js'
import { TrustStore } from '../../src/trust/index.js'
import type { PeerId } from '../../src/net/libp2p.js'
import { generateIdentity, peerIdOf } from '../../src/net/identity.js'
import { createClock, type Clock, type ClockInit } from '../../src/node/clock.js'
import { VirtualTime } from '../../src/node/virtual-time.js'
import type { Logger } from '../../src/node/logger.js'
import type { AgentMetrics } from '../../src/node/metrics.js'
import { PolicyBook, type ConflictRecord, type ForkRecord, type UntrustedRecord } from '../../src/node/book.js'
import { Intake, type Refusal } from '../../src/node/intake.js'
import { Journal } from '../../src/node/journal.js'
import { ApplyQueue } from '../../src/node/apply-queue.js'
import type { Via } from '../../src/node/rules.js'
import type { EncryptionKey } from '../../src/secrets/index.js'
import { FIXED_NOW, makeKeys, signed, type SignedOptions } from '../helpers/envelope.js'

/**
 * Fakes of the small components the agent's parts are built over (src/node/*.ts): time you
 * advance by hand, a recording logger and metrics, an in-memory state store. No libp2p.
 */

/** Lets every promise callback queued so far run (and those they queue), without waiting on time. */
export async function settle (): Promise<void> {
  await new Promise<void>((resolve) => { setImmediate(resolve) })
}

export interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (err: Error) => void
}

export function deferred<T = void> (): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (err: Error) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

/** A VirtualTime starting at FIXED_NOW unless told: timers fire only inside advance(). */
export class FakeTime extends VirtualTime {
  constructor (start = FIXED_NOW) {
    super(start)
  }
}

/** A Clock over a FakeTime, with a seeded-or-given random source. */
export function fakeClock (init: Omit<ClockInit, 'now' | 'setTimer'> & { start?: number } = {}): { time: FakeTime, clock: Clock } {
  const time = new FakeTime(init.start)
  const clock = createClock({ now: time.now, setTimer: time.setTimer, random: init.random ?? (() => 0.5), onError: init.onError })
  return { time, clock }
}

export type Level = keyof Logger
export interface LogLine { level: Level, obj: Record<string, unknown>, msg?: string }

/** A Logger that keeps every line. */
export class RecordingLogger implements Logger {
  readonly lines: LogLine[] = []
  readonly debug = this.line('debug')
  readonly info = this.line('info')
  readonly warn = this.line('warn')
  readonly error = this.line('error')

  at (level: Level): LogLine[] {
    return this.lines.filter((l) => l.level === level)
  }

  private line (level: Level) {
    return (obj: object, msg?: string): void => { this.lines.push({ level, obj: obj as Record<string, unknown>, msg }) }
  }
}

type Labels = Record<string, string | number>

/** One metric (counter, gauge or histogram) that records what it was told. */
export class FakeMetric {
  readonly calls: Array<{ op: 'inc' | 'set' | 'observe', labels: Labels, value: number }> = []

  readonly inc = (a?: Labels | number, b?: number): void => { this.record('inc', a, b, 1) }
  readonly set = (a: Labels | number, b?: number): void => { this.record('set', a, b, 0) }
  readonly observe = (a: Labels | number, b?: number): void => { this.record('observe', a, b, 0) }

  /** The sum of the increments whose labels include `labels`. */
  count (labels: Labels = {}): number {
    return this.calls.filter((c) => c.op === 'inc' && Object.entries(labels).every(([k, v]) => c.labels[k] === v)).reduce((n, c) => n + c.value, 0)
  }

  /** The last value set, or undefined. */
  get value (): number | undefined {
    return this.calls.filter((c) => c.op === 'set').at(-1)?.value
  }

  /** Values observed, in order. */
  get observed (): number[] {
    return this.calls.filter((c) => c.op === 'observe').map((c) => c.value)
  }

  private record (op: 'inc' | 'set' | 'observe', a: Labels | number | undefined, b: number | undefined, fallback: number): void {
    const labels = typeof a === 'object' ? a : {}
    const value = typeof a === 'number' ? a : b ?? fallback
    this.calls.push({ op, labels, value })
  }
}

/**
 * Fake metrics for the names a part's components interface picks. `metrics` is what the part
 * takes; `m` the same recorders, to assert on.
 */
export function fakeMetrics<K extends keyof AgentMetrics> (...names: K[]): { metrics: Pick<AgentMetrics, K>, m: Record<K, FakeMetric> } {
  const m = Object.fromEntries(names.map((n) => [n, new FakeMetric()])) as Record<K, FakeMetric>
  // The parts name prom-client's classes, whose surface (get, labels, reset, …) they never use.
  return { metrics: m as unknown as Pick<AgentMetrics, K>, m }
}

/** The state directory in memory: every call it gets, in order, in `ops`. */
export class MemoryStore implements Pick<StateStore, 'dir' | 'appendHistory' | 'readHistory' | 'saveEnvelope' | 'saveApplied' | 'loadPeers' | 'savePeers' | 'loadEnvelopes' | 'quarantine' | 'archivedVersions' | 'loadArchived' | 'saveSealed'> {
  readonly ops: string[] = []
  readonly history: HistoryEntry[] = []
  readonly envelopes = new Map<string, { bytes: Uint8Array, version?: number }>()
  readonly appliedSaves: Array<Record<string, AppliedRecord>> = []
  readonly peerSaves: KnownPeer[][] = []
  readonly quarantined: string[] = []
  /** What loadEnvelopes returns. */
  stored: Array<{ file: string, bytes: Uint8Array }> = []
  /** What loadPeers returns. */
  peers: KnownPeer[] = []

  constructor (readonly dir = '/nonexistent/state') {}

  async appendHistory (entry: HistoryEntry): Promise<void> {
    this.ops.push(`history ${entry.event}${entry.name !== undefined ? ` ${entry.name}` : ''}`)
    this.history.push(entry)
  }

  async readHistory (limit = 200): Promise<HistoryEntry[]> {
    return this.history.slice(-limit)
  }

  async saveEnvelope (name: string, bytes: Uint8Array, version?: number): Promise<void> {
    this.ops.push(`envelope ${name}`)
    this.envelopes.set(name, { bytes, version })
    if (version !== undefined) this.archive.set(`${name}\n${version}`, bytes)
  }

  /** Archived envelopes by name and version, as saveEnvelope keeps them. */
  readonly archive = new Map<string, Uint8Array>()

  async archivedVersions (name: string): Promise<number[]> {
    return [...this.archive.keys()].filter((k) => k.startsWith(`${name}\n`)).map((k) => Number(k.slice(name.length + 1))).sort((a, b) => b - a)
  }

  async loadArchived (name: string, version: number): Promise<Uint8Array | undefined> {
    return this.archive.get(`${name}\n${version}`)
  }

  async saveApplied (records: Record<string, AppliedRecord>): Promise<void> {
    this.ops.push('applied')
    this.appliedSaves.push(records)
  }

  /** Each sealed.json written, in order. */
  readonly sealedSaves: Array<Record<string, SealedRecord>> = []

  async saveSealed (records: Record<string, SealedRecord>): Promise<void> {
    this.ops.push('sealed')
    this.sealedSaves.push(records)
  }

  async loadPeers (): Promise<KnownPeer[]> {
    return this.peers
  }

  async savePeers (peers: KnownPeer[]): Promise<void> {
    this.ops.push('peers')
    this.peerSaves.push(peers)
  }

  async loadEnvelopes (): Promise<Array<{ file: string, bytes: Uint8Array }>> {
    return this.stored
  }

  async quarantine (file: string): Promise<void> {
    this.ops.push(`quarantine ${file}`)
    this.quarantined.push(file)
  }
}

/** Checks nothing: for envelopes a test builds as data, not for the trust under test. */
const anySigner = { authorize: (): void => {} }

/** Envelope bytes, verified (whoever signed them), as the book holds them. */
export function verify (bytes: Uint8Array): VerifiedEnvelope {
  return validateEnvelope(bytes, anySigner)
}

/** A signed envelope, verified, as the book holds it. */
export function verified (p: Policy, opts: SignedOptions): VerifiedEnvelope {
  return verify(signed(p, opts))
}

export type Keys = ReturnType<typeof makeKeys>

/** A book whose trust has `keys.root` as its root (new keys unless given), at a fixed time unless told. */
export function trustedBook (opts: { keys?: Keys, now?: () => number } = {}): { keys: Keys, book: PolicyBook } {
  const keys = opts.keys ?? makeKeys()
  return { keys, book: new PolicyBook(new TrustStore([keys.root.id]), opts.now ?? (() => FIXED_NOW)) }
}

/** Real libp2p peer ids (Ed25519), as strings go on the wire and in logs. */
export async function peerIds (n: number): Promise<PeerId[]> {
  return await Promise.all(Array.from({ length: n }, async () => peerIdOf(await generateIdentity())))
}

/** What an Intake handed on, by event. */
export interface IntakeSeen {
  accepted: Array<{ env: VerifiedEnvelope, via: Via, from?: string }>
  rejected: Refusal[]
  conflict: ConflictRecord[]
  forward: VerifiedEnvelope[]
  untrusted: UntrustedRecord[]
  catchUp: string[]
  fork: ForkRecord[]
}

/**
 * A real Intake over a real book (trusting `keys.root`) and journal, a memory store, fake
 * metrics (the Intake's, and the Fetcher's `announcements`) and recorded events.
 */
export function intakeRig (opts: { keys?: Keys, book?: PolicyBook } = {}) {
  const time = new FakeTime()
  const { keys, book: trusted } = trustedBook({ keys: opts.keys, now: time.now })
  const book = opts.book ?? trusted
  const store = new MemoryStore()
  const log = new RecordingLogger()
  const journal = new Journal({ store, log, now: time.now })
  const { metrics, m } = fakeMetrics('envelopesAccepted', 'envelopesRejected', 'envelopesIgnored', 'policies', 'announcements')
  const seen: IntakeSeen = { accepted: [], rejected: [], conflict: [], forward: [], untrusted: [], catchUp: [], fork: [] }
  const intake = new Intake({
    book,
    journal,
    store,
    metrics,
    log,
    now: time.now,
    events: {
      accepted: (env, via, from) => { seen.accepted.push({ env, via, from }) },
      rejected: (r) => { seen.rejected.push(r) },
      conflict: (r) => { seen.conflict.push(r) },
      forward: (env) => { seen.forward.push(env) },
      untrusted: (records) => { seen.untrusted.push(...records) },
      catchUp: (peer) => { seen.catchUp.push(peer) },
      fork: (record) => { seen.fork.push(record) }
    }
  })
  return { intake, keys, book, store, log, journal, metrics, m, seen, time }
}

/**
 * An ApplyQueue over an in-memory book, store and journal, applying into `<dir>/root` as node
 * `facts`. `events` lists what it reported, in order: `applied site/motd v1`, `not-targeted …`.
 */
export function applyQueueRig (dir: string, opts: { keys: Keys, facts: NodeFacts, encryptionKey?: () => EncryptionKey | undefined }) {
  const time = new FakeTime()
  const { book } = trustedBook({ keys: opts.keys, now: time.now })
  const store = new MemoryStore(join(dir, 'state'))
  const log = new RecordingLogger()
  const journal = new Journal({ store, log, now: time.now })
  const { metrics } = fakeMetrics('applies', 'applyDuration')
  const root = join(dir, 'root')
  mkdirSync(root, { recursive: true })
  const events: string[] = []
  const note = (what: string) => (env: VerifiedEnvelope): void => { events.push(`${what} ${env.name} v${env.version}`) }
  const queue = new ApplyQueue({
    book, journal, store, metrics, log, now: time.now, facts: opts.facts, root,
    signal: new AbortController().signal,
    saving: () => undefined,
    ...(opts.encryptionKey !== undefined ? { encryptionKey: opts.encryptionKey } : {}),
    events: { applied: note('applied'), notTargeted: note('not-targeted'), retired: note('retired'), held: note('held'), sealed: note('sealed'), conflict: () => {} }
  })
  const settled = async (): Promise<void> => { await queue.idle(); await journal.idle() }
  /** Signs `p` with the root key, holds and stores it as the intake does (the archive keeps every version), applies, and waits. */
  const take = async (p: Policy, o: { version?: number, prev?: VerifiedEnvelope, staged?: boolean } = {}): Promise<VerifiedEnvelope> => {
    const env = verified(p, { key: opts.keys.root, version: o.version ?? 1, ...(o.prev !== undefined ? { prev: o.prev.id } : {}), ...(o.staged === true ? { staged: true } : {}) })
    if (!book.offer(env).accept) throw new Error(`the book did not take ${env.name} v${env.version}`)
    await store.saveEnvelope(env.name, env.bytes, env.version)
    queue.schedule(env.name)
    await settled()
    return env
  }
  return { queue, book, store, log, journal, time, root, events, settled, take }
}
