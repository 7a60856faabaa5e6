import * as lp from 'it-length-prefixed'
import { describe, expect, it, vi } from 'vitest'
import type { VerifiedEnvelope } from '../../src/envelope/index.js'
import type { ApplyReport } from '../../src/apply/index.js'
import { generateIdentity, nodeSigningKey, peerIdOf } from '../../src/net/identity.js'
import type { Stream } from '@libp2p/interface'
import type { PeerId } from '../../src/net/libp2p.js'
import { summarizeFacts } from '../../src/facts/index.js'
import { MAX_PRESENCE_FACTS_BYTES, MAX_PRESENCE_POLICIES, MAX_RECEIPT_BYTES, signReport, type NodeReport, type Presence, type Receipt, type ReceiptOutcome } from '../../src/receipt/index.js'
import { JOIN_BEACON_DELAYS_MS, MAX_RECEIPT_ROUTES, Reports, type ReportsComponents } from '../../src/node/reports.js'
import { RECEIPT_BATCH_MS, RECEIPT_PROTOCOL, verifyNodeReport } from '../../src/node/receipts.js'
import { configPolicy, FIXED_NOW, makeKeys } from '../helpers/envelope.js'
import { MAX_ADMISSION_TAGS, openAdmission, signAdmission } from '../../src/admission/index.js'
import { fakeClock, fakeMetrics, RecordingLogger, verified } from './fakes.js'

/** A node's identity as reports need it: its peer id, and its libp2p key as the signing key. */
async function identity (): Promise<{ peer: PeerId, id: string, signingKey: ReturnType<typeof nodeSigningKey> }> {
  const key = await generateIdentity()
  const peer = peerIdOf(key)
  return { peer, id: peer.toString(), signingKey: nodeSigningKey(key) }
}

const self = await identity()
const up = await identity()
const down = await identity()
const keys = makeKeys()
const env = verified(configPolicy('site/motd'), { key: keys.root, version: 3 })

/** The receipts protocol as Reports sees libp2p: handlers, streams it dials (their frames kept), connected peers. */
class FakeNet {
  readonly handled: string[] = []
  readonly connected = new Set<string>()
  /** Frames each dialled stream carried, by peer. */
  readonly sent: Array<{ peer: string, protocol: string, frames: Uint8Array[] }> = []
  failDial?: Error

  readonly handle = async (protocol: string | string[]): Promise<void> => { this.handled.push(String(protocol)) }

  readonly dialProtocol = async (peer: PeerId, protocol: string | string[]): Promise<Stream> => {
    if (this.failDial !== undefined) throw this.failDial
    const entry = { peer: peer.toString(), protocol: String(protocol), frames: [] as Uint8Array[] }
    const stream = {
      sink: async (source: AsyncIterable<Uint8Array | { subarray: () => Uint8Array }>) => {
        const chunks: Uint8Array[] = []
        for await (const chunk of source) chunks.push(chunk.subarray())
        for await (const frame of lp.decode(chunks)) entry.frames.push(frame.subarray())
        this.sent.push(entry)
      },
      abort: () => {}
    }
    return stream as unknown as Stream
  }

  readonly getConnections = (peer?: PeerId): unknown[] => this.connected.has(String(peer)) ? [{}] : []
}

function setup (over: Partial<ReportsComponents> = {}) {
  const { time, clock } = fakeClock()
  const net = new FakeNet()
  const log = new RecordingLogger()
  const { metrics, m } = fakeMetrics('receipts')
  const stopping = new AbortController()
  /** Reports noted, beacons gossiped, and when (ms since the start). */
  const seen = { reports: [] as NodeReport[], gossiped: [] as Uint8Array[], gossipedAt: [] as number[] }
  const start = time.now()
  let held: VerifiedEnvelope[] = [env]
  const reports = new Reports({
    facts: { id: self.id, name: 'web1', tags: { role: 'web' } },
    signingKey: self.signingKey,
    clock,
    metrics,
    log,
    gossip: async (bytes) => {
      seen.gossiped.push(bytes)
      seen.gossipedAt.push(time.now() - start)
      return 5
    },
    net: net as unknown as ReportsComponents['net'],
    held: () => held,
    outcomeOf: (e) => `outcome of ${e.name}`,
    onReport: (r) => { seen.reports.push(r) },
    signal: stopping.signal,
    untrusted: () => [],
    ...over
  })
  const hold = (envs: VerifiedEnvelope[]): void => { held = envs }
  return { reports, net, log, m, seen, time, clock, stopping, hold }
}

function applyReport (changed: number, failed: number): ApplyReport {
  const resources: ApplyReport['resources'] = Array.from({ length: failed }, (_, i) => ({ id: `r${i}`, type: 'file', action: 'none', status: 'failed', error: { name: 'Error', message: `boom ${i}` }, durationMs: 0 }))
  return { policy: 'site/motd', dryRun: false, startedAt: new Date(FIXED_NOW).toISOString(), durationMs: 7, outcome: failed > 0 ? 'failures' : changed > 0 ? 'changes' : 'no-changes', counts: { total: changed + failed, changed, unchanged: 0, failed, skipped: 0, unknown: 0 }, resources }
}

function receiptFrom (node: Awaited<ReturnType<typeof identity>>, over: Partial<Receipt> = {}): Uint8Array {
  const receipt: Receipt = {
    format: 1, kind: 'receipt', node: node.id, key: node.signingKey.id, name: 'other', tags: {}, at: new Date(FIXED_NOW).toISOString(),
    policy: env.name, version: env.version, hash: env.hash, outcome: 'applied', changed: 1, failures: [], failedCount: 0, durationMs: 3, ...over
  }
  return signReport(receipt, node.signingKey)
}

function presenceFrom (node: Awaited<ReturnType<typeof identity>>, signer = node): Uint8Array {
  const presence: Presence = { format: 1, kind: 'presence', node: node.id, key: signer.signingKey.id, name: 'other', tags: {}, at: new Date(FIXED_NOW).toISOString(), policies: [[env.name, env.version, env.hash, 'applied']] }
  return signReport(presence, signer.signingKey)
}

describe('Reports: taking reports', () => {
  it('serves the receipts protocol once started', async () => {
    const { reports, net } = setup()
    await reports.start()
    expect(net.handled).toEqual([RECEIPT_PROTOCOL])
  })

  it.each<[string, () => Uint8Array, boolean]>([
    ['a presence beacon signed by its node', () => presenceFrom(down), true],
    ['a receipt signed by its node', () => receiptFrom(down), true],
    ['a beacon signed by another node\'s key', () => presenceFrom(down, up), false],
    ['garbage', () => new TextEncoder().encode('{"kind":"presence"}'), false]
  ])('by gossip: %s → valid %s', async (_, bytes, valid) => {
    const { reports, seen } = setup()
    expect(await reports.takeGossiped(bytes(), up.id)).toBe(valid ? 'accepted' : 'rejected')
    expect(seen.reports).toHaveLength(valid ? 1 : 0)
    expect(reports.fleet.list().map((n) => n.id)).toEqual(valid ? [down.id] : [])
  })

  it.each<[string, () => Uint8Array]>([
    ['a presence beacon (they gossip, never route)', () => presenceFrom(down)],
    ['a forged receipt', () => receiptFrom(down, { key: up.signingKey.id })],
    ['garbage', () => new Uint8Array([1, 2, 3])]
  ])('refuses a routed %s', (_, bytes) => {
    const { reports, m, seen } = setup()
    expect(reports.takeRouted(bytes(), down.id)).toBe(false)
    expect(m.receipts.count({ result: 'rejected' })).toBe(1)
    expect(seen.reports).toEqual([])
  })
})

describe('Reports: routing receipts towards the publisher', () => {
  it('passes a routed receipt on to the peer this node took the envelope from', async () => {
    const { reports, net, m, seen, time } = setup()
    reports.rememberUpstream(env, up.id)
    net.connected.add(up.id)
    const bytes = receiptFrom(down)
    expect(reports.takeRouted(bytes, down.id)).toBe(true)
    expect(m.receipts.count({ result: 'received' })).toBe(1)
    expect(seen.reports).toMatchObject([{ kind: 'receipt', node: down.id }])
    // Receipts for one peer wait RECEIPT_BATCH_MS on the injected clock, so one stream carries a burst.
    expect(net.sent).toHaveLength(0)
    await time.advance(RECEIPT_BATCH_MS)
    await vi.waitFor(() => { expect(net.sent).toHaveLength(1) }, { timeout: 5000 })
    expect(net.sent).toEqual([{ peer: up.id, protocol: RECEIPT_PROTOCOL, frames: [bytes] }])
    await vi.waitFor(() => { expect(m.receipts.count({ result: 'forwarded' })).toBe(1) }, { timeout: 5000 })
  })

  it.each<[string, (net: FakeNet, reports: Reports) => void, string | undefined]>([
    ['no upstream: this node published it', () => {}, undefined],
    ['the upstream has left', (_net, r) => { r.rememberUpstream(env, up.id) }, undefined],
    ['the upstream is the peer it came from', (net, r) => { r.rememberUpstream(env, down.id); net.connected.add(down.id) }, down.id],
    ['the route is for another version', (net, r) => { r.rememberUpstream({ ...env, version: env.version + 1 }, up.id); net.connected.add(up.id) }, undefined]
  ])('keeps a routed receipt when %s', (_, arrange, from) => {
    const { reports, net, m } = setup()
    arrange(net, reports)
    expect(reports.takeRouted(receiptFrom(down), from ?? down.id)).toBe(true)
    expect(m.receipts.count({ result: 'kept' })).toBe(1)
    expect(reports.fleet.list().map((n) => n.id)).toEqual([down.id])
  })

  it('signs its own receipt, keeps it in its fleet view and sends it upstream', async () => {
    const { reports, net, seen, time } = setup()
    reports.rememberUpstream(env, up.id)
    net.connected.add(up.id)
    reports.sendReceipt(env, 'failed', applyReport(2, 1))
    await time.advance(RECEIPT_BATCH_MS)
    const own = seen.reports[0] as Receipt
    expect(own).toMatchObject({ kind: 'receipt', node: self.id, key: self.signingKey.id, name: 'web1', policy: env.name, version: 3, hash: env.hash, outcome: 'failed', changed: 2, failedCount: 1, failures: [{ resource: 'r0', error: 'boom 0' }], durationMs: 7 })
    expect(reports.fleet.list()[0]?.policies[env.name]?.outcome).toBe('failed')
    await vi.waitFor(() => { expect(net.sent).toHaveLength(1) }, { timeout: 5000 })
    expect(verifyNodeReport(net.sent[0]!.frames[0]!)).toEqual(own)
  })

  it('keeps receipts it could not send, and says why at debug level', async () => {
    const { reports, net, m, log, time } = setup()
    reports.rememberUpstream(env, up.id)
    net.connected.add(up.id)
    net.failDial = new Error('connection reset')
    reports.sendReceipt(env, 'applied', applyReport(1, 0))
    await time.advance(RECEIPT_BATCH_MS)
    await vi.waitFor(() => { expect(m.receipts.count({ result: 'kept' })).toBe(1) }, { timeout: 5000 })
    expect(log.at('debug').map((l) => l.obj.err)).toEqual(['connection reset'])
  })

  it(`forgets the oldest route past ${MAX_RECEIPT_ROUTES}`, () => {
    const { reports, net, m } = setup()
    net.connected.add(up.id)
    for (let v = 1; v <= MAX_RECEIPT_ROUTES + 1; v++) reports.rememberUpstream({ ...env, version: v }, up.id)
    reports.takeRouted(receiptFrom(down, { version: 1 }), down.id)
    expect(m.receipts.count({ result: 'kept' })).toBe(1)
    reports.takeRouted(receiptFrom(down, { version: 2 }), down.id)
    expect(m.receipts.count({ result: 'kept' })).toBe(1)
  })

  describe('quiet drift checks', () => {
    type Send = [ReceiptOutcome, ApplyReport | undefined]
    it.each<[string, Send, Send, boolean]>([
      ['the same unchanged run twice', ['unchanged', applyReport(0, 0)], ['unchanged', applyReport(0, 0)], false],
      ['not targeted twice', ['not-targeted', undefined], ['not-targeted', undefined], false],
      ['retired twice', ['retired', undefined], ['retired', undefined], false],
      ['two runs that changed something', ['applied', applyReport(1, 0)], ['applied', applyReport(1, 0)], true],
      ['two failed runs', ['failed', applyReport(0, 1)], ['failed', applyReport(0, 1)], true],
      ['a repair, then quiet', ['applied', applyReport(1, 0)], ['unchanged', applyReport(0, 0)], true],
      ['quiet, then a repair', ['unchanged', applyReport(0, 0)], ['applied', applyReport(2, 0)], true]
    ])('%s: second receipt sent %s', (_, first, second, sentTwice) => {
      const { reports, m } = setup()
      reports.sendReceipt(env, ...first)
      reports.sendReceipt(env, ...second)
      expect(m.receipts.count({ result: 'kept' })).toBe(sentTwice ? 2 : 1)
    })

    it('sends the same quiet receipt again for another version', () => {
      const { reports, m } = setup()
      reports.sendReceipt(env, 'unchanged', applyReport(0, 0))
      reports.sendReceipt(verified(configPolicy('site/motd', [], { description: 'v4' }), { key: keys.root, version: 4 }), 'unchanged', applyReport(0, 0))
      expect(m.receipts.count({ result: 'kept' })).toBe(2)
    })
  })
})

describe('Reports: presence beacons', () => {
  it('gossips a signed beacon of what this node holds and what it did with each', async () => {
    const { reports, seen } = setup()
    expect(await reports.beacon()).toBe(5)
    expect(seen.gossiped).toHaveLength(1)
    const beacon = verifyNodeReport(seen.gossiped[0]!)
    expect(beacon).toMatchObject({ kind: 'presence', node: self.id, name: 'web1', tags: { role: 'web' }, policies: [[env.name, 3, env.hash, 'outcome of site/motd']] })
    expect(seen.reports).toEqual([beacon])
    expect(reports.fleet.list().map((n) => n.id)).toEqual([self.id])
  })

  it('names the policies dropped as untrusted after those it holds', async () => {
    const { reports, seen } = setup({ untrusted: () => [{ name: 'web/nginx', version: 4, hash: 'sha256:x' }] })
    await reports.beacon()
    expect((verifyNodeReport(seen.gossiped[0]!) as Presence).policies).toEqual([[env.name, 3, env.hash, 'outcome of site/motd'], ['web/nginx', 4, 'sha256:x', 'untrusted']])
  })

  it(`names at most ${MAX_PRESENCE_POLICIES} policies`, async () => {
    const { reports, seen, hold } = setup()
    hold(Array.from({ length: MAX_PRESENCE_POLICIES + 5 }, (_, i) => ({ ...env, name: `site/p${i}` })))
    await reports.beacon()
    expect((verifyNodeReport(seen.gossiped[0]!) as Presence).policies).toHaveLength(MAX_PRESENCE_POLICIES)
  })

  it(`names fewer policies rather than pass ${MAX_RECEIPT_BYTES} bytes, which every receiver refuses (before: 64 long names and a large certificate made every beacon unsendable)`, async () => {
    const tags = Object.fromEntries(Array.from({ length: MAX_ADMISSION_TAGS }, (_, i) => [`tag-${i}`.padEnd(64, 'x'), 'v'.repeat(128)]))
    const admission = openAdmission(signAdmission({ peer: self.id, name: 'n'.repeat(200), tags, key: keys.root, issuedAt: FIXED_NOW }))
    const { reports, seen, hold } = setup({ admission, recipient: () => `age1${'q'.repeat(58)}`, outcomeOf: () => 'unchanged' })
    hold(Array.from({ length: MAX_PRESENCE_POLICIES }, (_, i) => ({ ...env, name: `site/${String(i).padStart(2, '0')}${'x'.repeat(190)}` })))
    await reports.beacon()
    const bytes = seen.gossiped[0] as Uint8Array
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_RECEIPT_BYTES)
    const beacon = verifyNodeReport(bytes) as Presence
    expect(beacon.policies.length).toBeGreaterThan(0)
    expect(beacon.policies.length).toBeLessThan(MAX_PRESENCE_POLICIES)
    expect(beacon.policies.map((p) => p[0])).toEqual(Array.from({ length: beacon.policies.length }, (_, i) => `site/${String(i).padStart(2, '0')}${'x'.repeat(190)}`))
  })

  it('carries a summary of the node\'s facts, signed, and its own fleet view keeps it', async () => {
    const facts = { os: { family: 'debian', release: { major: '12' } }, processors: { count: 2, models: ['x'] }, networking: { ip: '10.0.0.5', interfaces: { eth0: { ip: '10.0.0.5' } } }, role: 'web' }
    const { reports, seen } = setup({ facts: { id: self.id, name: 'web1', tags: { role: 'web' }, facts } })
    await reports.beacon()
    const beacon = verifyNodeReport(seen.gossiped[0]!) as Presence
    expect(beacon.facts).toEqual(summarizeFacts(facts))
    expect(beacon.facts).toEqual({ os: facts.os, processors: { count: 2 }, networking: { ip: '10.0.0.5' }, role: 'web' })
    expect(reports.fleet.list()[0]?.facts).toEqual(beacon.facts)
    // A node without gathered facts (a simulation) sends none.
    const bare = setup()
    await bare.reports.beacon()
    expect(verifyNodeReport(bare.seen.gossiped[0]!)).not.toHaveProperty('facts')
  })

  it(`keeps its facts at their bound beside a certificate at its bound and ${MAX_PRESENCE_POLICIES} long policy names, within ${MAX_RECEIPT_BYTES} bytes`, async () => {
    const tags = Object.fromEntries(Array.from({ length: MAX_ADMISSION_TAGS }, (_, i) => [`tag-${i}`.padEnd(64, 'x'), 'v'.repeat(128)]))
    const admission = openAdmission(signAdmission({ peer: self.id, name: 'n'.repeat(200), tags, key: keys.root, issuedAt: FIXED_NOW }))
    // Custom facts that fill the summary to its bound.
    const facts = { os: { family: 'debian' }, ...Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`custom${i}`, 'f'.repeat(60)])) }
    const { reports, seen, hold } = setup({ admission, recipient: () => `age1${'q'.repeat(58)}`, outcomeOf: () => 'unchanged', facts: { id: self.id, name: 'n'.repeat(200), tags: { role: 'web' }, facts } })
    hold(Array.from({ length: MAX_PRESENCE_POLICIES }, (_, i) => ({ ...env, name: `site/${String(i).padStart(2, '0')}${'x'.repeat(190)}` })))
    await reports.beacon()
    const bytes = seen.gossiped[0] as Uint8Array
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_RECEIPT_BYTES)
    const beacon = verifyNodeReport(bytes) as Presence
    expect(Buffer.byteLength(JSON.stringify(beacon.facts))).toBeGreaterThan(MAX_PRESENCE_FACTS_BYTES - 100)
    expect(beacon.facts).toEqual(summarizeFacts(facts))
    expect(beacon.policies.length).toBeGreaterThan(0)
    console.log(`beacon with facts at ${Buffer.byteLength(JSON.stringify(beacon.facts))} bytes, a ${Buffer.byteLength(JSON.stringify(admission))}-byte certificate and ${beacon.policies.length} of ${MAX_PRESENCE_POLICIES} 197-character policy names: ${bytes.byteLength} of ${MAX_RECEIPT_BYTES} bytes`)
  })

  it('drops its facts when tags and a certificate at their bounds leave no room for them even without policies', async () => {
    const certTags = Object.fromEntries(Array.from({ length: MAX_ADMISSION_TAGS }, (_, i) => [`tag-${i}`.padEnd(64, 'x'), 'v'.repeat(128)]))
    const admission = openAdmission(signAdmission({ peer: self.id, name: 'n'.repeat(200), tags: certTags, key: keys.root, issuedAt: FIXED_NOW }))
    const nodeTags = Object.fromEntries(Array.from({ length: 22 }, (_, i) => [`t${i}`.padEnd(100, 'k'), 'v'.repeat(200)]))
    const facts = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`custom${i}`, 'f'.repeat(60)]))
    const { reports, seen } = setup({ admission, facts: { id: self.id, name: 'n'.repeat(200), tags: nodeTags, facts } })
    await reports.beacon()
    const bytes = seen.gossiped[0] as Uint8Array
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_RECEIPT_BYTES)
    const beacon = verifyNodeReport(bytes) as Presence
    expect(beacon).not.toHaveProperty('facts')
    expect(beacon.policies).toEqual([])
  })

  it('answers 0 when the beacon could not be gossiped, and when stopped sends none', async () => {
    const failing = setup({ gossip: async () => { throw new Error('no peers subscribed') } })
    expect(await failing.reports.beacon()).toBe(0)
    expect(failing.log.at('debug').map((l) => l.obj.err)).toEqual(['no peers subscribed'])

    const stopped = setup()
    stopped.stopping.abort()
    expect(await stopped.reports.beacon()).toBe(0)
    expect(stopped.seen.gossiped).toEqual([])
  })

  it('announces a join three times, jittered around JOIN_BEACON_DELAYS_MS, once however often asked', async () => {
    const { reports, seen, time, clock } = setup()
    reports.announceJoin()
    reports.announceJoin()
    expect(clock.pending).toBe(JOIN_BEACON_DELAYS_MS.length)
    await time.advance(Math.max(...JOIN_BEACON_DELAYS_MS) * 2)
    // The fake clock's random is 0.5: no jitter.
    expect(seen.gossipedAt).toEqual(JOIN_BEACON_DELAYS_MS)
    expect(clock.pending).toBe(0)
  })
})

describe('Reports: the node\'s encryption key (docs/secrets.md)', () => {
  const first = `age1${'q'.repeat(58)}`
  const second = `age1${'p'.repeat(58)}`

  it('signs it into every receipt and beacon, as it is at the time (a rekey shows in the next report)', async () => {
    let key = first
    const { reports, seen } = setup({ recipient: () => key })
    reports.sendReceipt(env, 'applied', applyReport(1, 0))
    await reports.beacon()
    key = second
    await reports.beacon()
    const signed = seen.gossiped.map((b) => verifyNodeReport(b))
    expect(signed.map((r) => r?.recipient)).toEqual([first, second])
    expect(seen.reports.map((r) => `${r.kind} ${r.recipient}`)).toEqual([`receipt ${first}`, `presence ${first}`, `presence ${second}`])
    expect(reports.fleet.list()[0]?.recipient).toBe(second)
  })

  it('a node without a key announces none', async () => {
    const { reports, seen } = setup()
    await reports.beacon()
    expect('recipient' in (verifyNodeReport(seen.gossiped[0] as Uint8Array) as NodeReport)).toBe(false)
  })

  it('a sealed receipt says why, as the (secrets) entry', () => {
    const { reports, seen } = setup({ recipient: () => first })
    reports.sendReceipt(env, 'sealed', undefined, 'not a recipient: sealed to 1 node, not to this one')
    expect(seen.reports[0]).toMatchObject({ outcome: 'sealed', changed: 0, failures: [{ resource: '(secrets)', error: 'not a recipient: sealed to 1 node, not to this one' }], failedCount: 1 })
  })
})
