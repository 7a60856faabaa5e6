import { createNet, multiaddr, type GrapevineLibp2p } from '../../src/net/libp2p.js'
import { generateIdentity } from '../../src/net/identity.js'
import { envelopeId } from '../../src/envelope/index.js'
import { policyTopic } from '../../src/node/constants.js'
import type { Agent } from '../../src/node/agent.js'
import { waitFor } from './fixtures.js'

export interface RogueOptions {
  /** Topics it subscribes to (default: the default mesh's policies topic). */
  topics?: string[]
  /** Envelopes it holds and offers by sync (a malicious bootstrap's "head"). */
  offers?: Uint8Array[]
  /** Dial this agent and wait until it sees the agent subscribed to every topic. */
  target?: Agent
}

function header (bytes: Uint8Array): { name: string, version: number, hash: string } {
  return JSON.parse(new TextDecoder().decode(bytes)) as { name: string, version: number, hash: string }
}

/** A bare libp2p peer from the same stack as the agents, that speaks the mesh's protocols but obeys none of its rules. */
export async function startRogue (opts: RogueOptions = {}): Promise<GrapevineLibp2p> {
  const offers = opts.offers ?? []
  const topics = opts.topics ?? [policyTopic('default')]
  const net = await createNet({
    privateKey: await generateIdentity(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    scoredTopics: [],
    sync: {
      interval: 0,
      source: {
        digest: () => offers.map((bytes) => ({ ...header(bytes), id: envelopeId(bytes) })),
        envelope: (name) => offers.find((bytes) => header(bytes).name === name),
        ingest: async () => 'ignored',
        wantsEnvelopes: false
      }
    }
  })
  for (const t of topics) net.services.pubsub.subscribe(t)
  if (opts.target !== undefined) {
    await net.dial(multiaddr(opts.target.multiaddrs[0]!))
    await waitFor(() => topics.every((t) => net.services.pubsub.getSubscribers(t).length > 0), 'the rogue to see the agent subscribed')
  }
  return net
}
