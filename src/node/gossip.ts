import { encodeAnnouncement, type VerifiedEnvelope } from '../envelope/index.js'
import { TopicValidatorResult, type GrapevinePubSub, type PeerId } from '../net/libp2p.js'
import type { IngestOutcome } from '../sync/index.js'
import { announceTopic, policyTopic, receiptTopic } from './constants.js'
import { announces } from './rules.js'
import { Turns } from './turns.js'

/** Gossip messages validated per event-loop turn, over all topics (turns.ts). */
export const GOSSIP_VALIDATIONS_PER_TURN = 8

export interface GossipComponents {
  pubsub: Pick<GrapevinePubSub, 'topicValidators' | 'subscribe' | 'unsubscribe' | 'publish' | 'addEventListener' | 'removeEventListener'>
  mesh: string
  announceThreshold?: number
  /** Whole envelopes from the policies topic. */
  ingest: (bytes: Uint8Array, from: string) => Promise<IngestOutcome> | IngestOutcome
  /** Announcements of large envelopes. */
  announcement: (bytes: Uint8Array, from: PeerId) => Promise<TopicValidatorResult>
  /** Receipts and presence beacons: accepted when valid, ignored or rejected past a rate (node/report-gate.ts). */
  report: (bytes: Uint8Array, from: string) => Promise<IngestOutcome> | IngestOutcome
  /** Someone subscribed to the receipts topic: a beacon would now be heard. */
  onListener: () => void
  /** Paces the validators (default: a turn every GOSSIP_VALIDATIONS_PER_TURN messages); tests pass their own. */
  turns?: Pick<Turns, 'pass'>
}

const verdict: Record<IngestOutcome, TopicValidatorResult> = {
  accepted: TopicValidatorResult.Accept,
  ignored: TopicValidatorResult.Ignore,
  rejected: TopicValidatorResult.Reject
}

/**
 * The three gossip topics: their validators (which decide Accept, Ignore or Reject, and so what
 * gossipsub relays and penalises) and what this node publishes on them.
 */
export class GossipTopics {
  readonly policies: string
  readonly announcements: string
  readonly receipts: string
  private readonly onSubscriptions = (evt: CustomEvent<{ subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (evt.detail.subscriptions.some((s) => s.topic === this.receipts && s.subscribe)) this.c.onListener()
  }

  constructor (private readonly c: GossipComponents) {
    this.policies = policyTopic(c.mesh)
    this.announcements = announceTopic(c.mesh)
    this.receipts = receiptTopic(c.mesh)
  }

  /**
   * Validators go in before the network starts, so nothing is relayed unchecked. Each takes its
   * turn (GOSSIP_VALIDATIONS_PER_TURN): a flood is validated a few messages per event-loop turn.
   */
  install (): void {
    const { pubsub } = this.c
    const turns = this.c.turns ?? new Turns(GOSSIP_VALIDATIONS_PER_TURN)
    pubsub.topicValidators.set(this.policies, async (peer, msg) => { await turns.pass(); return verdict[await this.c.ingest(msg.data, peer.toString())] })
    pubsub.topicValidators.set(this.announcements, async (peer, msg) => { await turns.pass(); return await this.c.announcement(msg.data, peer) })
    pubsub.topicValidators.set(this.receipts, async (peer, msg) => { await turns.pass(); return verdict[await this.c.report(msg.data, peer.toString())] })
  }

  /** Subscribes; gossipsub accepts subscriptions only once started. */
  subscribe (): void {
    const { pubsub } = this.c
    pubsub.addEventListener('subscription-change', this.onSubscriptions as never)
    for (const topic of [this.policies, this.announcements, this.receipts]) pubsub.subscribe(topic)
  }

  stop (): void {
    this.c.pubsub.removeEventListener('subscription-change', this.onSubscriptions as never)
  }

  /** Gossips an envelope whole, or above the announce threshold its announcement; resolves to the peers it went to. */
  async send (env: VerifiedEnvelope): Promise<number> {
    const result = announces(env.bytes.byteLength, this.c.announceThreshold)
      ? await this.c.pubsub.publish(this.announcements, encodeAnnouncement(env))
      : await this.c.pubsub.publish(this.policies, env.bytes)
    return result.recipients.length
  }

  async sendReport (bytes: Uint8Array): Promise<number> {
    return (await this.c.pubsub.publish(this.receipts, bytes)).recipients.length
  }
}
