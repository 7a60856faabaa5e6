// The model engine is trustworthy only while it decides as the agent does. One table of cases,
// three deciders: the rule itself (envelope/selector.ts, node/rules.ts), a two-node model engine
// fed the very envelopes' sizes, hashes and ids, and two live agents on 127.0.0.1.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Engine, defaultParams } from '../../../src/sim/model/index.js'
import type { Hooks } from '../../../src/sim/model/engine.js'
import { MAX_VERSION_JUMP, envelopeId, generateSigningKey, linkOf, selectEnvelope, signPolicy, type Link, type SigningKey } from '../../../src/envelope/index.js'
import { announces, forwards } from '../../../src/node/rules.js'
import { policyTopic, announceTopic, RELAY_SYNCED_WITHIN_MS } from '../../../src/node/constants.js'
import { FETCH_TIMEOUT_MS } from '../../../src/sync/constants.js'
import { prng } from '../../../src/sim/random.js'
import type { Agent } from '../../../src/node/agent.js'
import type { Scenario } from '../../../src/sim/scenario.js'
import { decodeEnvelope, trustPolicy } from '../../helpers/envelope.js'
import { filePolicy, nextEvent, startMesh, waitFor, type TestMesh } from '../../node/fixtures.js'

const W = RELAY_SYNCED_WITHIN_MS

/** The size the announce cases' envelopes are cut to: the threshold of agent A and of the model. */
const THRESHOLD = 4000

/** A signed envelope and what the version and chain rules read of it. */
interface Signed {
  bytes: Uint8Array
  name: string
  version: number
  hash: string
  id: string
  issuedAt: number
  prev?: string
  force?: string
  /** Signed by the mesh's root key (linkOf's `root` link). */
  root: boolean
}

function sign (key: SigningKey, name: string, content: string, version: number, issuedAt: number, chain: { prev?: string, force?: string } = {}): Signed {
  const bytes = signPolicy(filePolicy(name, content, `/etc/agree/${name.replaceAll('/', '-')}`), { key, version, now: () => issuedAt, ...chain })
  return { bytes, name, version, hash: decodeEnvelope(bytes).hash, id: envelopeId(bytes), issuedAt, ...chain, root: key === mesh.root }
}

/** An envelope of exactly `size` bytes: the content is padded (one byte per character). */
function sized (key: SigningKey, name: string, size: number, issuedAt: number): Signed {
  const probe = sign(key, name, '', 1, issuedAt)
  const env = sign(key, name, 'x'.repeat(size - probe.bytes.byteLength), 1, issuedAt)
  expect(env.bytes.byteLength).toBe(size)
  return env
}

// ---- the model side -----------------------------------------------------------------------

const NETWORK: Pick<Scenario, 'network' | 'agent'> = { network: { latency: { dist: 'constant', ms: 5 }, loss: 0, rto: 200 }, agent: {} }

/**
 * Two model nodes joined by one link: node 1 plays agent A, node 0 agent B. No periodic sync,
 * no receipts, and no CPU on the message path, so a decision is made at the moment of arrival
 * and a message's age is what the case says.
 */
class TinyModel {
  readonly engine: Engine
  readonly accepted: Array<{ node: number, msg: number, via: string }> = []
  readonly conflicts: Array<{ node: number, msg: number }> = []
  readonly forks: Array<{ node: number, msg: number, reason: string }> = []
  private readonly byId = new Map<string, number>()

  constructor (announceThreshold = 0, nodes = 2) {
    const params = defaultParams(NETWORK, { gossip: { syncIntervalMs: 0 }, receipts: false, announceThreshold, cpu: { verifyMs: 0, perKiBMs: 0, applyMs: 0, applyIoMs: 0 } })
    const hooks: Hooks = {
      onAccept: (node, msg, via) => { this.accepted.push({ node, msg, via }) },
      onApply: () => {},
      onConflict: (node, msg) => { this.conflicts.push({ node, msg }) },
      onFork: (node, msg, reason) => { this.forks.push({ node, msg, reason }) },
      onTimeline: () => {}
    }
    this.engine = new Engine(prng(7), params, { kind: 'ring' }, nodes, nodes, hooks, 1)
  }

  /** The model message for an envelope (one per envelope id), signed `ageMs` before now. */
  msg (env: Signed, ageMs = 0): number {
    let m = this.byId.get(env.id)
    if (m === undefined) {
      const { version, hash, id, prev, force, root } = env
      m = this.engine.addMessage({ name: 0, version, hash, id, prev, force, root, bytes: env.bytes.byteLength, origin: 1, at: this.engine.now - ageMs, targeted: undefined })
      this.byId.set(env.id, m)
    }
    return m
  }

  /** Node `to` (1 unless told) takes a whole copy (from node 0, by `via`); runs until the network is quiet. */
  receive (env: Signed, via: 'gossip' | 'sync', ageMs = 0, to = 1): void {
    this.engine.receive(to, to === 0 ? 1 : 0, this.msg(env, ageMs), via)
    this.settle()
  }

  /** Node `from` (1 unless told) publishes; runs until the network is quiet, or until `until`. */
  publish (env: Signed, from = 1, until = Infinity): void {
    this.engine.publish(from, this.msg(env))
    if (until === Infinity) this.settle()
    else this.engine.run(until)
  }

  /** The envelope id node `v` holds. */
  held (v: number): string | undefined {
    const m = this.engine.current[0]![v]!
    return m < 0 ? undefined : this.engine.msgs[m]!.id
  }

  settle (): void {
    this.engine.run(this.engine.now + 10 * 60_000)
  }
}

// ---- the live side ------------------------------------------------------------------------

let mesh: TestMesh
/** B: a default agent. A: bootstraps from B, announces over THRESHOLD, and its clock stands still at aNow. */
let a: Agent
let b: Agent
const aNow = Date.now()

beforeAll(async () => {
  mesh = await startMesh(0)
  b = await mesh.add()
  a = await mesh.add({ bootstrapFrom: [0], announceThreshold: THRESHOLD, now: () => aNow })
  const subscribed = (topic: string): boolean => a.libp2p.services.pubsub.getSubscribers(topic).some((p) => p.equals(b.peerId))
  await waitFor(() => subscribed(policyTopic(a.mesh)) && subscribed(announceTopic(a.mesh)), 'A to see B subscribed to policies and announcements')
})

afterAll(async () => {
  await mesh?.stop()
})

/** The envelopes B took, and how, from now on. */
function watchB (): { via: (name: string) => string | undefined, stop: () => void } {
  const got = new Map<string, string>()
  const listener = ({ envelope, via }: { envelope: { name: string }, via: string }): void => { if (!got.has(envelope.name)) got.set(envelope.name, via) }
  b.on('accepted', listener)
  return { via: (name) => got.get(name), stop: () => { b.off('accepted', listener) } }
}

let markers = 0
/**
 * Publishes a fresh marker from A and waits until B took it by gossip. A's gossip to B goes
 * in order on one stream, so whatever A sent before the marker has reached B by then.
 */
async function barrier (): Promise<void> {
  const marker = sign(mesh.root, `agree/marker-${++markers}`, 'marker', 1, aNow)
  const taken = nextEvent(b, 'accepted', ({ envelope }) => envelope.id === marker.id)
  expect((await a.publish(marker.bytes)).outcome).toBe('accepted')
  const [{ via }] = await taken
  expect(via).toBe('gossip')
}

// ---- the table ----------------------------------------------------------------------------

/** The lower and the higher of two envelopes, by hash or by id. */
type Rank = 'low' | 'high'

/** Version rule cases: which envelope node A holds, which arrives, and what the rule says. */
interface VersionCase {
  name: string
  /** Builds the two envelopes of the case from fresh ones of its own policy name. */
  pair: (e: Envelopes) => [current: Signed, incoming: Signed]
  accept: boolean
  conflict: boolean
}

interface Envelopes {
  /** Version 1, two contents, by content hash. */
  byHash: Record<Rank, Signed>
  /** Version 1, one content signed at two times, by envelope id. */
  byId: Record<Rank, Signed>
  /** Version 2. */
  v2: Signed
}

function envelopes (name: string): Envelopes {
  const key = mesh.root
  const t = aNow - 2 * W
  const x = sign(key, name, 'x', 1, t)
  const y = sign(key, name, 'y', 1, t)
  const x2 = sign(key, name, 'x', 1, t + 1000)
  return {
    byHash: x.hash < y.hash ? { low: x, high: y } : { low: y, high: x },
    byId: x.id < x2.id ? { low: x, high: x2 } : { low: x2, high: x },
    v2: sign(key, name, 'v2', 2, t)
  }
}

const VERSION_CASES: VersionCase[] = [
  { name: 'same version, another content with the higher hash arrives', pair: (e) => [e.byHash.low, e.byHash.high], accept: true, conflict: true },
  { name: 'same version, another content with the lower hash arrives', pair: (e) => [e.byHash.high, e.byHash.low], accept: false, conflict: true },
  { name: 'same content, another envelope with the higher id arrives', pair: (e) => [e.byId.low, e.byId.high], accept: true, conflict: false },
  { name: 'same content, another envelope with the lower id arrives', pair: (e) => [e.byId.high, e.byId.low], accept: false, conflict: false },
  { name: 'an older version arrives', pair: (e) => [e.v2, e.byHash.high], accept: false, conflict: false },
  { name: 'the same envelope again (a duplicate)', pair: (e) => [e.byHash.low, e.byHash.low], accept: false, conflict: false },
  { name: 'a newer version arrives', pair: (e) => [e.byHash.high, e.v2], accept: true, conflict: false }
]

/** Sync relay cases: A takes an envelope by sync; does it send it on to B by gossip? */
interface RelayCase {
  name: string
  /** A held an older version of the name (taken by sync, itself old) before this one came. */
  replacedOlder: boolean
  ageMs: number
  relays: boolean
}

const RELAY_CASES: RelayCase[] = [
  { name: 'fresh and new to the node', replacedOlder: false, ageMs: 0, relays: true },
  { name: 'new to the node, signed just inside the window', replacedOlder: false, ageMs: W - 1, relays: true },
  { name: 'new to the node, signed exactly the window ago', replacedOlder: false, ageMs: W, relays: false },
  { name: 'old and new to the node (a catch-up)', replacedOlder: false, ageMs: 2 * W, relays: false },
  { name: 'old, but it replaced an older version', replacedOlder: true, ageMs: 2 * W, relays: true }
]

/** Announce threshold cases: A publishes an envelope of this size; is it announced (B fetches the body)? */
interface AnnounceCase {
  name: string
  size: number
  announced: boolean
}

const ANNOUNCE_CASES: AnnounceCase[] = [
  { name: 'one byte below the threshold', size: THRESHOLD - 1, announced: false },
  { name: 'exactly at the threshold', size: THRESHOLD, announced: false },
  { name: 'one byte above the threshold', size: THRESHOLD + 1, announced: true }
]

/**
 * Chain rule cases (linkOf): agent A holds `held`; B (the sender) has taken `sender` in turn;
 * `incoming` reaches A by gossip from B. What A takes, in order, and whether it holds it back.
 */
interface ChainCase {
  name: string
  build: (c: Chain) => { held: Signed, sender: Signed[], incoming: Signed }
  link: Link
  /** Versions A takes after `held`, and how, in order. */
  taken: Array<[version: number, via: 'gossip' | 'sync']>
  fork?: 'unlinked' | 'jump'
}

/** One policy name's envelopes, signed by an admin (not a root, so the chain decides): v1 → v2 → v3, and others that do not extend. */
interface Chain {
  v1: Signed
  v2: Signed
  v3: Signed
  /** Version 3, naming an envelope nobody holds (a withheld or forged history). */
  stray: Signed
  /** Version 3, not on the chain, forced with a signed reason. */
  forced: Signed
  /** Extends v1, but lands more than MAX_VERSION_JUMP past it. */
  far: Signed
}

function chain (key: SigningKey, name: string): Chain {
  const t = aNow - 2 * W
  const v1 = sign(key, name, 'one', 1, t)
  const v2 = sign(key, name, 'two', 2, t, { prev: v1.id })
  return {
    v1,
    v2,
    v3: sign(key, name, 'three', 3, t, { prev: v2.id }),
    stray: sign(key, name, 'stray', 3, t, { prev: 'f'.repeat(64) }),
    forced: sign(key, name, 'forced', 3, t, { force: 'the admin chose this content' }),
    far: sign(key, name, 'far', 2 + MAX_VERSION_JUMP, t, { prev: v1.id })
  }
}

const CHAIN_CASES: ChainCase[] = [
  { name: 'a newer version that extends the one held: taken', build: (c) => ({ held: c.v1, sender: [c.v1, c.v2], incoming: c.v2 }), link: 'extends', taken: [[2, 'gossip']] },
  {
    name: 'a newer version that does not extend it, whose sender holds the versions between: taken after the catch-up, in order',
    build: (c) => ({ held: c.v1, sender: [c.v1, c.v2, c.v3], incoming: c.v3 }),
    link: 'unlinked',
    taken: [[2, 'sync'], [3, 'sync']]
  },
  {
    name: 'a newer version that names an envelope nobody holds: a fork when the catch-up brings it again by sync',
    build: (c) => ({ held: c.v1, sender: [c.stray], incoming: c.stray }),
    link: 'unlinked',
    taken: [],
    fork: 'unlinked'
  },
  {
    name: 'a newer version whose sender holds none of the versions between: a fork once the catch-up has brought nothing',
    build: (c) => ({ held: c.v1, sender: [], incoming: c.v3 }),
    link: 'unlinked',
    taken: [],
    fork: 'unlinked'
  },
  { name: 'a version more than MAX_VERSION_JUMP past the one held: refused, though it extends it', build: (c) => ({ held: c.v1, sender: [], incoming: c.far }), link: 'jump', taken: [], fork: 'jump' },
  { name: 'a forced version off the chain: taken', build: (c) => ({ held: c.v1, sender: [c.forced], incoming: c.forced }), link: 'forced', taken: [[3, 'gossip']] }
]

// ---- the checks ---------------------------------------------------------------------------

describe('the model engine and the agent decide by the same rules', () => {
  describe('version rule (selectEnvelope)', () => {
    VERSION_CASES.forEach((c, i) => {
      it(c.name, async () => {
        const name = `agree/version-${i}`
        const [current, incoming] = c.pair(envelopes(name))
        const expected = c.accept ? incoming.id : current.id

        // The rule.
        const selection = selectEnvelope(current, incoming)
        expect(selection.accept).toBe(c.accept)
        expect(selection.conflict !== undefined).toBe(c.conflict)

        // The model: node 1 holds `current` (by gossip), then `incoming` comes by sync.
        const model = new TinyModel()
        model.receive(current, 'gossip')
        expect(model.held(1)).toBe(current.id)
        model.receive(incoming, 'sync')
        expect(model.held(1)).toBe(expected)
        expect(model.conflicts.filter((k) => k.node === 1)).toHaveLength(c.conflict ? 1 : 0)

        // The agent, the same way.
        const conflicts: string[] = []
        const onConflict = (r: { name: string }): void => { if (r.name === name) conflicts.push(r.name) }
        a.on('conflict', onConflict)
        try {
          expect(await a.ingest(current.bytes, 'gossip')).toBe('accepted')
          expect(await a.ingest(incoming.bytes, 'sync')).toBe(c.accept ? 'accepted' : 'ignored')
        } finally {
          a.off('conflict', onConflict)
        }
        expect(a.envelope(name)?.id).toBe(expected)
        expect(conflicts).toHaveLength(c.conflict ? 1 : 0)
      })
    })
  })

  describe('sending on what came by sync (forwards)', () => {
    RELAY_CASES.forEach((c, i) => {
      it(`${c.name}: ${c.relays ? 'sent on' : 'kept'}`, async () => {
        const name = `agree/relay-${i}`
        const older = sign(mesh.root, name, 'older', 1, aNow - 2 * W)
        const env = sign(mesh.root, name, 'this', 2, aNow - c.ageMs)

        // The rule.
        expect(forwards('sync', c.replacedOlder, c.ageMs)).toBe(c.relays)

        // The model: node 1 takes it by sync; node 0 takes it by gossip if node 1 sent it on.
        const model = new TinyModel()
        if (c.replacedOlder) model.receive(older, 'sync', 2 * W)
        expect(model.held(0)).toBeUndefined()
        model.receive(env, 'sync', c.ageMs)
        expect(model.held(1)).toBe(env.id)
        const m = model.msg(env)
        expect(model.accepted.some((x) => x.node === 0 && x.msg === m && x.via === 'gossip')).toBe(c.relays)

        // The agents: A takes it by sync; B takes it by gossip if A sent it on.
        const seen = watchB()
        try {
          if (c.replacedOlder) expect(await a.ingest(older.bytes, 'sync')).toBe('accepted')
          expect(await a.ingest(env.bytes, 'sync')).toBe('accepted')
          await barrier()
          if (c.relays) await waitFor(() => seen.via(name) !== undefined, `B to take ${name}`)
          expect(seen.via(name)).toBe(c.relays ? 'gossip' : undefined)
          expect(b.envelope(name)?.id).toBe(c.relays ? env.id : undefined)
        } finally {
          seen.stop()
        }
      })
    })
  })

  describe('announce or gossip whole (announces)', () => {
    ANNOUNCE_CASES.forEach((c, i) => {
      it(`${c.name}: ${c.announced ? 'announced, the body fetched' : 'gossiped whole'}`, async () => {
        const name = `agree/announce-${i}`
        const env = sized(mesh.root, name, c.size, aNow)

        // The rule.
        expect(announces(c.size, THRESHOLD)).toBe(c.announced)

        // The model: node 1 publishes; node 0 takes it, over the fetch protocol if announced.
        const model = new TinyModel(THRESHOLD)
        model.publish(env)
        expect(model.held(0)).toBe(env.id)
        expect(model.engine.traffic.syncRecv[0]! > 0).toBe(c.announced)
        expect(model.engine.traffic.policyRecv[0]).toBe(c.size)

        // The agents: A publishes; B takes it by gossip, having fetched the body if announced.
        const fetched: string[] = []
        const onFetch = (round: { name: string, initiator: boolean }): void => { if (round.initiator) fetched.push(round.name) }
        b.on('fetch', onFetch)
        try {
          const taken = nextEvent(b, 'accepted', ({ envelope }) => envelope.id === env.id)
          expect((await a.publish(env.bytes)).outcome).toBe('accepted')
          const [{ via }] = await taken
          expect(via).toBe('gossip')
        } finally {
          b.off('fetch', onFetch)
        }
        expect(fetched.includes(name)).toBe(c.announced)
      })
    })
  })

  describe('versions form a chain (linkOf; a catch-up sync brings the versions between)', () => {
    const admin = generateSigningKey()
    beforeAll(async () => {
      const trust = mesh.sign(trustPolicy([{ key: admin.id, scopes: ['agree/chain/'] }]), 1)
      for (const x of [a, b]) expect(await x.ingest(trust, 'local')).toBe('accepted')
    })

    CHAIN_CASES.forEach((c, i) => {
      it(c.name, async () => {
        const name = `agree/chain/${i}`
        const { held, sender, incoming } = c.build(chain(admin, name))
        const last = c.taken.length > 0 ? incoming.id : held.id

        // The rule.
        expect(linkOf(held, incoming, incoming.root)).toBe(c.link)

        // The model: node 1 (A) holds `held`; node 0 (B) takes the sender's envelopes, each by
        // gossip from node 1 (so it sends them to no one); then `incoming` reaches node 1 from node 0.
        const model = new TinyModel()
        model.receive(held, 'gossip', 0, 1)
        for (const e of sender) model.receive(e, 'gossip', 0, 0)
        expect(model.held(1)).toBe(held.id)
        const before = model.accepted.length
        model.receive(incoming, 'gossip', 0, 1)
        expect(model.held(1)).toBe(last)
        const versionOf = (msg: number): number => model.engine.msgs[msg]!.version
        expect(model.accepted.slice(before).filter((x) => x.node === 1).map((x) => [versionOf(x.msg), x.via])).toEqual(c.taken)
        expect(model.forks.map((f) => [f.node, versionOf(f.msg), f.reason])).toEqual(c.fork !== undefined ? [[1, incoming.version, c.fork]] : [])

        // The agents: A holds `held`; B takes the sender's envelopes locally; `incoming` reaches A by gossip from B.
        expect(await a.ingest(held.bytes, 'gossip')).toBe('accepted')
        for (const e of sender) await b.ingest(e.bytes, 'local')
        await b.idle()
        const taken: Array<[number, string]> = []
        const applied: number[] = []
        const forks: Array<[number, string]> = []
        const onAccepted = ({ envelope, via }: { envelope: { name: string, version: number }, via: string }): void => { if (envelope.name === name) taken.push([envelope.version, via]) }
        const onApplied = ({ envelope }: { envelope: { name: string, version: number } }): void => { if (envelope.name === name) applied.push(envelope.version) }
        const onFork = (f: { name: string, offered: { version: number }, reason: string }): void => { if (f.name === name) forks.push([f.offered.version, f.reason]) }
        a.on('accepted', onAccepted)
        a.on('applied', onApplied)
        a.on('fork', onFork)
        try {
          expect(await a.ingest(incoming.bytes, 'gossip', b.peerId.toString())).toBe(c.link === 'extends' || c.link === 'forced' ? 'accepted' : 'ignored')
          await waitFor(() => a.envelope(name)?.id === last && (c.fork === undefined || forks.length > 0), c.fork !== undefined ? `A to report the fork on ${name}` : `A to take ${name} v${incoming.version}`)
          await a.idle()
        } finally {
          a.off('accepted', onAccepted)
          a.off('applied', onApplied)
          a.off('fork', onFork)
        }
        expect(taken).toEqual(c.taken)
        expect(forks).toEqual(c.fork !== undefined ? [[incoming.version, c.fork]] : [])
        expect(a.envelope(name)?.id).toBe(last)
        if (c.fork !== undefined) {
          expect(applied).not.toContain(incoming.version)
          expect(a.status().forks.filter((f) => f.name === name)).toEqual([expect.objectContaining({ reason: c.fork, offered: expect.objectContaining({ id: incoming.id }) })])
        }
      })
    })
  })

  // The agent's side of these is test/node/announce.spec.ts ("fetches from another peer when the
  // announcer cannot serve the body", "ignores an announcement nobody serves").
  describe('the model fetches an announced body the agent\'s way (fetchCandidates)', () => {
    // A ring of four: 0 publishes (flood: to 1 and 3) and stops 1 ms later, before any request
    // reaches it. Node 1 asks 0 (gone: the fetch timeout), then its other peer, 2.
    const ring = (): { model: TinyModel, env: Signed } => {
      const model = new TinyModel(THRESHOLD, 4)
      return { model, env: sized(mesh.root, 'agree/fetch', THRESHOLD + 1, aNow - 2 * W) }
    }
    const LINK = 5

    it('an announcer gone costs the fetch timeout; the next candidate that holds it serves it', () => {
      const { model, env } = ring()
      // Node 2 holds it already (an old envelope taken by sync is not sent on).
      model.receive(env, 'sync', 2 * W, 2)
      expect(model.accepted.map((x) => x.node)).toEqual([2])
      const t0 = model.engine.now
      model.publish(env, 0, t0 + 1)
      model.engine.kill(0)
      model.settle()
      const m = model.msg(env)
      const got = model.engine.msgs[m]!
      expect(model.held(1)).toBe(env.id)
      expect(got.upstream[1]).toBe(2)
      // Arrival (one link), the timeout, then one round trip to node 2 and the body.
      expect(got.acceptedAt[1]! - t0).toBeGreaterThan(FETCH_TIMEOUT_MS + 3 * LINK)
      expect(got.acceptedAt[1]! - t0).toBeLessThan(FETCH_TIMEOUT_MS + 3 * LINK + 5)
    })

    it('a peer that does not hold it answers "missing" after a round trip, not a timeout; after the last candidate, it is left to anti-entropy', () => {
      const { model, env } = ring()
      const t0 = model.engine.now
      model.publish(env, 0, t0 + 1)
      model.engine.kill(0)
      model.settle()
      for (const v of [1, 2, 3]) expect(model.held(v)).toBeUndefined()
      // Nodes 1 and 3 timed out on 0, asked 2, heard "missing" one round trip later and stopped.
      expect(model.engine.now - t0).toBeGreaterThan(FETCH_TIMEOUT_MS + 3 * LINK)
      expect(model.engine.now - t0).toBeLessThan(FETCH_TIMEOUT_MS + 3 * LINK + 5)
      expect(model.engine.traffic.syncSent[2]).toBeGreaterThan(0)
    })
  })
})
