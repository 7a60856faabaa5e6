import { describe, expect, it } from 'vitest'
import { encodeAnnouncement } from '../../src/envelope/index.js'
import { TopicValidatorResult, type GrapevinePubSub, type Message, type PeerId } from '../../src/net/libp2p.js'
import type { IngestOutcome } from '../../src/sync/index.js'
import { GossipTopics, type GossipComponents } from '../../src/node/gossip.js'
import { announceTopic, DEFAULT_ANNOUNCE_THRESHOLD, policyTopic, receiptTopic } from '../../src/node/constants.js'
import { configPolicy, makeKeys } from '../helpers/envelope.js'
import { peerIds, verified } from './fakes.js'

/** Gossipsub as the topics see it: validators, subscriptions, publishes and subscription events. */
class FakePubSub extends EventTarget implements Pick<GrapevinePubSub, 'topicValidators'> {
  readonly topicValidators: GrapevinePubSub['topicValidators'] = new Map()
  readonly subscribed: string[] = []
  readonly published: Array<{ topic: string, data: Uint8Array }> = []
  recipients: PeerId[] = []

  readonly subscribe = (topic: string): void => { this.subscribed.push(topic) }
  readonly unsubscribe = (topic: string): void => { this.subscribed.splice(this.subscribed.indexOf(topic), 1) }
  readonly publish = async (topic: string, data?: Uint8Array): Promise<{ recipients: PeerId[] }> => {
    this.published.push({ topic, data: data ?? new Uint8Array() })
    return { recipients: this.recipients }
  }

  /** A peer (un)subscribed to topics. */
  change (peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }>): void {
    this.dispatchEvent(new CustomEvent('subscription-change', { detail: { peerId, subscriptions } }))
  }

  /** Runs the validator installed for `topic` on a message from `peer`. */
  async validate (topic: string, peer: PeerId, data: Uint8Array): Promise<TopicValidatorResult> {
    const validator = this.topicValidators.get(topic)
    if (validator === undefined) throw new Error(`no validator for ${topic}`)
    const msg: Message = { type: 'unsigned', topic, data }
    return await validator(peer, msg)
  }
}

const [peer, other] = await peerIds(2) as [PeerId, PeerId]
const keys = makeKeys()
const small = verified(configPolicy('site/small'), { key: keys.root })
const big = verified(configPolicy('site/big', [], { description: 'x'.repeat(DEFAULT_ANNOUNCE_THRESHOLD) }), { key: keys.root })

function setup (over: Partial<GossipComponents> = {}) {
  const pubsub = new FakePubSub()
  const seen = { ingest: [] as Array<[Uint8Array, string]>, announcement: [] as Array<[Uint8Array, PeerId]>, report: [] as Uint8Array[], listeners: 0 }
  const topics = new GossipTopics({
    pubsub,
    mesh: 'test',
    ingest: (bytes, from) => { seen.ingest.push([bytes, from]); return 'accepted' },
    announcement: async (bytes, from) => { seen.announcement.push([bytes, from]); return TopicValidatorResult.Accept },
    report: (bytes) => { seen.report.push(bytes); return 'accepted' },
    onListener: () => { seen.listeners++ },
    ...over
  })
  return { pubsub, topics, seen }
}

describe('GossipTopics', () => {
  it('names its three topics after the mesh', () => {
    const { topics } = setup()
    expect([topics.policies, topics.announcements, topics.receipts]).toEqual([policyTopic('test'), announceTopic('test'), receiptTopic('test')])
    expect(new Set([topics.policies, topics.announcements, topics.receipts]).size).toBe(3)
  })

  it('installs a validator on every topic without subscribing to any', () => {
    const { pubsub, topics } = setup()
    topics.install()
    expect([...pubsub.topicValidators.keys()].sort()).toEqual([topics.announcements, topics.policies, topics.receipts].sort())
    expect(pubsub.subscribed).toEqual([])
  })

  describe('the policies validator', () => {
    // Every outcome has a verdict: a new outcome does not compile without a row here.
    const table = {
      accepted: TopicValidatorResult.Accept,
      ignored: TopicValidatorResult.Ignore,
      rejected: TopicValidatorResult.Reject
    } satisfies Record<IngestOutcome, TopicValidatorResult>

    for (const [outcome, verdict] of Object.entries(table) as Array<[IngestOutcome, TopicValidatorResult]>) {
      it.each([['at once', false], ['asynchronously', true]])(`turns ${outcome}, given %s, into ${verdict}`, async (_, async) => {
        const { pubsub, topics } = setup({ ingest: async ? async () => outcome : () => outcome })
        topics.install()
        expect(await pubsub.validate(topics.policies, peer, small.bytes)).toBe(verdict)
      })
    }

    it('hands the bytes and the sender to ingest', async () => {
      const { pubsub, topics, seen } = setup()
      topics.install()
      await pubsub.validate(topics.policies, peer, small.bytes)
      expect(seen.ingest).toEqual([[small.bytes, peer.toString()]])
    })
  })

  it.each([TopicValidatorResult.Accept, TopicValidatorResult.Ignore, TopicValidatorResult.Reject])('gives the announcement validator\'s verdict (%s) as it is', async (verdict) => {
    const seen: Array<[Uint8Array, PeerId]> = []
    const { pubsub, topics } = setup({ announcement: async (bytes, from) => { seen.push([bytes, from]); return verdict } })
    topics.install()
    const bytes = encodeAnnouncement(big)
    expect(await pubsub.validate(topics.announcements, peer, bytes)).toBe(verdict)
    expect(seen).toEqual([[bytes, peer]])
  })

  it.each<[IngestOutcome, TopicValidatorResult]>([
    ['accepted', TopicValidatorResult.Accept], ['ignored', TopicValidatorResult.Ignore], ['rejected', TopicValidatorResult.Reject]
  ])('gives the report gate\'s word for the sending peer (%s → %s)', async (outcome, verdict) => {
    const from: string[] = []
    const { pubsub, topics } = setup({ report: async (_bytes, peerId) => { from.push(peerId); return outcome } })
    topics.install()
    expect(await pubsub.validate(topics.receipts, peer, new Uint8Array([1]))).toBe(verdict)
    expect(from).toEqual([peer.toString()])
  })

  it('paces every topic\'s validator through the shared turns, so a burst is validated a few per event-loop turn', async () => {
    let passes = 0
    const { pubsub, topics } = setup({ turns: { pass: async () => { passes++ } } })
    topics.install()
    await pubsub.validate(topics.policies, peer, small.bytes)
    await pubsub.validate(topics.announcements, peer, encodeAnnouncement(big))
    await pubsub.validate(topics.receipts, peer, new Uint8Array([1]))
    expect(passes).toBe(3)
  })

  it('subscribes to the three topics, and hears of listeners on the receipts topic until stopped', () => {
    const { pubsub, topics, seen } = setup()
    topics.subscribe()
    expect(pubsub.subscribed.sort()).toEqual([topics.announcements, topics.policies, topics.receipts].sort())
    pubsub.change(peer, [{ topic: topics.policies, subscribe: true }])
    pubsub.change(peer, [{ topic: topics.receipts, subscribe: false }])
    expect(seen.listeners).toBe(0)
    pubsub.change(peer, [{ topic: topics.policies, subscribe: true }, { topic: topics.receipts, subscribe: true }])
    pubsub.change(other, [{ topic: topics.receipts, subscribe: true }])
    expect(seen.listeners).toBe(2)
    topics.stop()
    pubsub.change(peer, [{ topic: topics.receipts, subscribe: true }])
    expect(seen.listeners).toBe(2)
  })

  describe('send', () => {
    it.each<[string, number | undefined, 'small' | 'big', 'whole' | 'announced']>([
      ['a small envelope, default threshold', undefined, 'small', 'whole'],
      ['a large envelope, default threshold', undefined, 'big', 'announced'],
      ['a small envelope over a tiny threshold', 100, 'small', 'announced'],
      ['a large envelope with announcing off (0)', 0, 'big', 'whole'],
      ['a large envelope with announcing off (Infinity)', Infinity, 'big', 'whole']
    ])('%s: %s', async (_, announceThreshold, size, how) => {
      const { pubsub, topics } = setup({ announceThreshold })
      pubsub.recipients = [peer, other]
      const env = size === 'small' ? small : big
      expect(await topics.send(env)).toBe(2)
      expect(pubsub.published).toEqual(how === 'whole'
        ? [{ topic: topics.policies, data: env.bytes }]
        : [{ topic: topics.announcements, data: encodeAnnouncement(env) }])
    })

    it('sends a report on the receipts topic and says how many peers it went to', async () => {
      const { pubsub, topics } = setup()
      pubsub.recipients = [other]
      const bytes = new Uint8Array([1, 2, 3])
      expect(await topics.sendReport(bytes)).toBe(1)
      expect(pubsub.published).toEqual([{ topic: topics.receipts, data: bytes }])
    })
  })
})
