import { mkdir, open, readdir, readFile, rename, stat, chmod, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { atomicWrite, appendLine } from './fs.js'
import { removeStaleTemps } from './atomic.js'

/** One line of the audit trail (history.jsonl). */
export interface HistoryEntry {
  at: string
  /** `sealed`: a version not applied because its secrets are not sealed to this node (`error` says why). */
  event: 'accepted' | 'applied' | 'rejected' | 'conflict' | 'fork' | 'retired' | 'untrusted' | 'sealed' | 'started' | 'stopped'
  name?: string
  version?: number
  hash?: string
  signer?: string
  via?: 'gossip' | 'sync' | 'local' | 'api' | 'disk'
  from?: string
  outcome?: string
  changed?: number
  failed?: number
  error?: string
  detail?: unknown
}

/** The outcome of the last apply of each policy, persisted so status survives restarts. */
export interface AppliedRecord {
  name: string
  version: number
  hash: string
  outcome: string
  at: string
  changed: number
  failed: number
  durationMs: number
  errors?: Array<{ resource: string, error: string }>
  /** What every apply of this version has done so far (receipt/receipt.ts, foldApply): what receipts and beacons report, across restarts too. */
  applies?: { first?: 'applied' | 'unchanged', changed: boolean, failing: boolean, unhealthy?: boolean }
}

/** A version this node did not apply because its secrets are not sealed to it (outcome `sealed`), and why. */
export interface SealedRecord {
  version: number
  hash: string
  why: string
}

export interface KnownPeer {
  id: string
  addrs: string[]
  lastSeen: string
}

/** The writes the store makes: real files by default, a fake in tests (a full disk, an I/O error). */
export interface StateWriter {
  atomicWrite: typeof atomicWrite
  appendLine: typeof appendLine
}

/** Remembered peers; enough to find the mesh again without bootstrap nodes. */
export const MAX_REMEMBERED_PEERS = 64

/** Versions kept per policy for `grapevine rollback`. */
export const ARCHIVED_VERSIONS = 20

/** History lines returned by default; the file itself is append-only and never truncated here. */
export const DEFAULT_HISTORY_LIMIT = 200

/**
 * The state directory: identity key, latest accepted envelopes, applied state, the append-only
 * history and remembered peers. Every write is atomic (or an fsynced append), so after a SIGKILL
 * the next start reads either the old or the new version of each file.
 *
 *   identity.key       libp2p private key (protobuf), mode 0600
 *   encryption.key     age X25519 identity that sealed secrets are opened with (src/secrets/keys.ts), mode 0600
 *   envelopes/*.env    exact bytes of the newest accepted envelope per policy name
 *   applied.json       last apply outcome per policy
 *   sealed.json        versions not applied because their secrets are not sealed to this node, and why
 *   peers.json         remembered peers
 *   archive/<name>/    the last ARCHIVED_VERSIONS envelopes per name, for rollback
 *   history.jsonl      audit trail
 *   quarantine/        envelopes found corrupt on start, kept for inspection
 *
 * The directory is 0700, and envelopes (in envelopes/, archive/ and quarantine/) are 0600, in
 * directories 0700: they hold sealed secrets, which only their recipients can open, but no other
 * user of the host needs even the ciphertext (docs/secrets.md).
 */
export class StateStore {
  /** Whether history.jsonl is known to end in a newline (an append of ours completed). */
  private historyEndsInNewline = false

  constructor (readonly dir: string, private readonly writer: StateWriter = { atomicWrite, appendLine }) {}

  static async open (dir: string, writer?: StateWriter): Promise<StateStore> {
    await mkdir(join(dir, 'envelopes'), { recursive: true, mode: 0o700 })
    const store = new StateStore(dir, writer)
    await store.removeStaleTemps()
    await store.restrictModes()
    return store
  }

  /**
   * Makes the state directory 0700 and every stored envelope 0600 (directories holding them
   * 0700), for state written before envelopes could carry sealed secrets (when they were 0644).
   * The API's --api-group gives the group search permission again when the API starts.
   */
  private async restrictModes (): Promise<void> {
    const archived = await readdir(this.path('archive')).catch(() => [])
    const dirs = [this.path('envelopes'), this.path('archive'), this.path('quarantine'), ...archived.map((name) => this.path('archive', name))]
    await Promise.all([this.dir, ...dirs].map(async (d) => { await restrictMode(d, 0o700) }))
    await Promise.all(dirs.map(async (d) => {
      const names = await readdir(d).catch(() => [])
      await Promise.all(names.filter((n) => n.endsWith('.env')).map(async (n) => { await restrictMode(join(d, n), 0o600) }))
    }))
  }

  /** Temporary files of writes a kill interrupted (`.NAME.grapevine-tmp-PID-RANDOM`): removed at start, never loaded. */
  private async removeStaleTemps (): Promise<void> {
    const archived = await readdir(this.path('archive')).catch(() => [])
    await Promise.all([this.dir, this.path('envelopes'), ...archived.map((name) => this.path('archive', name))].map(async (d) => await removeStaleTemps(d)))
  }

  private path (...parts: string[]): string {
    return join(this.dir, ...parts)
  }

  async readIdentity (): Promise<Uint8Array | undefined> {
    try {
      const file = this.path('identity.key')
      const info = await stat(file)
      if ((info.mode & 0o077) !== 0) await chmod(file, 0o600)
      return new Uint8Array(await readFile(file))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  async writeIdentity (bytes: Uint8Array): Promise<void> {
    await this.writer.atomicWrite(this.path('identity.key'), bytes, 0o600)
  }

  static envelopeFile (name: string): string {
    return `${encodeURIComponent(name)}.env`
  }

  /** Saves the newest envelope for a name, and keeps it in the archive for rollback. */
  async saveEnvelope (name: string, bytes: Uint8Array, version?: number): Promise<void> {
    await this.writer.atomicWrite(this.path('envelopes', StateStore.envelopeFile(name)), bytes, ENVELOPE_MODE)
    if (version === undefined) return
    const dir = this.path('archive', encodeURIComponent(name))
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await this.writer.atomicWrite(join(dir, `${version}.env`), bytes, ENVELOPE_MODE)
    for (const old of (await this.archivedVersions(name)).slice(ARCHIVED_VERSIONS)) await unlink(join(dir, `${old}.env`)).catch(() => {})
  }

  /** The versions of a name kept in the archive, newest first. */
  async archivedVersions (name: string): Promise<number[]> {
    let files: string[]
    try {
      files = await readdir(this.path('archive', encodeURIComponent(name)))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    return files.filter((f) => /^\d+\.env$/.test(f)).map((f) => Number(f.slice(0, -4))).sort((a, b) => b - a)
  }

  async loadArchived (name: string, version: number): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.path('archive', encodeURIComponent(name), `${version}.env`)))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  /** All stored envelopes; a torn temp file from a crash is never listed (temp names start with '.'). */
  async loadEnvelopes (): Promise<Array<{ file: string, bytes: Uint8Array }>> {
    const dir = this.path('envelopes')
    const names = (await readdir(dir)).filter((f) => f.endsWith('.env') && !f.startsWith('.'))
    return await Promise.all(names.map(async (file) => ({ file, bytes: new Uint8Array(await readFile(join(dir, file))) })))
  }

  async quarantine (file: string): Promise<void> {
    await mkdir(this.path('quarantine'), { recursive: true, mode: 0o700 })
    await rename(this.path('envelopes', file), this.path('quarantine', `${Date.now()}-${file}`))
  }

  async readJson<T> (file: string, fallback: T): Promise<T> {
    try {
      return JSON.parse(await readFile(this.path(file), 'utf8')) as T
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback
      if (err instanceof SyntaxError) return fallback // written atomically, so only a hand edit gets here
      throw err
    }
  }

  async loadApplied (): Promise<Record<string, AppliedRecord>> {
    return await this.readJson('applied.json', {})
  }

  async saveApplied (records: Record<string, AppliedRecord>): Promise<void> {
    await this.writer.atomicWrite(this.path('applied.json'), JSON.stringify(records, null, 1))
  }

  async loadSealed (): Promise<Record<string, SealedRecord>> {
    const records = await this.readJson<Record<string, SealedRecord>>('sealed.json', {})
    return records !== null && typeof records === 'object' && !Array.isArray(records) ? records : {}
  }

  async saveSealed (records: Record<string, SealedRecord>): Promise<void> {
    await this.writer.atomicWrite(this.path('sealed.json'), JSON.stringify(records, null, 1))
  }

  async loadPeers (): Promise<KnownPeer[]> {
    const peers = await this.readJson<KnownPeer[]>('peers.json', [])
    return Array.isArray(peers) ? peers : []
  }

  async savePeers (peers: KnownPeer[]): Promise<void> {
    await this.writer.atomicWrite(this.path('peers.json'), JSON.stringify(peers.slice(0, MAX_REMEMBERED_PEERS), null, 1))
  }

  async appendHistory (entry: HistoryEntry): Promise<void> {
    const file = this.path('history.jsonl')
    // A crash mid-append leaves a torn last line with no newline; appended to as it stands, the
    // torn line would swallow the next entry too. Checked once: our own appends end in a newline.
    const prefix = this.historyEndsInNewline || await endsInNewline(file) ? '' : '\n'
    this.historyEndsInNewline = false
    await this.writer.appendLine(file, prefix + JSON.stringify(entry))
    this.historyEndsInNewline = true
  }

  /** The newest `limit` entries. A line torn by a crash mid-append is skipped, not fatal. */
  async readHistory (limit = DEFAULT_HISTORY_LIMIT): Promise<HistoryEntry[]> {
    let text: string
    try {
      text = await readFile(this.path('history.jsonl'), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const out: HistoryEntry[] = []
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue
      try {
        out.push(JSON.parse(line) as HistoryEntry)
      } catch {
        // torn final line after a crash
      }
    }
    // slice(-0) is slice(0): the whole file, not none of it.
    return limit > 0 ? out.slice(-limit) : []
  }
}

/** An envelope file's mode: it may carry sealed secrets. */
export const ENVELOPE_MODE = 0o600

/** Takes group and other permissions off `path` beyond `mode`; absent is fine, and so is a path this user does not own (it says nothing more then). */
async function restrictMode (path: string, mode: number): Promise<void> {
  try {
    const info = await stat(path)
    if ((info.mode & 0o077 & ~mode) !== 0) await chmod(path, info.mode & 0o7777 & ~(0o077 & ~mode))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'EPERM') throw err
  }
}

/** Whether `file` is empty, absent, or ends in a newline. */
async function endsInNewline (file: string): Promise<boolean> {
  let fh
  try {
    fh = await open(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true
    throw err
  }
  try {
    const { size } = await fh.stat()
    if (size === 0) return true
    const last = Buffer.alloc(1)
    await fh.read(last, 0, 1, size - 1)
    return last[0] === 0x0a
  } finally {
    await fh.close()
  }
}
