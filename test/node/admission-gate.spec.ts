import { afterEach, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { filePolicy, nextEvent, startMesh, waitFor, type TestMesh } from './fixtures.js'
import { startRogue } from './rogue.js'
import { trustPolicy } from '../helpers/envelope.js'
import { generateSigningKey, type SigningKey } from '../../src/envelope/index.js'
import { generateIdentity, peerIdOf, privateKeyToProtobuf } from '../../src/net/identity.js'
import { multiaddr, type GrapevineLibp2p } from '../../src/net/libp2p.js'
import { ADMISSION_PROTOCOL, signAdmission } from '../../src/admission/index.js'
import { StateStore } from '../../src/store/index.js'
import type { Agent } from '../../src/node/agent.js'
import type { Policy } from '../../src/policy/index.js'

let mesh: TestMesh | undefined
const rogues: GrapevineLibp2p[] = []
afterEach(async () => {
  await Promise.allSettled(rogues.map(async (r) => { await r.stop() }))
  rogues.length = 0
  await mesh?.stop()
  mesh = undefined
})

/**
 * A mesh whose trust policy (held from the start, as after a restart) lists `enroller`, and
 * `n` agents with --admitted-only, each with a certificate for its own peer id, in a chain.
 */
async function admittedMesh (n: number, graceMs: number): Promise<{ m: TestMesh, enroller: SigningKey }> {
  const enroller = generateSigningKey()
  const m = mesh = await startMesh(0, { admittedOnly: true, admissionGraceMs: graceMs })
  const trust = m.sign({ ...trustPolicy([]), enrollers: [enroller.id] } as Policy, 1)
  for (let i = 0; i < n; i++) {
    const key = await generateIdentity()
    const store = await StateStore.open(join(m.dir, `node-${i}`, 'state'))
    await store.writeIdentity(privateKeyToProtobuf(key))
    await store.saveEnvelope('grapevine/trust', trust, 1)
    const admission = signAdmission({ peer: peerIdOf(key).toString(), name: `node-${i}`, key: enroller, issuedAt: Date.now() })
    await m.add({ admission, bootstrapFrom: i === 0 ? [] : [i - 1] })
  }
  return { m, enroller }
}

async function rogueDialling (agent: Agent): Promise<GrapevineLibp2p> {
  const rogue = await startRogue()
  rogues.push(rogue)
  await rogue.dial(multiaddr(agent.multiaddrs[0]!))
  return rogue
}

const connected = (a: GrapevineLibp2p, b: GrapevineLibp2p): boolean => a.getConnections(b.peerId).length > 0

async function expectRefused (agent: Agent, rogue: GrapevineLibp2p, withinMs: number): Promise<void> {
  await waitFor(() => !connected(agent.libp2p, rogue) && !connected(rogue, agent.libp2p), 'the agent to drop the rogue', withinMs)
  // Blocked: the agent's gater refuses it when it comes back, once the handshake names it.
  let reopened = 0
  const onOpen = (evt: CustomEvent<{ remotePeer: { equals: (p: unknown) => boolean } }>): void => { if (evt.detail.remotePeer.equals(rogue.peerId)) reopened++ }
  agent.libp2p.addEventListener('connection:open', onOpen as never)
  try {
    await rogue.dial(multiaddr(agent.multiaddrs[0]!), { signal: AbortSignal.timeout(5000) }).catch(() => {})
    await waitFor(() => !connected(rogue, agent.libp2p), 'the rogue to see its new connection refused', 5000)
    expect(reopened).toBe(0)
    expect(connected(agent.libp2p, rogue)).toBe(false)
  } finally {
    agent.libp2p.removeEventListener('connection:open', onOpen as never)
  }
}

describe('--admitted-only', () => {
  it('keeps admitted agents connected and exchanging policies, and drops a peer that shows no certificate within the grace', async () => {
    const graceMs = 3000
    const { m } = await admittedMesh(2, graceMs)
    const [a0, a1] = m.agents as [Agent, Agent]
    await waitFor(() => connected(a0.libp2p, a1.libp2p), 'the agents to connect')
    const rogue = await rogueDialling(a0)
    const dialled = Date.now()
    await expectRefused(a0, rogue, graceMs + 5000)
    expect(Date.now() - dialled).toBeGreaterThanOrEqual(graceMs - 100)
    // The agents connected before the rogue, so their grace has passed too.
    expect(connected(a0.libp2p, a1.libp2p)).toBe(true)
    const accepted = nextEvent(a1, 'accepted', ({ envelope }) => envelope.name === 'web/motd')
    const { outcome } = await a0.publish(m.sign(filePolicy('web/motd', 'hello'), 1))
    expect(outcome).toBe('accepted')
    await accepted
    expect(connected(a0.libp2p, a1.libp2p)).toBe(true)
  })

  describe('refuses at once, well within the grace', () => {
    const send = async (rogue: GrapevineLibp2p, agent: Agent, frame: Uint8Array): Promise<void> => {
      const stream = await rogue.dialProtocol(agent.peerId, ADMISSION_PROTOCOL)
      await pipe([frame], (src) => lp.encode(src), stream.sink).catch(() => {})
    }
    const cases: Array<[string, (rogue: GrapevineLibp2p, enroller: SigningKey, agent: Agent) => Uint8Array]> = [
      ['garbage', () => new TextEncoder().encode('not a certificate')],
      ['a frame over the certificate bound', () => new Uint8Array(64 * 1024).fill(0x7b)],
      ['a certificate for another peer id', (_, enroller, agent) => signAdmission({ peer: agent.peerId.toString(), name: 'impostor', key: enroller, issuedAt: Date.now() })],
      ['a certificate for its own peer id by a key that is no enroller', (rogue) => signAdmission({ peer: rogue.peerId.toString(), name: 'self-made', key: generateSigningKey(), issuedAt: Date.now() })],
      ['an expired certificate', (rogue, enroller) => signAdmission({ peer: rogue.peerId.toString(), name: 'old', key: enroller, issuedAt: Date.now() - 2000, expires: Date.now() - 1000 })]
    ]
    it.each(cases)('%s', async (_, frame) => {
      const { m, enroller } = await admittedMesh(1, 60_000)
      const agent = m.agents[0]!
      const rogue = await rogueDialling(agent)
      await send(rogue, agent, frame(rogue, enroller, agent))
      await expectRefused(agent, rogue, 5000)
    })
  })

  it('keeps a bare peer that shows a certificate that holds', async () => {
    const { m, enroller } = await admittedMesh(1, 3000)
    const agent = m.agents[0]!
    const rogue = await rogueDialling(agent)
    await pipe([signAdmission({ peer: rogue.peerId.toString(), name: 'honest', key: enroller, issuedAt: Date.now() })], (src) => lp.encode(src), (await rogue.dialProtocol(agent.peerId, ADMISSION_PROTOCOL)).sink)
    // A second peer with nothing to show marks the passing of the first one's grace.
    const late = await rogueDialling(agent)
    await expectRefused(agent, late, 10_000)
    expect(connected(agent.libp2p, rogue)).toBe(true)
  })

  it('refuses to start while the trust policy lists no enrollers', async () => {
    mesh = await startMesh(0)
    await expect(mesh.add({ admittedOnly: true })).rejects.toMatchObject({ name: 'AdmissionNotEnforcedError' })
  })
})
