import { describe, expect, it } from 'vitest'
import { validateEnvelope, type VerifiedEnvelope } from '../../src/envelope/index.js'
import { OutOfScopeError, UntrustedSignerError } from '../../src/trust/index.js'
import { TRUST_POLICY_NAME } from '../../src/policy/index.js'
import type { Decision, PolicyBook } from '../../src/node/book.js'
import { configPolicy, FIXED_NOW, signed, trustPolicy } from '../helpers/envelope.js'
import { FakeTime, trustedBook, verified } from './fakes.js'

const { keys } = trustedBook()
const key = keys.root

/** One policy name in several versions and contents: `v1x` is version 1 with content x. */
const name = 'site/motd'
const v1x = verified(configPolicy(name, [], { description: 'x' }), { key, version: 1 })
const v1y = verified(configPolicy(name, [], { description: 'y' }), { key, version: 1 })
const v2x = verified(configPolicy(name, [], { description: 'x' }), { key, version: 2 })
/** The same name signed by an admin (not a root), along the chain and off it. */
const admin = keys.webAdmin
const a1 = verified(configPolicy(name, [], { description: 'a1' }), { key: admin, version: 1 })
const a2 = verified(configPolicy(name, [], { description: 'a2' }), { key: admin, version: 2, prev: a1.id })
const a2Unlinked = verified(configPolicy(name, [], { description: 'a2?' }), { key: admin, version: 2, prev: 'f'.repeat(64) })
const a2Forced = verified(configPolicy(name, [], { description: 'a2!' }), { key: admin, version: 2, force: 'ops ticket 42' })
const aJump = verified(configPolicy(name, [], { description: 'far' }), { key: admin, version: 1002, prev: a1.id })
/** v1x again, signed later: another envelope id, the same content. */
const v1xLater = verified(configPolicy(name, [], { description: 'x' }), { key, version: 1, now: FIXED_NOW + 1000 })
const [v1Low, v1High] = v1x.hash < v1y.hash ? [v1x, v1y] : [v1y, v1x]
const [v1xLowId, v1xHighId] = v1x.id < v1xLater.id ? [v1x, v1xLater] : [v1xLater, v1x]

type Kind = 'first' | 'newer, root-signed' | 'newer, extends' | 'newer, unlinked' | 'newer, forced' | 'newer, too far' | 'older' | 'same envelope' | 'same content, lower id' | 'same content, higher id' | 'conflict won' | 'conflict lost'

interface Row {
  current?: VerifiedEnvelope
  incoming: VerifiedEnvelope
  /** The decision, with `replaced` and `conflict` as whether they are there. */
  decision: { accept: boolean, reason?: Extract<Decision, { accept: false }>['reason'], replaced: boolean, conflict: boolean }
}

describe('PolicyBook.offer', () => {
  // A new kind of arrival does not compile until it has a row here.
  const table = {
    first: { incoming: v1x, decision: { accept: true, replaced: false, conflict: false } },
    'newer, root-signed': { current: v1x, incoming: v2x, decision: { accept: true, replaced: true, conflict: false } },
    'newer, extends': { current: a1, incoming: a2, decision: { accept: true, replaced: true, conflict: false } },
    'newer, unlinked': { current: a1, incoming: a2Unlinked, decision: { accept: false, reason: 'unlinked', replaced: false, conflict: false } },
    'newer, forced': { current: a1, incoming: a2Forced, decision: { accept: true, replaced: true, conflict: false } },
    'newer, too far': { current: a1, incoming: aJump, decision: { accept: false, reason: 'jump', replaced: false, conflict: false } },
    older: { current: v2x, incoming: v1x, decision: { accept: false, reason: 'older', replaced: false, conflict: false } },
    'same envelope': { current: v1x, incoming: v1x, decision: { accept: false, reason: 'duplicate', replaced: false, conflict: false } },
    'same content, lower id': { current: v1xHighId, incoming: v1xLowId, decision: { accept: false, reason: 'duplicate', replaced: false, conflict: false } },
    'same content, higher id': { current: v1xLowId, incoming: v1xHighId, decision: { accept: true, replaced: true, conflict: false } },
    'conflict won': { current: v1Low, incoming: v1High, decision: { accept: true, replaced: true, conflict: true } },
    'conflict lost': { current: v1High, incoming: v1Low, decision: { accept: false, reason: 'conflict-lost', replaced: false, conflict: true } }
  } satisfies Record<Kind, Row>

  it.each(Object.entries(table) as Array<[Kind, Row]>)('%s', (_, row) => {
    const { book } = trustedBook({ keys })
    if (row.current !== undefined) book.offer(row.current)
    const d = book.offer(row.incoming)
    expect({
      accept: d.accept,
      ...(d.accept ? {} : { reason: d.reason }),
      replaced: d.accept && d.replaced !== undefined,
      conflict: d.conflict !== undefined
    }).toEqual(row.decision)
    const winner = d.accept ? row.incoming : row.current
    expect(book.get(name)).toBe(winner)
    expect(book.size).toBe(1)
    if (d.accept && d.replaced !== undefined) expect(d.replaced).toBe(row.current)
    if (d.conflict !== undefined) {
      expect(d.conflict).toMatchObject({ kind: 'version', name, version: 1, winner: v1High.hash, loser: v1Low.hash })
      expect(book.conflicts).toEqual([d.conflict])
    } else {
      expect(book.conflicts).toEqual([])
    }
  })

  it('returns a version conflict only the first time, however often the loser comes back', () => {
    const { book } = trustedBook()
    book.offer(v1High)
    expect(book.offer(v1Low).conflict).toBeDefined()
    const again = book.offer(v1Low)
    expect(again).toEqual({ accept: false, reason: 'conflict-lost' })
    expect(book.conflicts).toHaveLength(1)
  })

  it('takes a winner at once: a copy offered before it is persisted is a duplicate', () => {
    const { book } = trustedBook()
    expect(book.offer(v2x).accept).toBe(true)
    expect(book.offer(v2x)).toEqual({ accept: false, reason: 'duplicate' })
  })

  it('keeps one envelope per name', () => {
    const { book } = trustedBook()
    const other = verified(configPolicy('site/other'), { key })
    book.offer(v1x)
    book.offer(other)
    book.offer(v2x)
    expect(book.size).toBe(2)
    expect([...book.values()].map((e) => e.name).sort()).toEqual(['site/motd', 'site/other'])
    expect(book.get('site/none')).toBeUndefined()
  })
})

describe('PolicyBook trust', () => {
  const admin = keys.webAdmin
  const byAdmin = signed(configPolicy('web/nginx'), { key: admin })
  const trust = (version: number, scopes: string[]): VerifiedEnvelope => verified(trustPolicy([{ key: admin.id, scopes }]), { key, version })
  const admits = (book: PolicyBook): boolean => {
    try {
      validateEnvelope(byAdmin, book.trust)
      return true
    } catch (err) {
      if (err instanceof UntrustedSignerError || err instanceof OutOfScopeError) return false
      throw err
    }
  }

  it('puts a trust policy into effect for the next envelope', () => {
    const { book } = trustedBook({ keys })
    expect(book.trustVersion).toBeUndefined()
    expect(admits(book)).toBe(false)
    expect(book.offer(trust(1, ['web/'])).accept).toBe(true)
    expect(admits(book)).toBe(true)
    expect(book.trustVersion).toBe(1)
    expect(book.get(TRUST_POLICY_NAME)?.version).toBe(1)
  })

  it('leaves trust as it is when the version rule refuses a trust policy', () => {
    const { book } = trustedBook({ keys })
    book.offer(trust(2, ['web/']))
    expect(book.offer(trust(1, ['db/']))).toEqual({ accept: false, reason: 'older' })
    expect(admits(book)).toBe(true)
    expect(book.trustVersion).toBe(2)
  })

  it('takes the trust of the winner of a same-version conflict, whichever came first', () => {
    const web = trust(1, ['web/'])
    const db = trust(1, ['db/'])
    const webWins = web.hash > db.hash
    for (const order of [[web, db], [db, web]]) {
      const { book } = trustedBook({ keys })
      for (const env of order) book.offer(env)
      expect(admits(book)).toBe(webWins)
    }
  })
})

describe('PolicyBook conflicts', () => {
  it('records a version conflict once per name and version, stamped with the book\'s time', () => {
    const time = new FakeTime()
    const { book } = trustedBook({ keys, now: time.now })
    const c = { version: 3, winner: 'sha256:b', loser: 'sha256:a' }
    expect(book.versionConflict(name, c)).toEqual({ kind: 'version', name, version: 3, winner: 'sha256:b', loser: 'sha256:a', at: new Date(FIXED_NOW).toISOString() })
    expect(book.versionConflict(name, { ...c, loser: 'sha256:0' })).toBeUndefined()
    expect(book.versionConflict(name, { ...c, version: 4 })).toBeDefined()
    expect(book.versionConflict('site/other', c)).toBeDefined()
    expect(book.conflicts.map((r) => `${r.name} v${r.version}`)).toEqual(['site/motd v3', 'site/motd v4', 'site/other v3'])
  })

  it('records a path claimed by two policies once per path', () => {
    const { book } = trustedBook({ keys })
    expect(book.pathConflict('b', '/etc/motd', 'a')).toMatchObject({ kind: 'path', name: 'b', path: '/etc/motd', policies: ['a', 'b'] })
    expect(book.pathConflict('b', '/etc/motd', 'a')).toBeUndefined()
    expect(book.pathConflict('c', '/etc/motd', 'a')).toBeUndefined()
    expect(book.pathConflict('b', '/etc/issue', 'a')).toBeDefined()
    expect(book.conflicts.map((r) => r.path)).toEqual(['/etc/motd', '/etc/issue'])
  })

  it('keeps version and path conflicts apart', () => {
    const { book } = trustedBook({ keys })
    book.versionConflict('x', { version: 1, winner: 'sha256:b', loser: 'sha256:a' })
    expect(book.pathConflict('x', '/x', 'w')).toBeDefined()
    expect(book.conflicts.map((r) => r.kind)).toEqual(['version', 'path'])
  })
})

describe('PolicyBook digest and servable', () => {
  const other = verified(configPolicy('site/other'), { key, version: 7 })

  it('digests what it holds, one entry per name', () => {
    const { book } = trustedBook({ keys })
    expect(book.digest()).toEqual([])
    book.offer(v1x)
    book.offer(other)
    book.offer(v2x)
    expect(book.digest()).toEqual([
      { name, version: 2, hash: v2x.hash, id: v2x.id },
      { name: 'site/other', version: 7, hash: other.hash, id: other.id }
    ])
  })

  it.each<[string, { name: string, version: number, hash: string }, boolean]>([
    ['exactly the envelope held', { name, version: 2, hash: v2x.hash }, true],
    ['an older version', { name, version: 1, hash: v1x.hash }, false],
    ['a newer version', { name, version: 3, hash: v2x.hash }, false],
    ['the version held with another hash', { name, version: 2, hash: v1y.hash }, false],
    ['a name not held', { name: 'site/none', version: 2, hash: v2x.hash }, false]
  ])('serves %s: %s', (_, req, serves) => {
    const { book } = trustedBook({ keys })
    book.offer(v2x)
    expect(book.servable(req)).toBe(serves ? v2x.bytes : undefined)
  })
})

describe('PolicyBook re-checks what it holds when trust changes', () => {
  const admin = keys.webAdmin
  const trust = (version: number, admins: Array<{ key: string, scopes: string[] }>, revoked: string[] = []): VerifiedEnvelope =>
    verified(trustPolicy(admins, revoked), { key, version })
  const byAdmin = verified(configPolicy('web/nginx'), { key: admin })
  const byRoot = verified(configPolicy('site/motd'), { key })

  function holding (): PolicyBook {
    const { book } = trustedBook({ keys })
    book.offer(trust(1, [{ key: admin.id, scopes: ['web/'] }]))
    book.offer(byAdmin)
    book.offer(byRoot)
    return book
  }

  it.each<[string, VerifiedEnvelope, string]>([
    ['its signer revoked', trust(2, [{ key: admin.id, scopes: ['web/'] }], [admin.id]), 'revoked'],
    ['its signer\'s scope narrowed', trust(2, [{ key: admin.id, scopes: ['db/'] }]), 'out-of-scope'],
    ['its signer no longer an admin', trust(2, []), 'untrusted']
  ])('drops a held envelope no longer allowed (%s) and says so', (_, next, reason) => {
    const book = holding()
    const d = book.offer(next)
    const record = { name: 'web/nginx', version: 1, hash: byAdmin.hash, signer: admin.id, reason, error: expect.any(String), at: new Date(FIXED_NOW).toISOString() }
    expect(d).toMatchObject({ accept: true, untrusted: [record] })
    expect(book.get('web/nginx')).toBeUndefined()
    expect(book.get('site/motd')).toBe(byRoot)
    expect(book.trustVersion).toBe(2)
    expect(book.untrusted).toEqual([record])
    expect(book.digest().map((e) => e.name).sort()).toEqual([TRUST_POLICY_NAME, 'site/motd'])
  })

  it('says nothing of untrusted when the new trust still allows all it holds', () => {
    const book = holding()
    const d = book.offer(trust(2, [{ key: admin.id, scopes: ['web/', 'db/'] }]))
    expect(d.accept && d.untrusted).toBeUndefined()
    expect(book.size).toBe(3)
    expect(book.untrusted).toEqual([])
  })

  it('forgets an untrusted policy once a version it allows is taken', () => {
    const book = holding()
    book.offer(trust(2, []))
    expect(book.untrusted.map((u) => u.name)).toEqual(['web/nginx'])
    expect(book.offer(verified(configPolicy('web/nginx'), { key, version: 2 })).accept).toBe(true)
    expect(book.untrusted).toEqual([])
  })

  it('knows a peer\'s offer of a version it dropped as untrusted, while the signer stays unallowed', () => {
    const book = holding()
    book.offer(trust(2, [{ key: admin.id, scopes: ['web/'] }], [admin.id]))
    const offer = { name: 'web/nginx', version: 1, hash: byAdmin.hash }
    expect(book.droppedAsUntrusted(offer)).toBe(true)
    expect(book.droppedAsUntrusted({ ...offer, version: 2 })).toBe(false)
    expect(book.droppedAsUntrusted({ ...offer, name: 'site/motd' })).toBe(false)
    // Allowed again: asking for it is worth it, and the intake decides.
    book.offer(trust(3, [{ key: admin.id, scopes: ['web/'] }]))
    expect(book.droppedAsUntrusted(offer)).toBe(false)
  })

  it('notes a policy found untrusted elsewhere, unless it holds one by that name', () => {
    const book = holding()
    const record = { name: 'web/other', version: 3, hash: 'sha256:x', signer: admin.id, reason: 'revoked', error: 'revoked', at: '' }
    book.distrust(record)
    book.distrust({ ...record, name: 'site/motd' })
    expect(book.untrusted).toEqual([record])
  })
})
