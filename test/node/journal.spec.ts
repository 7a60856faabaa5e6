import { describe, expect, it } from 'vitest'
import { StateStore } from '../../src/store/index.js'
import { TRUST_POLICY_NAME } from '../../src/policy/index.js'
import { Journal, chainSince, restoreBook } from '../../src/node/journal.js'
import { PolicyBook } from '../../src/node/book.js'
import { TrustStore } from '../../src/trust/index.js'
import { configPolicy, decodeEnvelope, encodeEnvelope, signed, trustPolicy } from '../helpers/envelope.js'
import { deferred, FakeTime, MemoryStore, RecordingLogger, settle, trustedBook, verified } from './fakes.js'

function setup (): { journal: Journal, store: MemoryStore, log: RecordingLogger, time: FakeTime } {
  const store = new MemoryStore()
  const log = new RecordingLogger()
  const time = new FakeTime()
  return { journal: new Journal({ store, log, now: time.now }), store, log, time }
}

describe('Journal', () => {
  it('runs writes one at a time, in the order they were queued', async () => {
    const { journal } = setup()
    const gate = deferred()
    const seen: string[] = []
    journal.write('a', async () => {
      seen.push('a start')
      await gate.promise
      seen.push('a end')
    })
    journal.write('b', async () => { seen.push('b') })
    journal.write('c', async () => { seen.push('c') })
    await settle()
    expect(seen).toEqual(['a start'])
    gate.resolve()
    await journal.idle()
    expect(seen).toEqual(['a start', 'a end', 'b', 'c'])
  })

  it('logs a failed write and goes on with the next', async () => {
    const { journal, log } = setup()
    const seen: string[] = []
    journal.write('envelope site/a v1', async () => { throw new Error('disk full') })
    journal.write('b', async () => { seen.push('b') })
    await journal.idle()
    expect(seen).toEqual(['b'])
    expect(log.at('error')).toEqual([{ level: 'error', obj: { what: 'envelope site/a v1', err: 'disk full' }, msg: 'writing state failed' }])
  })

  it('stamps a history line with the time it was asked for, not the time its write got its turn', async () => {
    const { journal, store, time } = setup()
    const gate = deferred()
    journal.write('slow', async () => { await gate.promise })
    const asked = new Date(time.now()).toISOString()
    journal.history({ event: 'accepted', name: 'site/a', version: 1 })
    await time.advance(60_000)
    gate.resolve()
    await journal.idle()
    expect(store.history).toEqual([{ at: asked, event: 'accepted', name: 'site/a', version: 1 }])
  })

  it('is idle only once the writes queued while it waited are done too', async () => {
    const { journal } = setup()
    const first = deferred()
    const second = deferred()
    journal.write('first', async () => { await first.promise })
    let idle = false
    const waiting = journal.idle().then(() => { idle = true })
    journal.write('second', async () => { await second.promise })
    first.resolve()
    await settle()
    expect(idle).toBe(false)
    second.resolve()
    await waiting
    expect(idle).toBe(true)
  })

  describe('replace (the latest state of something)', () => {
    it('writes only the latest of the states queued while waiting, once, in the first one\'s turn', async () => {
      const { journal } = setup()
      const gate = deferred()
      const seen: string[] = []
      journal.write('slow', async () => { await gate.promise })
      for (const n of [1, 2, 3]) journal.replace('applied', async () => { seen.push(`applied ${n}`) })
      journal.write('other', async () => { seen.push('other') })
      journal.replace('applied', async () => { seen.push('applied 4') })
      gate.resolve()
      await journal.idle()
      expect(seen).toEqual(['applied 4', 'other'])
    })

    it('writes again a state that changed while its write was running', async () => {
      const { journal } = setup()
      const running = deferred()
      const seen: string[] = []
      journal.replace('peers', async () => {
        seen.push('peers 1')
        await running.promise
      })
      await settle()
      journal.replace('peers', async () => { seen.push('peers 2') })
      running.resolve()
      await journal.idle()
      expect(seen).toEqual(['peers 1', 'peers 2'])
    })

    it('keeps keys apart, and logs a failed write under its key', async () => {
      const { journal, log } = setup()
      const seen: string[] = []
      journal.replace('applied', async () => { throw new Error('disk full') })
      journal.replace('peers', async () => { seen.push('peers') })
      await journal.idle()
      expect(seen).toEqual(['peers'])
      expect(log.at('error').map((l) => l.obj)).toEqual([{ what: 'applied', err: 'disk full' }])
    })
  })

  it('is idle at once with nothing queued', async () => {
    const { journal } = setup()
    await journal.idle()
  })

  it('reads history after the writes queued before the read', async () => {
    const { journal, store } = setup()
    const gate = deferred()
    journal.write('slow', async () => { await gate.promise })
    journal.history({ event: 'started' })
    journal.history({ event: 'stopped' })
    const read = journal.readHistory(1)
    gate.resolve()
    expect((await read).map((e) => e.event)).toEqual(['stopped'])
    expect(store.history).toHaveLength(2)
  })
})

describe('restoreBook', () => {
  const { keys } = trustedBook()
  const admin = keys.webAdmin
  const trust = signed(trustPolicy([{ key: admin.id, scopes: ['web/'] }]), { key: keys.root })
  const byAdmin = signed(configPolicy('web/nginx'), { key: admin })
  const byRoot = signed(configPolicy('site/motd'), { key: keys.root })
  const file = (name: string): string => StateStore.envelopeFile(name)
  const time = new FakeTime()

  async function restore (stored: Array<[string, Uint8Array]>, book = trustedBook({ keys }).book) {
    const store = new MemoryStore()
    store.stored = stored.map(([f, bytes]) => ({ file: f, bytes }))
    const log = new RecordingLogger()
    const untrusted = await restoreBook(store, book, log, time.now)
    return { book, store, log, untrusted }
  }

  it('loads the trust policy first, so envelopes it authorises load whatever order the files come in', async () => {
    const { book, store, log } = await restore([[file('web/nginx'), byAdmin], [file('site/motd'), byRoot], [file(TRUST_POLICY_NAME), trust]])
    expect([...book.values()].map((e) => e.name).sort()).toEqual([TRUST_POLICY_NAME, 'site/motd', 'web/nginx'])
    expect(store.quarantined).toEqual([])
    expect(log.lines).toEqual([])
  })

  it.each<[string, Uint8Array, string]>([
    ['no trust policy stored: its admin is unknown', byAdmin, 'untrusted'],
    ['its signer revoked since', signed(configPolicy('web/nginx'), { key: keys.revokedAdmin }), 'revoked'],
    ['its name out of its signer\'s scope now', signed(configPolicy('db/main'), { key: admin }), 'out-of-scope']
  ])('returns, without quarantining, a stored envelope the trust policy refuses (%s)', async (what, bytes, reason) => {
    const stored: Array<[string, Uint8Array]> = [[file('x'), bytes], [file('site/motd'), byRoot]]
    const withTrust = signed(trustPolicy([{ key: admin.id, scopes: ['web/'] }], [keys.revokedAdmin.id]), { key: keys.root })
    if (!what.startsWith('no trust')) stored.push([file(TRUST_POLICY_NAME), withTrust])
    const { book, store, log, untrusted } = await restore(stored)
    const env = decodeEnvelope(bytes)
    expect(book.get('site/motd')).toBeDefined()
    expect(book.get(env.name)).toBeUndefined()
    expect(store.quarantined).toEqual([])
    expect(untrusted).toEqual([{ name: env.name, version: env.version, hash: env.hash, signer: env.signer, reason, error: expect.any(String), at: new Date(time.now()).toISOString() }])
    expect(log.at('warn').map((l) => [l.obj.file, l.obj.reason])).toEqual([[file('x'), reason]])
  })

  it.each<[string, Uint8Array, string]>([
    ['cut short', byRoot.subarray(0, byRoot.length - 20), 'malformed'],
    ['another envelope\'s signature', encodeEnvelope({ ...decodeEnvelope(byRoot), signature: decodeEnvelope(byAdmin).signature }), 'bad-signature'],
    ['the body changed under the signature', encodeEnvelope({ ...decodeEnvelope(byRoot), policy: { ...(decodeEnvelope(byRoot).policy as object), description: 'changed' } }), 'hash-mismatch']
  ])('quarantines a stored envelope that is corrupt (%s)', async (_, bytes, reason) => {
    const { book, store, log, untrusted } = await restore([[file('site/motd'), bytes], [file('web/nginx'), byAdmin], [file(TRUST_POLICY_NAME), trust]])
    expect(store.quarantined).toEqual([file('site/motd')])
    expect(untrusted).toEqual([])
    expect(book.get('site/motd')).toBeUndefined()
    expect(book.get('web/nginx')).toBeDefined()
    expect(log.at('warn').map((l) => l.obj.reason)).toEqual([reason])
  })

  it('does not quarantine an envelope over an error of this node\'s own', async () => {
    class BrokenTrust extends TrustStore {
      override authorize (): void { throw new TypeError('a bug') }
    }
    const { book, store, log, untrusted } = await restore([[file('site/motd'), byRoot]], new PolicyBook(new BrokenTrust([keys.root.id]), () => 0))
    expect(book.size).toBe(0)
    expect(store.quarantined).toEqual([])
    expect(untrusted).toEqual([])
    expect(log.at('warn').map((l) => [l.obj.reason, l.obj.err])).toEqual([['error', 'a bug']])
  })
})

describe('chainSince', () => {
  const { keys } = trustedBook()
  const name = 'site/motd'
  const v1 = verified(configPolicy(name, [], { description: '1' }), { key: keys.webAdmin, version: 1 })
  const v2 = verified(configPolicy(name, [], { description: '2' }), { key: keys.webAdmin, version: 2, prev: v1.id })
  const v3 = verified(configPolicy(name, [], { description: '3' }), { key: keys.webAdmin, version: 3, prev: v2.id })
  const other2 = verified(configPolicy(name, [], { description: 'other' }), { key: keys.webAdmin, version: 2, prev: v1.id })

  async function archived (...envs: typeof v1[]): Promise<MemoryStore> {
    const store = new MemoryStore()
    for (const e of envs) await store.saveEnvelope(e.name, e.bytes, e.version)
    return store
  }

  it.each<[string, { version: number, id: string } | undefined, Uint8Array[]]>([
    ['a peer that holds nothing gets the head', undefined, [v3.bytes]],
    ['a peer one behind gets the head', { version: 2, id: v2.id }, [v3.bytes]],
    ['a peer two behind gets the versions between, oldest first', { version: 1, id: v1.id }, [v2.bytes, v3.bytes]],
    ['a peer on another branch gets only the head (it will see a fork)', { version: 2, id: other2.id }, [v3.bytes]],
    ['a peer ahead gets the head', { version: 9, id: 'f'.repeat(64) }, [v3.bytes]]
  ])('%s', async (_, since, expected) => {
    expect(await chainSince(await archived(v1, v2, v3), v3, since)).toEqual(expected)
  })

  it('sends only the head when the archive lacks a link', async () => {
    expect(await chainSince(await archived(v1, v3), v3, { version: 1, id: v1.id })).toEqual([v3.bytes])
  })

  it('holds nothing: sends nothing', async () => {
    expect(await chainSince(new MemoryStore(), undefined, { version: 1, id: v1.id })).toEqual([])
  })
})
