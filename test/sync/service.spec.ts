import { createHash } from 'node:crypto'
import * as lp from 'it-length-prefixed'
import { afterEach, describe, expect, it } from 'vitest'
import {
  antiEntropy, MAX_FRAME_BYTES, MAX_FRAMES_PER_STREAM, SYNC_PROTOCOL, SyncProtocolError, SyncTimeoutError,
  type AntiEntropy, type AntiEntropyInit, type DigestEntry, type FetchRequest, type FetchRound, type IngestOutcome,
  type PeerHint, type SyncRound, type SyncSource
} from '../../src/sync/index.js'
import { selectEnvelope } from '../../src/envelope/index.js'
import { TRUST_POLICY_NAME } from '../../src/policy/index.js'
import { MemoryNet, RawPeer, type FakeNode } from './fakes.js'
import { Recorder, within } from '../helpers/recorder.js'
import { FakeTime, settle } from '../node/fakes.js'

const sha = (s: string): string => createHash('sha256').update(s).digest('hex')

/** A digest entry whose hash and id follow from its name and version. */
function entry (name: string, version: number): DigestEntry {
  return { name, version, hash: `sha256:${sha(`${name}@${version}`)}`, id: sha(`id ${name}@${version}`) }
}

/** The fake's "envelope": its digest entry as JSON. The service never looks inside. */
const envelopeOf = (e: DigestEntry): Uint8Array => new TextEncoder().encode(JSON.stringify(e))

/** A SyncSource over a digest map, deciding by the real version rule. */
class MemorySource implements SyncSource {
  readonly held = new Map<string, DigestEntry>()
  /** Names of the envelopes offered to ingest, in arrival order. */
  readonly offered = new Recorder<string>()
  readonly hints = new Recorder<{ hints: PeerHint[], from: string }>()
  fetch?: (req: FetchRequest) => Promise<Uint8Array | undefined>
  wantsEnvelopes?: boolean
  declined?: (entry: DigestEntry) => boolean
  peerHints?: () => PeerHint[]

  constructor (entries: DigestEntry[] = [], private readonly verdict: (e: DigestEntry) => IngestOutcome | undefined = () => undefined) {
    for (const e of entries) this.held.set(e.name, e)
  }

  digest (): DigestEntry[] { return [...this.held.values()] }

  envelope (name: string): Uint8Array | undefined {
    const e = this.held.get(name)
    return e === undefined ? undefined : envelopeOf(e)
  }

  async ingest (bytes: Uint8Array): Promise<IngestOutcome> {
    const e = JSON.parse(new TextDecoder().decode(bytes)) as DigestEntry
    this.offered.push(e.name)
    const forced = this.verdict(e)
    if (forced !== undefined) return forced
    if (!selectEnvelope(this.held.get(e.name), e).accept) return 'ignored'
    this.held.set(e.name, e)
    return 'accepted'
  }

  readonly onPeerHints = (hints: PeerHint[], from: string): void => { this.hints.push({ hints, from }) }

  versions (): Record<string, number> {
    return Object.fromEntries([...this.held.values()].map((e) => [e.name, e.version]).sort())
  }
}

interface Started {
  node: FakeNode
  sync: AntiEntropy
  source: MemorySource
  rounds: Recorder<SyncRound>
  fetches: Recorder<FetchRound>
}

let net = new MemoryNet()
const running: AntiEntropy[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map(async (s) => { await s.stop() }))
  net = new MemoryNet()
})

/** A started service on a fresh node. Periodic rounds are off unless `interval` is given. */
async function start (source = new MemorySource(), init: Partial<AntiEntropyInit> = {}): Promise<Started> {
  const node = await net.node()
  const rounds = new Recorder<SyncRound>()
  const fetches = new Recorder<FetchRound>()
  const sync = antiEntropy({ source, interval: 0, onRound: rounds.push, onFetch: fetches.push, ...init })(node.components)
  await sync.start()
  running.push(sync)
  return { node, sync, source, rounds, fetches }
}

/** A node with no service: the test plays its part of the protocol by hand. */
async function raw (): Promise<FakeNode> {
  return await net.node()
}

/** Opens a sync stream from a raw node to a service; returns the raw side. */
function dialRaw (from: FakeNode, to: Started): RawPeer {
  return new RawPeer(net.dial(from, to.node, SYNC_PROTOCOL))
}

/** Resolves with the next stream a raw node is dialled on, as a RawPeer. */
function answerRaw (node: FakeNode): Promise<RawPeer> {
  return new Promise((resolve) => {
    node.handlers.set(SYNC_PROTOCOL, ({ stream }) => { resolve(new RawPeer(stream as unknown as RawPeer['end'])) })
  })
}

const seq = (...values: number[]): (() => number) => () => values.shift() ?? 0.5

describe('an exchange between two services', () => {
  it('leaves both holding the newer of each policy, and both streams closed', async () => {
    const a = await start(new MemorySource([entry('site/one', 2), entry('site/two', 1), entry('site/same', 3)]))
    const b = await start(new MemorySource([entry('site/one', 1), entry('site/two', 5), entry('site/three', 1), entry('site/same', 3)]))

    const round = await a.sync.syncWith(b.node.peer)

    const newest = { 'site/one': 2, 'site/same': 3, 'site/three': 1, 'site/two': 5 }
    expect(a.source.versions()).toEqual(newest)
    expect(b.source.versions()).toEqual(newest)
    expect(round).toMatchObject({ peer: b.node.peer.toString(), initiator: true, sent: 1, received: 2, accepted: 2 })
    expect(round.error).toBeUndefined()
    expect(round.remoteDigest?.map((e) => e.name).sort()).toEqual(['site/one', 'site/same', 'site/three', 'site/two'])
    const theirs = await b.rounds.next('the responder\'s round')
    expect(theirs).toMatchObject({ peer: a.node.peer.toString(), initiator: false, sent: 2, received: 1, accepted: 1 })
    expect(theirs.bytesIn).toBe(round.bytesOut)
    expect(theirs.bytesOut).toBe(round.bytesIn)

    const ends = [...a.node.streams.values, ...b.node.streams.values].map((s) => s.end)
    expect(ends).toHaveLength(2)
    expect(ends.map((e) => [e.closed, e.aborted])).toEqual([[true, undefined], [true, undefined]])
    expect([...a.node.disconnected.values, ...b.node.disconnected.values]).toEqual([])
  })

  it.each([
    ['the initiator', 0],
    ['the responder', 1]
  ] as const)('sends the trust policy first when %s holds the newer one', async (_, holder) => {
    const newer = [entry('app/a', 2), entry('app/b', 2), entry(TRUST_POLICY_NAME, 2), entry('app/c', 2)]
    const older = [entry('app/a', 1), entry(TRUST_POLICY_NAME, 1)]
    const [a, b] = [await start(new MemorySource(holder === 0 ? newer : older)), await start(new MemorySource(holder === 0 ? older : newer))]
    await a.sync.syncWith(b.node.peer)
    const receiver = holder === 0 ? b : a
    expect(receiver.source.offered.values[0]).toBe(TRUST_POLICY_NAME)
    expect(receiver.source.offered.values.slice().sort()).toEqual(['app/a', 'app/b', 'app/c', TRUST_POLICY_NAME].sort())
  })

  it('offers peer hints both ways', async () => {
    const hint = (id: string): PeerHint => ({ id, addrs: [`/ip4/10.0.0.1/tcp/${id.length}`] })
    const a = await start()
    const b = await start()
    a.source.peerHints = () => [hint('from-a')]
    b.source.peerHints = () => [hint('from-b')]
    await a.sync.syncWith(b.node.peer)
    expect(await b.source.hints.next('a\'s hints at b')).toEqual({ hints: [hint('from-a')], from: a.node.peer.toString() })
    expect(await a.source.hints.next('b\'s hints at a')).toEqual({ hints: [hint('from-b')], from: b.node.peer.toString() })
  })

  it('a source that wants no envelopes only gives', async () => {
    const publisher = new MemorySource([entry('site/one', 3)])
    publisher.wantsEnvelopes = false
    const a = await start(publisher)
    const b = await start(new MemorySource([entry('site/one', 1), entry('site/two', 1)]))
    await a.sync.syncWith(b.node.peer)
    expect(a.source.versions()).toEqual({ 'site/one': 3 })
    expect(b.source.versions()).toEqual({ 'site/one': 3, 'site/two': 1 })
  })

  it('does not ask for an envelope its source declines (refused before), and asks for the rest', async () => {
    const refused = entry('web/untrusted', 2)
    const receiver = new MemorySource()
    receiver.declined = (e) => e.id === refused.id
    const a = await start(receiver)
    const b = await start(new MemorySource([refused, entry('web/fine', 1)]))
    await a.sync.syncWith(b.node.peer)
    expect(a.source.offered.values).toEqual(['web/fine'])
    expect(a.source.versions()).toEqual({ 'web/fine': 1 })
  })

  it('a new connection starts a round with that peer', async () => {
    const a = await start(new MemorySource([entry('site/one', 1)]))
    const b = await start()
    a.node.topologies.get(SYNC_PROTOCOL)?.onConnect?.(b.node.peer, undefined as never)
    expect(await a.rounds.next('a round on connect')).toMatchObject({ peer: b.node.peer.toString(), initiator: true, sent: 1 })
    expect(b.source.versions()).toEqual({ 'site/one': 1 })
  })
})

describe('fetch', () => {
  const held = entry('web/nginx', 4)
  const req = (version: number): FetchRequest => ({ name: held.name, version, hash: entry(held.name, version).hash })
  const serving = async (req: FetchRequest): Promise<Uint8Array | undefined> =>
    req.version === held.version && req.hash === held.hash ? envelopeOf(held) : undefined

  it.each([
    ['finds the envelope the peer holds', serving, req(4), true],
    ['misses a version the peer does not hold', serving, req(3), false],
    ['misses when the peer serves no fetches', undefined, req(4), false]
  ] as const)('%s', async (_, fetch, request, found) => {
    const a = await start()
    const source = new MemorySource([held])
    if (fetch !== undefined) source.fetch = fetch
    const b = await start(source)
    const bytes = await a.sync.fetch(b.node.peer, request)
    expect(bytes).toEqual(found ? envelopeOf(held) : undefined)
    expect(await a.fetches.next('the initiator\'s fetch')).toMatchObject({ initiator: true, peer: b.node.peer.toString(), name: held.name, version: request.version, found })
    expect(await b.fetches.next('the responder\'s fetch')).toMatchObject({ initiator: false, peer: a.node.peer.toString(), found })
    expect(b.rounds.values).toEqual([]) // a fetch is not an anti-entropy round
  })
})

describe('a peer that speaks garbage is disconnected', () => {
  const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
  it.each([
    ['a length prefix over MAX_FRAME_BYTES', lp.encode.single(new Uint8Array(MAX_FRAME_BYTES + 1)).subarray(), /bad frame length/],
    ['a length prefix of more than 8 bytes', new Uint8Array(9).fill(0xff), /bad frame length/],
    ['an empty frame', lp.encode.single(new Uint8Array(0)).subarray(), /empty frame/],
    ['an unknown frame type', lp.encode.single(Uint8Array.of(99)).subarray(), /unknown frame type 99/],
    ['a digest that is not JSON', lp.encode.single(Uint8Array.from([1, ...utf8('nope')])).subarray(), /digest frame is not UTF-8 JSON/],
    ['a done frame where a digest belongs', lp.encode.single(Uint8Array.of(5)).subarray(), /expected a digest or fetch frame, got done/]
  ])('by a responder, on %s', async (_, bytes, message) => {
    const b = await start()
    const intruder = await raw()
    const peer = dialRaw(intruder, b)
    peer.writeRaw(bytes)
    expect((await b.rounds.next('the failed round')).error).toMatch(message)
    expect(await b.node.disconnected.next('the intruder disconnected')).toBe(intruder.peer.toString())
    expect(peer.end.other.aborted).toBeInstanceOf(SyncProtocolError)
  })

  it('by an initiator, on a reply that is not a digest', async () => {
    const a = await start()
    const intruder = await raw()
    const answered = answerRaw(intruder)
    const round = a.sync.syncWith(intruder.peer)
    const peer = await within(answered, 'the stream at the intruder')
    expect((await peer.read()).type).toBe('digest')
    peer.write({ type: 'want', names: [] })
    await expect(round).rejects.toThrow(/expected a digest frame, got want/)
    expect(await a.node.disconnected.next('the intruder disconnected')).toBe(intruder.peer.toString())
    expect(peer.end.other.aborted).toBeInstanceOf(SyncProtocolError)
  })
})

describe('a peer that sends an envelope its source rejects is disconnected', () => {
  it('by the responder', async () => {
    const a = await start(new MemorySource([entry('site/forged', 1)]))
    const b = await start(new MemorySource([], (e) => e.name === 'site/forged' ? 'rejected' : undefined))
    await expect(a.sync.syncWith(b.node.peer)).rejects.toThrow()
    expect(await b.node.disconnected.next('a disconnected by b')).toBe(a.node.peer.toString())
    expect((await b.rounds.next('b\'s round')).error).toMatch(/fails verification/)
    expect(b.source.held.has('site/forged')).toBe(false)
  })

  it('by the initiator', async () => {
    const a = await start(new MemorySource([], (e) => e.name === 'site/forged' ? 'rejected' : undefined))
    const b = await start(new MemorySource([entry('site/forged', 1)]))
    await expect(a.sync.syncWith(b.node.peer)).rejects.toThrow(SyncProtocolError)
    expect(await a.node.disconnected.next('b disconnected by a')).toBe(b.node.peer.toString())
    expect(a.node.streams.values[0]?.end.aborted).toBeInstanceOf(SyncProtocolError)
  })
})

describe('a silent peer', () => {
  it('times out a responder\'s read, aborting the stream without disconnecting', async () => {
    const b = await start(undefined, { readTimeout: 50 })
    const quiet = await raw()
    const peer = dialRaw(quiet, b)
    expect((await b.rounds.next('the timed-out round')).error).toBe('no frame within 50 ms')
    expect(peer.end.other.aborted).toBeInstanceOf(SyncTimeoutError)
    expect(b.node.disconnected.values).toEqual([])
  })

  it('times out an initiator\'s read', async () => {
    const a = await start(undefined, { readTimeout: 50 })
    const quiet = await raw()
    const answered = answerRaw(quiet)
    await expect(a.sync.syncWith(quiet.peer)).rejects.toThrow(SyncTimeoutError)
    await within(answered, 'the stream at the quiet peer')
    expect(a.node.streams.values[0]?.end.aborted).toBeInstanceOf(SyncTimeoutError)
    expect(a.node.disconnected.values).toEqual([])
  })
})

describe('frames per stream', () => {
  // The responder reads a digest, the initiator's envelopes, a want and peers: envelopes + 3 frames.
  it.each([
    ['serves an exchange of exactly MAX_FRAMES_PER_STREAM frames', MAX_FRAMES_PER_STREAM - 3, true],
    ['refuses one frame more', MAX_FRAMES_PER_STREAM - 2, false]
  ])('%s', async (_, envelopes, served) => {
    const b = await start(new MemorySource([entry('site/one', 2)]))
    const sender = await raw()
    const peer = dialRaw(sender, b)
    peer.write({ type: 'digest', entries: [] })
    const stale = { type: 'envelope', bytes: envelopeOf(entry('site/one', 1)) } as const
    for (let i = 0; i < envelopes; i++) peer.write(stale)
    peer.write({ type: 'want', names: [] }, { type: 'peers', peers: [] })
    const round = await b.rounds.next('the round', undefined, 30_000)
    if (served) {
      expect(round.error).toBeUndefined()
      expect(round.received).toBe(envelopes)
      expect(b.node.disconnected.values).toEqual([])
    } else {
      expect(round.error).toBe(`more than ${MAX_FRAMES_PER_STREAM} frames in one exchange`)
      expect(await b.node.disconnected.next('the sender disconnected')).toBe(sender.peer.toString())
    }
  })
})

describe('periodic rounds', () => {
  it('arm a jittered timer, pick a peer by the injected random, and re-arm', async () => {
    const time = new FakeTime()
    // delay 0.25 → 0.75 × interval; peer 0.75 of two → the second; next delay 0.5 → 1 × interval.
    const a = await start(new MemorySource([entry('site/one', 1)]), { interval: 1_000, random: seq(0.25, 0.75, 0.5), setTimer: time.setTimer })
    const b = await start()
    const c = await start()
    net.connect(a.node, b.node)
    net.connect(a.node, c.node)

    expect(time.delays).toEqual([750])
    await time.advance(749)
    expect(a.rounds.values).toEqual([])
    await time.advance(1)
    expect(await a.rounds.next('a periodic round')).toMatchObject({ peer: c.node.peer.toString(), initiator: true, sent: 1 })
    expect(b.rounds.values).toEqual([])
    await settle() // the next round is armed once this one's promise settles
    expect(time.delays).toEqual([1_000])
  })

  it('with no peer, do nothing but re-arm', async () => {
    const time = new FakeTime()
    const a = await start(undefined, { interval: 1_000, random: seq(0, 0.99), setTimer: time.setTimer })
    expect(time.delays).toEqual([500])
    await time.advance(500)
    await settle()
    expect(time.delays).toEqual([1_490])
    expect(a.rounds.values).toEqual([])
  })

  it('are off with an interval of 0', async () => {
    const time = new FakeTime()
    await start(undefined, { interval: 0, setTimer: time.setTimer })
    expect(time.armed).toBe(0)
  })

  it('stop() cancels the timer and unhandles the protocol', async () => {
    const time = new FakeTime()
    const a = await start(undefined, { interval: 1_000, setTimer: time.setTimer })
    expect(a.node.handlers.has(SYNC_PROTOCOL)).toBe(true)
    expect(a.node.topologies.has(SYNC_PROTOCOL)).toBe(true)
    expect(time.armed).toBe(1)
    await a.sync.stop()
    expect(time.armed).toBe(0)
    expect(a.node.handlers.has(SYNC_PROTOCOL)).toBe(false)
    expect(a.node.topologies.size).toBe(0)
  })
})
