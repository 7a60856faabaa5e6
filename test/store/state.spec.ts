import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { StateStore, DEFAULT_HISTORY_LIMIT, MAX_REMEMBERED_PEERS, type AppliedRecord, type HistoryEntry, type KnownPeer } from '../../src/store/index.js'
import { ARCHIVED_VERSIONS } from '../../src/store/state.js'
import { useTempDir } from '../helpers/tmp.js'

const dir = useTempDir('grapevine-state-')
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined): string | undefined => b === undefined ? undefined : new TextDecoder().decode(b)

async function loaded (store: StateStore): Promise<Record<string, string>> {
  return Object.fromEntries((await store.loadEnvelopes()).map((e) => [e.file, text(e.bytes) as string]))
}

describe('envelopes', () => {
  it('are saved under their encoded name, replaced by a newer one, and loaded by a fresh store', async () => {
    const store = await StateStore.open(dir())
    await store.saveEnvelope('web/nginx', bytes('v1'), 1)
    await store.saveEnvelope('grapevine/trust', bytes('trust'), 1)
    await store.saveEnvelope('web/nginx', bytes('v2'), 2)
    expect(await loaded(await StateStore.open(dir()))).toEqual({ 'web%2Fnginx.env': 'v2', 'grapevine%2Ftrust.env': 'trust' })
    expect(StateStore.envelopeFile('web/nginx')).toBe('web%2Fnginx.env')
  })

  it('opening an empty directory gives an empty store', async () => {
    const store = await StateStore.open(join(dir(), 'fresh'))
    expect(await store.loadEnvelopes()).toEqual([])
    expect(await store.readIdentity()).toBeUndefined()
    expect(await store.loadApplied()).toEqual({})
    expect(await store.loadPeers()).toEqual([])
    expect(await store.readHistory()).toEqual([])
  })

  it.each([
    ['a temp file of the current writer', '.web%2Fnginx.env.0123456789ab.tmp'],
    ['a temp file stamped with its writer\'s pid', '.web%2Fnginx.env.grapevine-tmp-4242-0123456789ab'],
    ['a temp file whose name ends in .env', '.web%2Fnginx.env']
  ])('a crash mid-write leaves %s, which is not loaded as state', async (_, leftover) => {
    const store = await StateStore.open(dir())
    await store.saveEnvelope('web/nginx', bytes('{"whole":"envelope"}'), 1)
    // What a SIGKILL between the temp file's write and its rename leaves: half the new bytes.
    await writeFile(join(dir(), 'envelopes', leftover), '{"half":')
    expect(await loaded(await StateStore.open(dir()))).toEqual({ 'web%2Fnginx.env': '{"whole":"envelope"}' })
  })

  it('quarantine moves a corrupt envelope out of the way, keeping its bytes', async () => {
    const store = await StateStore.open(dir())
    await store.saveEnvelope('web/bad', bytes('garbage'))
    await store.saveEnvelope('web/good', bytes('fine'))
    await store.quarantine(StateStore.envelopeFile('web/bad'))
    expect(await loaded(store)).toEqual({ 'web%2Fgood.env': 'fine' })
    const kept = await readdir(join(dir(), 'quarantine'))
    expect(kept).toHaveLength(1)
    expect(kept[0]).toMatch(/^\d+-web%2Fbad\.env$/)
    expect(await readFile(join(dir(), 'quarantine', kept[0]!), 'utf8')).toBe('garbage')
  })
})

describe('the archive', () => {
  it('keeps each saved version for rollback, and nothing saved without a version', async () => {
    const store = await StateStore.open(dir())
    await store.saveEnvelope('web/nginx', bytes('v1'), 1)
    await store.saveEnvelope('web/nginx', bytes('v3'), 3)
    await store.saveEnvelope('web/nginx', bytes('unversioned'))
    expect(text(await store.loadArchived('web/nginx', 1))).toBe('v1')
    expect(text(await store.loadArchived('web/nginx', 3))).toBe('v3')
    expect(await store.loadArchived('web/nginx', 2)).toBeUndefined()
    expect(await store.loadArchived('web/other', 1)).toBeUndefined()
    expect(await readdir(join(dir(), 'archive', 'web%2Fnginx'))).toHaveLength(2)
  })

  it(`keeps only the newest ${ARCHIVED_VERSIONS} versions of a name`, async () => {
    const store = await StateStore.open(dir())
    // Out of order, as sync can deliver them: the oldest by number go, not the first saved.
    const versions = Array.from({ length: ARCHIVED_VERSIONS + 3 }, (_, i) => i + 1).reverse()
    for (const v of versions) await store.saveEnvelope('web/nginx', bytes(`v${v}`), v)
    const kept = (await readdir(join(dir(), 'archive', 'web%2Fnginx'))).map((f) => Number(f.slice(0, -'.env'.length))).sort((a, b) => a - b)
    expect(kept).toEqual(Array.from({ length: ARCHIVED_VERSIONS }, (_, i) => i + 4))
    expect(await store.loadArchived('web/nginx', 3)).toBeUndefined()
  })
})

describe('applied records', () => {
  const record = (name: string, version: number): AppliedRecord => ({
    name, version, hash: `sha256:${'0'.repeat(64)}`, outcome: 'applied', at: '2025-01-02T03:04:05.000Z', changed: 2, failed: 0, durationMs: 12
  })

  it('round-trip through a fresh store', async () => {
    const records = { 'web/a': record('web/a', 1), 'web/b': { ...record('web/b', 4), outcome: 'failed', failed: 1, errors: [{ resource: 'motd', error: 'EACCES' }] } }
    await (await StateStore.open(dir())).saveApplied(records)
    expect(await (await StateStore.open(dir())).loadApplied()).toEqual(records)
  })

  it('a hand-edited file that is not JSON reads as none', async () => {
    const store = await StateStore.open(dir())
    await writeFile(join(dir(), 'applied.json'), '{"web/a": ')
    expect(await store.loadApplied()).toEqual({})
  })
})

describe('sealed records (versions whose secrets are not this node\'s)', () => {
  it('round-trip through a fresh store; none, a torn file or a list reads as none', async () => {
    const records = { 'db/app': { version: 3, hash: `sha256:${'0'.repeat(64)}`, why: 'not a recipient: sealed to 2 nodes, not to this one' } }
    const store = await StateStore.open(dir())
    expect(await store.loadSealed()).toEqual({})
    await store.saveSealed(records)
    expect(await (await StateStore.open(dir())).loadSealed()).toEqual(records)
    await writeFile(join(dir(), 'sealed.json'), '{"db/app": ')
    expect(await store.loadSealed()).toEqual({})
    await writeFile(join(dir(), 'sealed.json'), '[1]')
    expect(await store.loadSealed()).toEqual({})
  })
})

describe('history', () => {
  const entry = (i: number): HistoryEntry => ({ at: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(), event: 'accepted', name: 'web/a', version: i, via: 'gossip' })

  it('appends entries and reads them back in order', async () => {
    const store = await StateStore.open(dir())
    for (let i = 1; i <= 3; i++) await store.appendHistory(entry(i))
    expect(await (await StateStore.open(dir())).readHistory()).toEqual([entry(1), entry(2), entry(3)])
    expect((await readFile(join(dir(), 'history.jsonl'), 'utf8')).split('\n')).toHaveLength(4)
  })

  it.each([
    [1, [5]],
    [2, [4, 5]],
    [5, [1, 2, 3, 4, 5]],
    [50, [1, 2, 3, 4, 5]],
    [0, []]
  ])('with limit %i returns the newest entries: %j', async (limit, versions) => {
    const store = await StateStore.open(dir())
    for (let i = 1; i <= 5; i++) await store.appendHistory(entry(i))
    expect((await store.readHistory(limit)).map((e) => e.version)).toEqual(versions)
  })

  it(`returns the newest ${DEFAULT_HISTORY_LIMIT} by default`, async () => {
    const lines = Array.from({ length: DEFAULT_HISTORY_LIMIT + 5 }, (_, i) => JSON.stringify(entry(i))).join('\n')
    await writeFile(join(dir(), 'history.jsonl'), `${lines}\n`)
    const read = await (await StateStore.open(dir())).readHistory()
    expect(read).toHaveLength(DEFAULT_HISTORY_LIMIT)
    expect(read[0]).toEqual(entry(5))
  })

  it('skips a line torn by a crash mid-append and keeps appending after it', async () => {
    const store = await StateStore.open(dir())
    await writeFile(join(dir(), 'history.jsonl'), `${JSON.stringify(entry(1))}\n{"at":"2025-01-01T00:0`)
    await store.appendHistory(entry(2))
    expect(await store.readHistory()).toEqual([entry(1), entry(2)])
  })
})

describe('peers', () => {
  const peer = (i: number): KnownPeer => ({ id: `peer-${i}`, addrs: [`/ip4/10.0.0.${i % 250}/tcp/4001`], lastSeen: '2025-01-02T03:04:05.000Z' })

  it(`round-trip, at most ${MAX_REMEMBERED_PEERS} of them, the first ones kept`, async () => {
    const peers = Array.from({ length: MAX_REMEMBERED_PEERS + 10 }, (_, i) => peer(i))
    await (await StateStore.open(dir())).savePeers(peers)
    expect(await (await StateStore.open(dir())).loadPeers()).toEqual(peers.slice(0, MAX_REMEMBERED_PEERS))
  })

  it.each([
    ['not JSON', '[{"id":'],
    ['JSON that is not a list', '{"id":"peer-1"}']
  ])('a peers file that is %s reads as none', async (_, content) => {
    await writeFile(join(dir(), 'peers.json'), content)
    expect(await (await StateStore.open(dir())).loadPeers()).toEqual([])
  })
})

describe('identity', () => {
  it('is written with mode 0600 and read back', async () => {
    const store = await StateStore.open(dir())
    const key = Uint8Array.from({ length: 68 }, (_, i) => i)
    await store.writeIdentity(key)
    expect((await stat(join(dir(), 'identity.key'))).mode & 0o777).toBe(0o600)
    expect(await (await StateStore.open(dir())).readIdentity()).toEqual(key)
  })

  it('a key file readable by others is narrowed to 0600 when read', async () => {
    const store = await StateStore.open(dir())
    await store.writeIdentity(Uint8Array.of(1, 2, 3))
    await chmod(join(dir(), 'identity.key'), 0o644)
    expect(await store.readIdentity()).toEqual(Uint8Array.of(1, 2, 3))
    expect((await stat(join(dir(), 'identity.key'))).mode & 0o777).toBe(0o600)
  })
})

describe('modes: envelopes may carry sealed secrets (docs/secrets.md)', () => {
  const mode = async (path: string): Promise<string> => ((await stat(path)).mode & 0o777).toString(8).padStart(4, '0')

  it('the state directory is 0700, envelopes and archived versions 0600 in directories 0700', async () => {
    const store = await StateStore.open(join(dir(), 'fresh'))
    await store.saveEnvelope('db/conf', bytes('v1'), 1)
    expect(await mode(store.dir)).toBe('0700')
    expect(await mode(join(store.dir, 'envelopes'))).toBe('0700')
    expect(await mode(join(store.dir, 'envelopes', 'db%2Fconf.env'))).toBe('0600')
    expect(await mode(join(store.dir, 'archive', 'db%2Fconf'))).toBe('0700')
    expect(await mode(join(store.dir, 'archive', 'db%2Fconf', '1.env'))).toBe('0600')
  })

  it('state written before (0644 envelopes, 0755 directories) is narrowed when the store opens', async () => {
    const first = await StateStore.open(dir())
    await first.saveEnvelope('db/conf', bytes('v1'), 1)
    await first.saveEnvelope('db/conf', bytes('v2'), 2)
    await first.saveEnvelope('web/site', bytes('w1'), 1)
    await first.quarantine('web%2Fsite.env')
    const quarantined = (await readdir(join(dir(), 'quarantine')))[0] as string
    const files = [join('envelopes', 'db%2Fconf.env'), join('archive', 'db%2Fconf', '1.env'), join('archive', 'db%2Fconf', '2.env'), join('quarantine', quarantined)]
    const dirs = ['.', 'envelopes', 'archive', join('archive', 'db%2Fconf'), 'quarantine']
    for (const f of files) await chmod(join(dir(), f), 0o644)
    for (const d of dirs) await chmod(join(dir(), d), 0o755)
    await writeFile(join(dir(), 'applied.json'), '{}', { mode: 0o644 })
    await StateStore.open(dir())
    for (const f of files) expect([f, await mode(join(dir(), f))]).toEqual([f, '0600'])
    for (const d of dirs) expect([d, await mode(join(dir(), d))]).toEqual([d, '0700'])
    // Files with no envelope in them keep their mode.
    expect(await mode(join(dir(), 'applied.json'))).toBe('0644')
  })
})
