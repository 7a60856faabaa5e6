import { afterEach, describe, expect, it } from 'vitest'
import { startMesh, waitFor, type TestMesh } from './fixtures.js'
import type { GrapevineLibp2p } from '../../src/net/libp2p.js'
import { startRogue } from './rogue.js'
import { generateSigningKey, signPolicy } from '../../src/envelope/index.js'
import { validatePolicyObject } from '../../src/policy/index.js'
import { policyTopic, receiptTopic } from '../../src/node/constants.js'
import type { Agent } from '../../src/node/agent.js'

let mesh: TestMesh | undefined
let rogue: GrapevineLibp2p | undefined
afterEach(async () => {
  await rogue?.stop()
  await mesh?.stop()
  mesh = undefined
  rogue = undefined
})

/** gossipsub's default graylist threshold: a peer scored below it has everything it sends dropped unread. */
const GRAYLIST = -80

/** The gossipsub calls these tests read; the agent's pubsub type shows only the PubSub interface. */
function gossipsub (agent: Agent): { getScore: (p: string) => number, getMeshPeers: (topic: string) => string[] } {
  return agent.libp2p.services.pubsub as unknown as { getScore: (p: string) => number, getMeshPeers: (topic: string) => string[] }
}

function scoreOf (agent: Agent, peer: GrapevineLibp2p): number {
  return gossipsub(agent).getScore(peer.peerId.toString())
}

describe('peer penalties that bite', () => {
  it('two envelopes from an untrusted signer graylist a fresh identity (before: seven went unpunished)', async () => {
    mesh = await startMesh(1)
    const agent = mesh.agents[0]!
    const topic = policyTopic(agent.mesh)
    rogue = await startRogue({ target: agent, topics: [topic] })
    const outsider = generateSigningKey()
    const policy = (n: number): ReturnType<typeof validatePolicyObject> => validatePolicyObject({ name: `web/p${n}`, resources: [{ id: 'f', type: 'file', path: `/p${n}`, content: 'x\n' }] })
    // Let the rogue earn what an honest peer earns: a place in the agent's mesh, and time there.
    // (Gossipsub's defaults counted that time per millisecond up to +3,600: four seconds in the
    // mesh outweighed six invalid messages.)
    await waitFor(() => gossipsub(agent).getMeshPeers(topic).includes(rogue!.peerId.toString()), 'the agent to graft the rogue')
    const grafted = Date.now()
    await waitFor(() => Date.now() - grafted > 4000, 'four seconds in the mesh')
    const refused: string[] = []
    agent.on('rejected', ({ reason }) => { refused.push(reason) })
    for (const n of [1, 2]) await rogue.services.pubsub.publish(topic, signPolicy(policy(n), { version: 1, key: outsider }))
    await waitFor(() => refused.length === 2, 'two refusals')
    await waitFor(() => scoreOf(agent, rogue!) < GRAYLIST, `the rogue's score below ${GRAYLIST}`, 5000)
    expect(refused).toEqual(['untrusted', 'untrusted'])
  })

  it('invalid receipts and beacons are penalised too', async () => {
    mesh = await startMesh(1)
    const agent = mesh.agents[0]!
    const topic = receiptTopic(agent.mesh)
    rogue = await startRogue({ target: agent, topics: [topic] })
    for (const n of [1, 2, 3]) await rogue.services.pubsub.publish(topic, new TextEncoder().encode(`{"kind":"presence","n":${n}}`))
    await waitFor(() => scoreOf(agent, rogue!) < GRAYLIST, `the rogue's score below ${GRAYLIST}`, 5000)
  })
})
