import { describe, expect, it } from 'vitest'
import { FleetView, type FleetNode, type NodeReport, type Presence, type Receipt } from '../../src/receipt/index.js'

const KEY = `ed25519:${'A'.repeat(43)}`
const hash = (v: number): string => `sha256:${String(v).repeat(64).slice(0, 64)}`
const at = (minute: number): string => new Date(Date.UTC(2025, 0, 2, 3, minute)).toISOString()

function receipt (node: string, version: number, minute: number, extra: Partial<Receipt> = {}): Receipt {
  return {
    format: 1, kind: 'receipt', node, key: KEY, name: `name-${node}`, tags: {}, at: at(minute),
    policy: 'web/nginx', version, hash: hash(version), outcome: 'applied', changed: 1, failures: [], failedCount: 0, durationMs: 5,
    ...extra
  }
}

function presence (node: string, minute: number, policies: Presence['policies'], extra: Partial<Presence> = {}): Presence {
  return { format: 1, kind: 'presence', node, key: KEY, name: `name-${node}`, tags: {}, at: at(minute), policies, ...extra }
}

function view (...reports: NodeReport[]): FleetView {
  const v = new FleetView()
  for (const r of reports) v.add(r)
  return v
}

const state = (v: FleetView, node = 'n1', policy = 'web/nginx'): unknown => {
  const s = v.list().find((n) => n.id === node)?.policies[policy]
  return s === undefined ? undefined : { version: s.version, outcome: s.outcome, at: s.at }
}

describe('FleetView.add', () => {
  // Which report a node's state for one policy follows, given reports in arrival order.
  it.each<[string, NodeReport[], { version: number, outcome: string, at: string }]>([
    ['a higher version replaces a lower', [receipt('n1', 1, 0), receipt('n1', 2, 1)], { version: 2, outcome: 'applied', at: at(1) }],
    ['a lower version arriving late does not', [receipt('n1', 2, 1), receipt('n1', 1, 2)], { version: 2, outcome: 'applied', at: at(1) }],
    ['the same version reported later replaces', [receipt('n1', 2, 1), receipt('n1', 2, 5, { outcome: 'failed' })], { version: 2, outcome: 'failed', at: at(5) }],
    ['the same version reported at the same time replaces', [receipt('n1', 2, 1), receipt('n1', 2, 1, { outcome: 'unchanged' })], { version: 2, outcome: 'unchanged', at: at(1) }],
    ['the same version reported earlier does not', [receipt('n1', 2, 5), receipt('n1', 2, 1, { outcome: 'failed' })], { version: 2, outcome: 'applied', at: at(5) }],
    ['a beacon with a higher version replaces a receipt', [receipt('n1', 2, 1), presence('n1', 2, [['web/nginx', 3, hash(3), 'pending']])], { version: 3, outcome: 'pending', at: at(2) }],
    ['a later beacon with the same version replaces a receipt: the node\'s newer word (a fix, a policy now untrusted)', [receipt('n1', 2, 1, { outcome: 'failed' }), presence('n1', 9, [['web/nginx', 2, hash(2), 'applied']])], { version: 2, outcome: 'applied', at: at(9) }],
    ['an earlier beacon with the same version does not replace a receipt', [receipt('n1', 2, 5), presence('n1', 1, [['web/nginx', 2, hash(2), 'pending']])], { version: 2, outcome: 'applied', at: at(5) }],
    ['a receipt of the beacon\'s version, reported later, replaces it', [presence('n1', 1, [['web/nginx', 2, hash(2), 'pending']]), receipt('n1', 2, 3)], { version: 2, outcome: 'applied', at: at(3) }]
  ])('%s', (_, reports, expected) => {
    expect(state(view(...reports))).toEqual(expected)
  })

  it('keeps a receipt\'s failures only when it lists some', () => {
    const failures = [{ resource: 'motd', error: 'EACCES' }]
    const failed = view(receipt('n1', 1, 0, { outcome: 'failed', failures, failedCount: 3 })).list()[0]!.policies['web/nginx']!
    expect(failed.failures).toEqual(failures)
    expect('failures' in view(receipt('n1', 1, 0)).list()[0]!.policies['web/nginx']!).toBe(false)
  })

  it('a later beacon saying the same of the same version keeps the receipt\'s failures; one saying otherwise drops them', () => {
    const failures = [{ resource: 'check:up', error: 'exited 1' }]
    const unhealthy = receipt('n1', 2, 1, { outcome: 'unhealthy', failures })
    const still = view(unhealthy, presence('n1', 5, [['web/nginx', 2, hash(2), 'unhealthy']])).list()[0]!.policies['web/nginx']!
    expect(still).toEqual(expect.objectContaining({ outcome: 'unhealthy', at: at(5), failures }))
    const fixed = view(unhealthy, presence('n1', 6, [['web/nginx', 2, hash(2), 'applied']])).list()[0]!.policies['web/nginx']!
    expect(fixed.outcome).toBe('applied')
    expect('failures' in fixed).toBe(false)
  })

  it('an agent\'s answer that only heard the beacon keeps the failures this view had from the receipt', () => {
    const failures = [{ resource: 'check:up', error: 'exited 1' }]
    const v = view(receipt('n1', 2, 1, { outcome: 'unhealthy', failures }))
    const beaconOnly = view(presence('n1', 5, [['web/nginx', 2, hash(2), 'unhealthy']])).list()[0]!
    v.merge(beaconOnly)
    expect(v.list()[0]!.policies['web/nginx']).toEqual(expect.objectContaining({ outcome: 'unhealthy', at: at(5), failures }))
  })

  it('a beacon sets every policy it lists, and leaves the others', () => {
    const v = view(receipt('n1', 1, 0, { policy: 'site/other' }), presence('n1', 1, [['web/nginx', 4, hash(4), 'applied'], ['grapevine/trust', 2, hash(2), 'trust']]))
    expect(Object.keys(v.list()[0]!.policies).sort()).toEqual(['grapevine/trust', 'site/other', 'web/nginx'])
    expect(state(v, 'n1', 'grapevine/trust')).toEqual({ version: 2, outcome: 'trust', at: at(1) })
  })

  it('a node\'s name and tags follow its newest report, not the last to arrive', () => {
    const v = view(
      receipt('n1', 1, 5, { name: 'web-new', tags: { dc: 'b' } }),
      presence('n1', 1, [], { name: 'web-old', tags: { dc: 'a' } })
    )
    expect(v.list()).toEqual([expect.objectContaining({ id: 'n1', name: 'web-new', tags: { dc: 'b' }, lastSeen: at(5) })])
    v.add(presence('n1', 7, [], { name: 'web-renamed', tags: {} }))
    expect(v.list()[0]).toMatchObject({ name: 'web-renamed', tags: {}, lastSeen: at(7) })
  })

  it('beyond its bound, forgets the node seen least recently', () => {
    const v = new FleetView(2)
    v.add(presence('n1', 3, []))
    v.add(presence('n2', 1, []))
    v.add(presence('n3', 2, []))
    expect(v.size).toBe(2)
    expect(v.list().map((n) => n.id)).toEqual(['n1', 'n3'])
    // A node older than all those it would join is the one forgotten.
    v.add(presence('n4', 0, []))
    expect(v.list().map((n) => n.id)).toEqual(['n1', 'n3'])
  })
})

describe('FleetView: bounded policy states', () => {
  const many = (n: number): Presence['policies'] => Array.from({ length: n }, (_, i) => [`web/p${i}`, 1, hash(1), 'applied'])
  const states = (v: FleetView): number => v.list().reduce((s, n) => s + Object.keys(n.policies).length, 0)

  it('forgets the nodes seen least recently once all nodes together report more policies than its bound (before: 100,000 nodes × 64)', () => {
    const v = new FleetView(1000, undefined, () => Date.UTC(2025, 0, 2, 4), 100)
    for (let i = 0; i < 10; i++) v.add(presence(`fake${i}`, i, many(30)))
    expect(states(v)).toBeLessThanOrEqual(100)
    expect(v.list().map((n) => n.id)).toEqual(['fake7', 'fake8', 'fake9'])
  })

  it('counts a node\'s policies once however often it reports them, and frees them with the node', () => {
    const v = new FleetView(2, undefined, () => Date.UTC(2025, 0, 2, 4), 100)
    for (let minute = 0; minute < 5; minute++) v.add(presence('n1', minute, many(40)))
    v.add(presence('n2', 6, many(40)))
    expect(v.size).toBe(2)
    // n3 takes n1's place (the node bound), and n1's 40 states go with it: 80, within 100.
    v.add(presence('n3', 7, many(40)))
    expect(v.list().map((n) => n.id)).toEqual(['n2', 'n3'])
    v.add(receipt('n2', 1, 8, { policy: 'web/extra' }))
    expect(states(v)).toBe(81)
    expect(v.size).toBe(2)
  })
})

describe('FleetView.merge', () => {
  const node = (id: string, minute: number, policies: FleetNode['policies'], name = `name-${id}`): FleetNode =>
    ({ id, name, tags: { from: 'peer' }, lastSeen: at(minute), policies, admitted: true })

  it('takes in a node it did not know, with its policies', () => {
    const v = new FleetView()
    const theirs = node('n9', 4, { 'web/nginx': { version: 3, hash: hash(3), outcome: 'applied', at: at(4) } })
    v.merge(theirs)
    expect(v.list()).toEqual([theirs])
  })

  it.each<[string, { version: number, at: number, outcome: string }, { version: number, outcome: string }]>([
    ['a higher version wins', { version: 3, at: 0, outcome: 'failed' }, { version: 3, outcome: 'failed' }],
    ['a lower version loses', { version: 1, at: 9, outcome: 'failed' }, { version: 2, outcome: 'applied' }],
    ['the same version, later, wins', { version: 2, at: 6, outcome: 'failed' }, { version: 2, outcome: 'failed' }],
    ['the same version at the same time keeps ours', { version: 2, at: 5, outcome: 'failed' }, { version: 2, outcome: 'applied' }],
    ['the same version, earlier, loses', { version: 2, at: 4, outcome: 'failed' }, { version: 2, outcome: 'applied' }]
  ])('per policy, %s', (_, theirs, expected) => {
    const v = view(receipt('n1', 2, 5))
    v.merge(node('n1', theirs.at, { 'web/nginx': { version: theirs.version, hash: hash(theirs.version), outcome: theirs.outcome, at: at(theirs.at) } }))
    expect(state(v)).toMatchObject(expected)
  })

  it('takes a node\'s name and tags from the side that saw it last', () => {
    const v = view(receipt('n1', 1, 5))
    v.merge(node('n1', 4, {}, 'stale-name'))
    expect(v.list()[0]).toMatchObject({ name: 'name-n1', lastSeen: at(5), tags: {} })
    v.merge(node('n1', 6, {}, 'fresh-name'))
    expect(v.list()[0]).toMatchObject({ name: 'fresh-name', lastSeen: at(6), tags: { from: 'peer' } })
  })

  it('keeps to its bound', () => {
    const v = new FleetView(1)
    v.merge(node('n1', 1, {}))
    v.merge(node('n2', 2, {}))
    expect(v.list().map((n) => n.id)).toEqual(['n2'])
  })
})

describe('FleetView.list', () => {
  it('orders nodes by name, then id', () => {
    const v = view(
      presence('n3', 0, [], { name: 'web' }),
      presence('n1', 0, [], { name: 'web' }),
      presence('n2', 0, [], { name: 'db' })
    )
    expect(v.list().map((n) => `${n.name}/${n.id}`)).toEqual(['db/n2', 'web/n1', 'web/n3'])
    expect(v.size).toBe(3)
  })
})

describe('FleetView: a report from the future', () => {
  it('is believed only up to this node\'s clock plus the skew, so the node can look stale and its later reports count', () => {
    const now = Date.UTC(2025, 0, 2, 3, 0)
    const v = new FleetView(undefined, undefined, () => now)
    v.add(presence('n1', 60 * 24 * 365, [['web/nginx', 1, hash(1), 'applied']]))
    expect(v.list()[0]!.lastSeen).toBe(new Date(now + 5 * 60_000).toISOString())
    v.add(presence('n1', 5, [['web/nginx', 2, hash(2), 'applied']], { name: 'renamed' }))
    expect(v.list()[0]!.name).toBe('renamed')
  })
})

describe('FleetView: a node\'s encryption key (docs/secrets.md)', () => {
  const OLD = `age1${'q'.repeat(58)}`
  const NEW = `age1${'p'.repeat(58)}`
  const recipient = (v: FleetView, node = 'n1'): string | undefined => v.list().find((n) => n.id === node)?.recipient

  it.each<[string, NodeReport[], string | undefined]>([
    ['a receipt\'s key is listed', [receipt('n1', 1, 0, { recipient: OLD })], OLD],
    ['a beacon\'s key is listed', [presence('n1', 0, [], { recipient: OLD })], OLD],
    ['a newer report\'s key replaces the older (a rekey)', [receipt('n1', 1, 0, { recipient: OLD }), presence('n1', 5, [], { recipient: NEW })], NEW],
    ['an older report arriving late does not bring back the old key', [presence('n1', 5, [], { recipient: NEW }), receipt('n1', 1, 0, { recipient: OLD })], NEW],
    ['a newer report announcing no key (an older agent) drops it', [receipt('n1', 1, 0, { recipient: OLD }), presence('n1', 5, [])], undefined],
    ['a node that never announced one has none', [receipt('n1', 1, 0)], undefined]
  ])('%s', (_, reports, expected) => {
    const v = view(...reports)
    expect(recipient(v)).toBe(expected)
    // Absent, not `recipient: undefined`: a listing is JSON for /fleet and the fleet query.
    expect('recipient' in (v.list()[0] as FleetNode)).toBe(expected !== undefined)
  })

  it('merge takes the key from the side that saw the node last, and keeps its own when the other side has none', () => {
    const base = (minute: number, key?: string): FleetNode => ({ id: 'n1', name: 'name-n1', tags: {}, lastSeen: at(minute), policies: {}, admitted: true, ...(key !== undefined ? { recipient: key } : {}) })
    const v = view(receipt('n1', 1, 5, { recipient: OLD }))
    v.merge(base(4, NEW))
    expect(recipient(v)).toBe(OLD)
    v.merge(base(6))
    expect(recipient(v)).toBe(undefined)
    v.merge(base(3, OLD))
    expect(recipient(v)).toBe(OLD)
    v.merge(base(9, NEW))
    expect(recipient(v)).toBe(NEW)
    const fresh = new FleetView()
    fresh.merge(base(2, NEW))
    expect(fresh.list()).toEqual([base(2, NEW)])
  })
})

describe('FleetView: a node\'s facts (docs/facts.md)', () => {
  const DEBIAN = { os: { family: 'debian', release: { major: '12' } }, processors: { count: 4 } }
  const REDHAT = { os: { family: 'redhat' } }
  const factsOf = (v: FleetView, node = 'n1'): unknown => v.list().find((n) => n.id === node)?.facts

  it('keeps the facts of the newest beacon; a receipt carries none and erases none; an older beacon changes nothing', () => {
    const v = view(presence('n1', 1, [], { facts: DEBIAN }))
    expect(factsOf(v)).toEqual(DEBIAN)
    v.add(receipt('n1', 1, 2))
    expect(factsOf(v)).toEqual(DEBIAN)
    v.add(presence('n1', 0, [], { facts: REDHAT }))
    expect(factsOf(v)).toEqual(DEBIAN)
    v.add(presence('n1', 3, [], { facts: REDHAT }))
    expect(factsOf(v)).toEqual(REDHAT)
    // A newer beacon without facts (an agent older than facts): none.
    v.add(presence('n1', 4, []))
    expect(v.list()[0]).not.toHaveProperty('facts')
  })

  it('merge takes the facts of the side that saw the node last, keeps its own when the other has none, and drops facts no beacon could carry', () => {
    const v = view(presence('n1', 1, [], { facts: DEBIAN }))
    const other = (minute: number, facts?: Record<string, unknown>): FleetNode => ({ id: 'n1', name: 'name-n1', tags: {}, lastSeen: at(minute), policies: {}, admitted: true, ...(facts !== undefined ? { facts } : {}) })
    v.merge(other(0, REDHAT))
    expect(factsOf(v)).toEqual(DEBIAN)
    v.merge(other(2))
    expect(factsOf(v)).toEqual(DEBIAN)
    v.merge(other(3, REDHAT))
    expect(factsOf(v)).toEqual(REDHAT)
    v.merge(other(4, { big: 'x'.repeat(4096) }))
    expect(factsOf(v)).toBeUndefined()
    const fresh = new FleetView()
    fresh.merge(other(1, ['not', 'a', 'map'] as unknown as Record<string, unknown>))
    expect(fresh.list()[0]).not.toHaveProperty('facts')
  })

  it('evicts the least recently seen node when the facts it holds pass their bound', () => {
    const facts = { note: 'x'.repeat(900) }
    const bytes = Buffer.byteLength(JSON.stringify(facts))
    const v = new FleetView(1000, undefined, () => Date.UTC(2025, 0, 2, 4), 1000, bytes * 2)
    v.add(presence('n1', 1, [], { facts }))
    v.add(presence('n2', 2, [], { facts }))
    expect(v.size).toBe(2)
    v.add(presence('n3', 3, [], { facts }))
    expect(v.list().map((n) => n.id)).toEqual(['n2', 'n3'])
    // Facts replaced by smaller ones are counted as they are now.
    v.add(presence('n2', 4, [], { facts: { note: 'small' } }))
    v.add(presence('n4', 5, [], { facts: { note: 'small' } }))
    expect(v.list().map((n) => n.id)).toEqual(['n2', 'n3', 'n4'])
  })
})
