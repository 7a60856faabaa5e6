import { describe, expect, it } from 'vitest'
import { encodeAnnouncement, type VerifiedEnvelope } from '../../src/envelope/index.js'
import { TopicValidatorResult, type PeerId } from '../../src/net/libp2p.js'
import type { FetchRequest } from '../../src/sync/index.js'
import { TrustStore } from '../../src/trust/index.js'
import { PolicyBook } from '../../src/node/book.js'
import { FETCH_LIMITS, Fetcher, type FetcherComponents } from '../../src/node/announce.js'
import { MAX_FETCH_PEERS } from '../../src/node/constants.js'
import { prng } from '../../src/sim/random.js'
import { configPolicy, FIXED_NOW, makeKeys, signed, trustPolicy } from '../helpers/envelope.js'
import { deferred, intakeRig, peerIds, settle, verify } from './fakes.js'

const { Accept, Ignore, Reject } = TopicValidatorResult

/** What a scripted peer does when asked for a body: serve bytes, have none, fail, or answer later. */
type Answer = Uint8Array | undefined | Error | Promise<Uint8Array | undefined>

/** Connected peers, and a sync service whose fetch each peer answers as scripted. */
class FakeNet implements Pick<FetcherComponents['net'], 'getPeers' | 'hangUp'> {
  readonly asked: Array<{ peer: string, req: FetchRequest, signal?: AbortSignal }> = []
  readonly hungUp: string[] = []
  readonly answers = new Map<string, Answer>()

  constructor (public peers: PeerId[]) {}

  readonly getPeers = (): PeerId[] => this.peers
  readonly hangUp = async (peer: { toString: () => string }): Promise<void> => { this.hungUp.push(peer.toString()) }

  readonly services = {
    sync: {
      fetch: async (peer: PeerId, req: FetchRequest, options?: { signal?: AbortSignal }): Promise<Uint8Array | undefined> => {
        this.asked.push({ peer: peer.toString(), req, signal: options?.signal })
        const answer = this.answers.get(peer.toString())
        if (answer instanceof Error) throw answer
        return await answer
      }
    }
  }

  /** The peers asked, in order. */
  get askedPeers (): string[] {
    return this.asked.map((a) => a.peer)
  }
}

const keys = makeKeys()
const [A, B, C, ...more] = await peerIds(12) as [PeerId, PeerId, PeerId, ...PeerId[]]
const name = 'site/big'
const bytesV2 = signed(configPolicy(name, [], { description: 'v2' }), { key: keys.root, version: 2 })
const v2 = verify(bytesV2)
const v1 = verify(signed(configPolicy(name, [], { description: 'v1' }), { key: keys.root, version: 1 }))
const v3 = signed(configPolicy(name, [], { description: 'v3' }), { key: keys.root, version: 3 })
/** The content of v2, signed again a second later: valid, same name, version and hash, but not the envelope announced. */
const v2Again = signed(configPolicy(name, [], { description: 'v2' }), { key: keys.root, version: 2, now: FIXED_NOW + 1000 })
const announce = (env: VerifiedEnvelope, signature = env.signature): Uint8Array => encodeAnnouncement({ ...env, signature })

function setup (opts: { peers?: PeerId[], book?: PolicyBook } = {}) {
  const rig = intakeRig({ keys, book: opts.book })
  const net = new FakeNet(opts.peers ?? [A, B, C])
  const stopping = new AbortController()
  const fetcher = new Fetcher({ book: rig.book, intake: rig.intake, net, random: prng(7), metrics: rig.metrics, log: rig.log, signal: stopping.signal })
  return { ...rig, net, fetcher, stopping }
}

describe('Fetcher.validate: checks before any fetch', () => {
  it.each<[string, () => Uint8Array]>([
    ['not JSON', () => new TextEncoder().encode('{nope')],
    ['a whole envelope, not an announcement', () => bytesV2],
    ['another envelope\'s signature', () => announce(v2, v1.signature)],
    ['a signer this node does not trust', () => announce(verify(signed(configPolicy(name), { key: keys.stranger, version: 2 })))]
  ])('rejects %s and fetches nothing', async (_, bytes) => {
    const { fetcher, net, m, book } = setup()
    expect(await fetcher.validate(bytes(), A)).toBe(Reject)
    expect(net.asked).toEqual([])
    expect(book.size).toBe(0)
    expect(m.announcements.count({ result: 'received' })).toBe(1)
    expect(m.announcements.count({ result: 'rejected' })).toBe(1)
  })

  it.each<[string, VerifiedEnvelope, 'older' | 'duplicate']>([
    ['an older version', v1, 'older'],
    ['the envelope held', v2, 'duplicate']
  ])('ignores a replay of %s before checking its signature', async (_, env, reason) => {
    const { fetcher, net, m, book } = setup()
    book.offer(v2)
    // A forged signature: were it checked, this would be a Reject.
    expect(await fetcher.validate(announce(env, verify(v3).signature), A)).toBe(Ignore)
    expect(net.asked).toEqual([])
    expect(m.envelopesIgnored.count({ reason })).toBe(1)
    expect(m.announcements.count({ result: 'ignored' })).toBe(1)
  })

  it('records the loser of a same-version conflict once, once verified, and fetches nothing', async () => {
    const { fetcher, net, m, book, seen } = setup()
    const other = verify(signed(configPolicy(name, [], { description: 'other' }), { key: keys.root, version: 2 }))
    const [low, high] = other.hash < v2.hash ? [other, v2] : [v2, other]
    book.offer(high)
    expect(await fetcher.validate(announce(low, v1.signature), A)).toBe(Reject)
    expect(seen.conflict).toEqual([])
    expect(await fetcher.validate(announce(low), A)).toBe(Ignore)
    expect(await fetcher.validate(announce(low), B)).toBe(Ignore)
    expect(seen.conflict).toMatchObject([{ kind: 'version', name, version: 2, winner: high.hash, loser: low.hash }])
    expect(m.envelopesIgnored.count({ reason: 'conflict-lost' })).toBe(2)
    expect(net.asked).toEqual([])
  })
})

describe('Fetcher.validate: fetching the body', () => {
  it('fetches from the announcer, takes the body and accepts the announcement', async () => {
    const { fetcher, net, book, m, seen, stopping } = setup()
    net.answers.set(A.toString(), bytesV2)
    expect(await fetcher.validate(announce(v2), A)).toBe(Accept)
    expect(net.asked).toEqual([{ peer: A.toString(), req: { name, version: 2, hash: v2.hash }, signal: stopping.signal }])
    expect(book.get(name)?.id).toBe(v2.id)
    expect(seen.accepted).toMatchObject([{ via: 'gossip', from: A.toString() }])
    expect(m.announcements.count({ result: 'fetched' })).toBe(1)
    expect(net.hungUp).toEqual([])
  })

  it('fetches the winner of a same-version conflict', async () => {
    const { fetcher, net, book, seen } = setup()
    const other = verify(signed(configPolicy(name, [], { description: 'other' }), { key: keys.root, version: 2 }))
    const [low, high] = other.hash < v2.hash ? [other, v2] : [v2, other]
    book.offer(low)
    net.answers.set(A.toString(), high.bytes)
    expect(await fetcher.validate(announce(high), A)).toBe(Accept)
    expect(book.get(name)?.id).toBe(high.id)
    expect(seen.conflict).toHaveLength(1)
  })

  it('fetches once however many copies of one announcement arrive while it fetches', async () => {
    const { fetcher, net, m } = setup()
    const body = deferred<Uint8Array | undefined>()
    net.answers.set(A.toString(), body.promise)
    const copies = [A, B, C, A].map(async (from) => await fetcher.validate(announce(v2), from))
    await settle()
    body.resolve(bytesV2)
    expect(await Promise.all(copies)).toEqual([Accept, Accept, Accept, Accept])
    expect(net.askedPeers).toEqual([A.toString()])
    expect(m.announcements.count({ result: 'received' })).toBe(4)
    // Once held, a late copy is a duplicate.
    expect(await fetcher.validate(announce(v2), B)).toBe(Ignore)
    expect(net.asked).toHaveLength(1)
  })

  it('asks the other connected peers when the announcer has no body or fails', async () => {
    for (const announcer of [undefined, new Error('stream reset')]) {
      const { fetcher, net, log } = setup()
      net.answers.set(A.toString(), announcer)
      net.answers.set(B.toString(), bytesV2)
      net.answers.set(C.toString(), bytesV2)
      expect(await fetcher.validate(announce(v2), A)).toBe(Accept)
      expect(net.askedPeers[0]).toBe(A.toString())
      expect(net.askedPeers).toHaveLength(2)
      expect([B.toString(), C.toString()]).toContain(net.askedPeers[1])
      expect(net.hungUp).toEqual([])
      expect(log.at('debug')).toHaveLength(announcer === undefined ? 0 : 1)
    }
  })

  it('asks at most MAX_FETCH_PEERS peers, each once, then leaves it to anti-entropy', async () => {
    const { fetcher, net, m, log } = setup({ peers: [A, B, C, ...more] })
    expect(await fetcher.validate(announce(v2), B)).toBe(Ignore)
    expect(net.askedPeers).toHaveLength(MAX_FETCH_PEERS)
    expect(net.askedPeers[0]).toBe(B.toString())
    expect(new Set(net.askedPeers).size).toBe(MAX_FETCH_PEERS)
    expect(m.announcements.count({ result: 'fetch-failed' })).toBe(1)
    expect(log.at('warn').map((l) => l.msg)).toEqual(['no peer served an announced envelope; anti-entropy will bring it'])
  })

  it('asks the announcer even when it is not among the connected peers', async () => {
    const { fetcher, net } = setup({ peers: [B] })
    net.answers.set(A.toString(), bytesV2)
    expect(await fetcher.validate(announce(v2), A)).toBe(Accept)
    expect(net.askedPeers).toEqual([A.toString()])
  })

  it.each<[string, () => Uint8Array]>([
    ['garbage', () => new TextEncoder().encode('not an envelope')],
    ['another valid envelope than announced', () => v2Again],
    ['an older envelope', () => v1.bytes]
  ])('hangs up on a peer that serves %s, and asks the next', async (_, served) => {
    const { fetcher, net, book, seen } = setup({ peers: [A, B] })
    net.answers.set(A.toString(), served())
    net.answers.set(B.toString(), bytesV2)
    expect(await fetcher.validate(announce(v2), A)).toBe(Accept)
    expect(net.hungUp).toEqual([A.toString()])
    expect(net.askedPeers).toEqual([A.toString(), B.toString()])
    expect(book.get(name)?.id).toBe(v2.id)
    expect(seen.rejected.map((r) => r.from)).toEqual([A.toString()])
  })

  it('does not hang up on a peer when checking its body failed inside this node', async () => {
    /** Authorises the announcement, then fails on the body, as a bug of ours would. */
    class FailsSecondTime extends TrustStore {
      calls = 0
      override authorize (signer: string, policy: string): void {
        if (++this.calls > 1) throw new TypeError('a bug')
        super.authorize(signer, policy)
      }
    }
    const { fetcher, net, seen } = setup({ peers: [A, B], book: new PolicyBook(new FailsSecondTime([keys.root.id]), () => FIXED_NOW) })
    net.answers.set(A.toString(), bytesV2)
    net.answers.set(B.toString(), bytesV2)
    expect(await fetcher.validate(announce(v2), A)).toBe(Ignore)
    expect(seen.rejected.map((r) => r.reason)).toEqual(['internal'])
    expect(net.hungUp).toEqual([])
    // Every peer serves these same bytes: asking the next would fail the same way.
    expect(net.askedPeers).toEqual([A.toString()])
  })

  it('stops asking once the node is stopping', async () => {
    const { fetcher, net, m, stopping } = setup()
    stopping.abort()
    expect(await fetcher.validate(announce(v2), A)).toBe(Ignore)
    expect(net.asked).toEqual([])
    expect(m.announcements.count({ result: 'fetch-failed' })).toBe(1)
  })
})

describe('Fetcher.validate: the book changes while it fetches', () => {
  /** Starts validating v2's announcement; the announcer answers when `body` settles, the others would serve v2. */
  async function fetching (rig: ReturnType<typeof setup>) {
    const body = deferred<Uint8Array | undefined>()
    rig.net.answers.set(A.toString(), body.promise)
    rig.net.answers.set(B.toString(), bytesV2)
    rig.net.answers.set(C.toString(), bytesV2)
    const result = rig.fetcher.validate(announce(v2), A)
    await settle()
    return { body, result }
  }

  it('accepts without asking further when sync brought the announced envelope meanwhile', async () => {
    const rig = setup()
    const { body, result } = await fetching(rig)
    expect(rig.intake.take(bytesV2, 'sync', 'S').outcome).toBe('accepted')
    body.resolve(undefined)
    expect(await result).toBe(Accept)
    expect(rig.net.askedPeers).toEqual([A.toString()])
  })

  it('hangs up on nobody when a trust policy taken meanwhile revokes the signer of the body it serves', async () => {
    const rig = setup()
    const admins = [{ key: keys.webAdmin.id, scopes: ['site/'] }]
    rig.intake.take(signed(trustPolicy(admins), { key: keys.root }), 'sync')
    const byAdmin = signed(configPolicy(name, [], { description: 'by admin' }), { key: keys.webAdmin, version: 2 })
    const body = deferred<Uint8Array | undefined>()
    for (const peer of [A, B, C]) rig.net.answers.set(peer.toString(), peer === A ? body.promise : byAdmin)
    const result = rig.fetcher.validate(announce(verify(byAdmin)), A)
    await settle()
    expect(rig.intake.take(signed(trustPolicy(admins, [keys.webAdmin.id]), { key: keys.root, version: 2 }), 'sync').outcome).toBe('accepted')
    body.resolve(byAdmin)
    expect(await result).toBe(Ignore)
    expect(rig.net.hungUp).toEqual([])
    expect(rig.book.get(name)).toBeUndefined()
  })

  it('hangs up on nobody when the body announced goes beyond its signer\'s limits: every peer would serve those bytes', async () => {
    const rig = setup()
    rig.intake.take(signed(trustPolicy([{ key: keys.webAdmin.id, scopes: ['site/'], limits: { types: ['file'] } }]), { key: keys.root }), 'sync')
    const exec = signed(configPolicy(name, [{ id: 'run', type: 'exec', command: 'true' }]), { key: keys.webAdmin, version: 2 })
    for (const peer of [A, B, C]) rig.net.answers.set(peer.toString(), exec)
    expect(await rig.fetcher.validate(announce(verify(exec)), A)).toBe(Ignore)
    expect(rig.net.askedPeers).toEqual([A.toString()])
    expect(rig.net.hungUp).toEqual([])
    expect(rig.seen.rejected.map((r) => r.reason)).toEqual(['out-of-scope'])
    expect(rig.book.get(name)).toBeUndefined()
  })

  it('accepts when the body arrives after sync brought the same envelope', async () => {
    const rig = setup()
    const { body, result } = await fetching(rig)
    rig.intake.take(bytesV2, 'sync', 'S')
    body.resolve(bytesV2)
    expect(await result).toBe(Accept)
    expect(rig.net.hungUp).toEqual([])
  })

  it.each<[string, Uint8Array | undefined, string]>([
    ['served by the announcer', bytesV2, 'superseded'],
    ['not served, so the next peer is not asked', undefined, 'older']
  ])('ignores an announcement superseded by a newer version meanwhile: %s', async (_, served, reason) => {
    const rig = setup()
    const { body, result } = await fetching(rig)
    rig.intake.take(v3, 'sync', 'S')
    body.resolve(served)
    expect(await result).toBe(Ignore)
    expect(rig.net.askedPeers).toEqual([A.toString()])
    expect(rig.net.hungUp).toEqual([])
    expect(rig.book.get(name)?.version).toBe(3)
    expect(rig.m.envelopesIgnored.count({ reason })).toBe(1)
  })
})

describe('Fetcher.validate: one announcer\'s flood', () => {
  it('fetches a few of one peer\'s announcements at a time, ignores its backlog, and fetches another peer\'s at once (before: all at once, honest ones behind)', async () => {
    const { fetcher, net, book, m } = setup()
    // The flooding peer A announces valid envelopes whose bodies it never serves.
    const never = deferred<Uint8Array | undefined>()
    net.answers.set(A.toString(), never.promise)
    const flood = Array.from({ length: FETCH_LIMITS.queuedPerKey + FETCH_LIMITS.perKey + 5 }, (_, i) => verify(signed(configPolicy(`flood/a${i}`), { key: keys.root, version: 1 })))
    const verdicts = flood.map(async (env) => await fetcher.validate(announce(env), A))
    await settle()
    expect(net.askedPeers.filter((p) => p === A.toString())).toHaveLength(FETCH_LIMITS.perKey)
    // Past what one peer may have waiting: ignored at once, nothing fetched.
    expect(await Promise.race([verdicts.at(-1), settle().then(() => 'still waiting')])).toBe(Ignore)
    expect(m.envelopesIgnored.count({ reason: 'fetch-backlog' })).toBe(flood.length - FETCH_LIMITS.queuedPerKey - FETCH_LIMITS.perKey)
    // An honest announcer's envelope is fetched while A's backlog waits.
    net.answers.set(B.toString(), bytesV2)
    expect(await fetcher.validate(announce(v2), B)).toBe(Accept)
    expect(book.get(name)?.id).toBe(v2.id)
    expect(net.askedPeers.filter((p) => p === A.toString())).toHaveLength(FETCH_LIMITS.perKey)
  })
})
