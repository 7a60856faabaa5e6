import { randomUUID } from 'node:crypto'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { afterEach, describe, expect, it } from 'vitest'
import { createNet, type GrapevineLibp2p } from '../../src/net/libp2p.js'
import { generateIdentity, nodeSigningKey, peerIdOf } from '../../src/net/identity.js'
import type { PrivateKey } from '../../src/net/libp2p.js'
import { generateSigningKey, type SigningKey } from '../../src/envelope/index.js'
import { signReport, type Receipt } from '../../src/receipt/index.js'
import { MAX_RECEIPTS_PER_STREAM, RECEIPT_PROTOCOL, ReceiptSender, serveReceipts, verifyNodeReport } from '../../src/node/receipts.js'
import { Recorder, within } from '../helpers/recorder.js'

/**
 * The receipts stream protocol between two real libp2p nodes on the memory transport. The
 * end-to-end routing through agents is test/node/receipts.spec.ts.
 */

const nets: GrapevineLibp2p[] = []
afterEach(async () => {
  await Promise.all(nets.splice(0).map(async (n) => { await n.stop() }))
})

async function node (key?: PrivateKey): Promise<GrapevineLibp2p> {
  const net = await createNet({
    privateKey: key ?? await generateIdentity(),
    transport: 'memory',
    listen: [`/memory/receipts-${randomUUID()}`],
    scoredTopics: [],
    sync: { interval: 0, source: { digest: () => [], envelope: () => undefined, ingest: async () => 'ignored', wantsEnvelopes: false } }
  })
  nets.push(net)
  return net
}

/** A receipt naming the node whose identity is `identity`, signed by its own key unless `signer` forges it. */
function receipt (identity: PrivateKey, version = 1, signer: SigningKey = nodeSigningKey(identity), node = peerIdOf(identity).toString()): Uint8Array {
  const body: Receipt = {
    format: 1, kind: 'receipt', node, key: signer.id, name: 'web-1', tags: {}, at: '2025-01-02T03:04:05.000Z',
    policy: 'site/motd', version, hash: `sha256:${'0'.repeat(64)}`, outcome: 'applied', changed: 1, failures: [], failedCount: 0, durationMs: 3
  }
  return signReport(body, signer)
}

/** A server taking receipts through `take` (verifyNodeReport unless given), and a client connected to it. */
async function pair (take: (bytes: Uint8Array) => boolean = (b) => verifyNodeReport(b) !== undefined): Promise<{
  server: GrapevineLibp2p
  client: GrapevineLibp2p
  clientKey: PrivateKey
  taken: Recorder<{ bytes: Uint8Array, from: string, ok: boolean }>
}> {
  const server = await node()
  const taken = new Recorder<{ bytes: Uint8Array, from: string, ok: boolean }>()
  await serveReceipts(server, (bytes, from) => {
    const ok = take(bytes)
    taken.push({ bytes, from, ok })
    return ok
  })
  const clientKey = await generateIdentity()
  const client = await node(clientKey)
  await client.dial(server.getMultiaddrs()[0]!)
  return { server, client, clientKey, taken }
}

/** Sends `frames` on one receipts stream by hand; resolves to how the server ended it. */
async function sendRaw (client: GrapevineLibp2p, server: GrapevineLibp2p, frames: Uint8Array[]): Promise<'closed' | 'reset'> {
  const stream = await client.dialProtocol(server.peerId, RECEIPT_PROTOCOL)
  await pipe(frames, (src) => lp.encode(src), stream.sink).catch(() => {})
  const ended = (async (): Promise<'closed' | 'reset'> => {
    try {
      for await (const _ of stream.source) { /* the server never writes */ }
      return 'closed'
    } catch {
      return 'reset'
    }
  })()
  return await within(ended, 'the server to end the stream', 10_000)
}

describe('verifyNodeReport', () => {
  it('takes a report signed by the key of the node it names', async () => {
    const key = await generateIdentity()
    expect(verifyNodeReport(receipt(key))).toMatchObject({ kind: 'receipt', node: peerIdOf(key).toString(), key: nodeSigningKey(key).id })
  })

  it.each<[string, (key: PrivateKey) => Uint8Array]>([
    ['signed by a key that is not the named node\'s', (key) => receipt(key, 1, generateSigningKey())],
    ['not a receipt', () => new TextEncoder().encode('{"kind":"receipt"}')],
    ['not JSON', () => Uint8Array.of(0xff, 0x00)],
    ['naming a node that is not a peer id', (key) => receipt(key, 1, nodeSigningKey(key), 'node-a')]
  ])('refuses a report %s', async (_, make) => {
    expect(verifyNodeReport(make(await generateIdentity()))).toBeUndefined()
  })
})

describe('serveReceipts and ReceiptSender', () => {
  it('a burst of receipts arrives on one stream, in order, from the sender', async () => {
    const { server, client, clientKey, taken } = await pair()
    const sent = new Recorder<{ peer: string, count: number }>()
    const failed = new Recorder<Error>()
    const sender = new ReceiptSender(client, { sent: (peer, count) => { sent.push({ peer, count }) }, failed: (_peer, _count, err) => { failed.push(err) } })
    const receipts = [1, 2, 3].map((v) => receipt(clientKey, v))
    for (const r of receipts) sender.send(server.peerId.toString(), r)

    expect(await sent.next('the burst sent')).toEqual({ peer: server.peerId.toString(), count: 3 })
    await taken.next('three receipts taken', () => taken.values.length === 3)
    expect(taken.values.map((t) => t.bytes)).toEqual(receipts)
    expect(taken.values.every((t) => t.ok && t.from === client.peerId.toString())).toBe(true)
    expect(sent.values).toHaveLength(1)
    expect(failed.values).toEqual([])
  })

  it(`splits a queue longer than ${MAX_RECEIPTS_PER_STREAM} into streams the receiver takes`, async () => {
    const { server, client, taken } = await pair(() => true)
    const sent = new Recorder<number>()
    const sender = new ReceiptSender(client, { sent: (_peer, count) => { sent.push(count) } })
    for (let i = 0; i < MAX_RECEIPTS_PER_STREAM + 1; i++) sender.send(server.peerId.toString(), Uint8Array.of(i % 256))
    await sent.next('the second stream', () => sent.values.length === 2, 10_000)
    expect(sent.values).toEqual([MAX_RECEIPTS_PER_STREAM, 1])
    await taken.next('every frame taken', () => taken.values.length === MAX_RECEIPTS_PER_STREAM + 1, 10_000)
  })

  it('an invalid receipt kills the stream: what follows it is never taken', async () => {
    const { server, client, clientKey, taken } = await pair()
    const good = receipt(clientKey, 1)
    const forged = receipt(clientKey, 2, generateSigningKey())
    expect(await sendRaw(client, server, [good, forged, receipt(clientKey, 3)])).toBe('reset')
    expect(taken.values.map((t) => [t.bytes, t.ok])).toEqual([[good, true], [forged, false]])
  })

  it('a valid stream is closed by the server, not reset', async () => {
    const { server, client, clientKey, taken } = await pair()
    expect(await sendRaw(client, server, [receipt(clientKey, 1), receipt(clientKey, 2)])).toBe('closed')
    expect(taken.values.map((t) => t.ok)).toEqual([true, true])
  })

  it.each([
    ['takes exactly MAX_RECEIPTS_PER_STREAM frames', MAX_RECEIPTS_PER_STREAM, 'closed', MAX_RECEIPTS_PER_STREAM],
    ['refuses a stream with one more', MAX_RECEIPTS_PER_STREAM + 1, 'reset', MAX_RECEIPTS_PER_STREAM]
  ] as const)('%s', async (_, frames, ending, takenCount) => {
    const { server, client, taken } = await pair(() => true)
    expect(await sendRaw(client, server, Array.from({ length: frames }, (_, i) => Uint8Array.of(i % 256)))).toBe(ending)
    expect(taken.values).toHaveLength(takenCount)
  })

  it.each([
    ['a peer it cannot reach', false],
    ['a connected peer that does not serve receipts', true]
  ])('a sender to %s reports the receipts failed', async (_, connected) => {
    const client = await node()
    const other = await node()
    if (connected) await client.dial(other.getMultiaddrs()[0]!)
    const target = connected ? other.peerId.toString() : peerIdOf(await generateIdentity()).toString()
    const failed = new Recorder<{ peer: string, count: number, err: Error }>()
    const sent = new Recorder<number>()
    const sender = new ReceiptSender(client, { sent: (_peer, count) => { sent.push(count) }, failed: (peer, count, err) => { failed.push({ peer, count, err }) } })
    sender.send(target, Uint8Array.of(1))
    sender.send(target, Uint8Array.of(2))
    const f = await failed.next('the failure', undefined, 10_000)
    expect(f).toMatchObject({ peer: target, count: 2 })
    expect(f.err).toBeInstanceOf(Error)
    expect(sent.values).toEqual([])
  })
})
