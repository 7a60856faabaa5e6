import { pushable } from 'it-pushable'
import { afterEach, describe, expect, it } from 'vitest'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import type { ComponentLogger, Logger } from '@libp2p/interface'
import { createNet, multiaddr, type GrapevineLibp2p } from '../../src/net/libp2p.js'
import { generateIdentity } from '../../src/net/identity.js'
import { FLEET_PAGE_NODES, MAX_RESPONSE_FRAMES, QUERY_PROTOCOL, fleetPage, queryEnvelope, queryFleet, serveQueries } from '../../src/query/index.js'
import { FleetView, MAX_FLEET_POLICIES_PER_NODE, type FleetNode } from '../../src/receipt/index.js'

/** A logger that keeps what `component` logs as errors, and drops the rest. */
function recordingLogger (component: string): { logger: ComponentLogger, errors: unknown[][] } {
  const errors: unknown[][] = []
  const make = (name: string): Logger => Object.assign(() => {}, {
    error: (...args: unknown[]) => { if (name === component) errors.push(args) },
    trace: () => {},
    enabled: false,
    newScope: (scope: string) => make(`${name}:${scope}`)
  })
  return { logger: { forComponent: make }, errors }
}

const nets: GrapevineLibp2p[] = []
afterEach(async () => {
  await Promise.all(nets.splice(0).map(async (n) => { await n.stop() }))
})

async function peer (logger?: ComponentLogger): Promise<GrapevineLibp2p> {
  const net = await createNet({
    privateKey: await generateIdentity(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    scoredTopics: [],
    sync: { interval: 0, source: { digest: () => [], envelope: () => undefined, ingest: async () => 'ignored', wantsEnvelopes: false } },
    ...(logger !== undefined ? { logger } : {})
  })
  nets.push(net)
  return net
}

const node = (i: number): FleetNode => ({ id: `peer-${i}`, name: `n${i}`, tags: { role: 'web' }, lastSeen: '2026-01-01T00:00:00.000Z', policies: {}, admitted: true })

const byId = (nodes: FleetNode[]): FleetNode[] => [...nodes].sort((a, b) => (a.id < b.id ? -1 : 1))

async function serving (fleet: FleetNode[], opts: { timeoutMs?: number } = {}, onFleet = (): void => {}): Promise<{ server: GrapevineLibp2p, client: GrapevineLibp2p, errors: unknown[][] }> {
  const { logger, errors } = recordingLogger('grapevine:query')
  const server = await peer(logger)
  await serveQueries(server, {
    fleet: () => { onFleet(); return fleet },
    envelope: async (name, version) => name === 'web/site' && version === 3 ? new Uint8Array([1, 2, 3]) : undefined
  }, opts)
  const client = await peer()
  await client.dial(multiaddr(server.getMultiaddrs()[0]!.toString()))
  return { server, client, errors }
}

describe('query protocol', () => {
  it('aborts a stream that drips its query slower than the deadline allows, and logs why', async () => {
    const { server, client, errors } = await serving([], { timeoutMs: 300 })
    const stream = await client.dialProtocol(server.peerId, QUERY_PROTOCOL)
    const drip = pushable<Uint8Array>()
    void stream.sink(drip).catch(() => {})
    drip.push(new Uint8Array([1])) // the first byte of a length prefix, and then nothing
    const ended = (async () => { for await (const _ of stream.source) { /* no answer comes */ } })()
    await expect(ended).rejects.toThrow()
    expect(errors.some((e) => String(e[2]).includes('QueryTimeoutError') || String(e[2]).includes('not finished within 300 ms'))).toBe(true)
    drip.end()
  })

  it('answers fleet (in chunks) and envelope queries', async () => {
    const fleet = Array.from({ length: 1_200 }, (_, i) => node(i))
    const { server, client, errors } = await serving(fleet)
    expect(await queryFleet(client, server.peerId)).toEqual(byId(fleet))
    expect([...(await queryEnvelope(client, server.peerId, 'web/site', 3)) ?? []]).toEqual([1, 2, 3])
    expect(await queryEnvelope(client, server.peerId, 'web/site', 4)).toBeUndefined()
    expect(errors).toEqual([])
  })

  it('carries each node\'s encryption key, and refuses an answer whose key is not an age recipient', async () => {
    const key = `age1${'q'.repeat(58)}`
    const fleet = [{ ...node(1), recipient: key }, node(2)]
    const { server, client } = await serving(fleet)
    expect(await queryFleet(client, server.peerId)).toEqual(byId(fleet))
    const bad = await serving([{ ...node(3), recipient: 'age1-not-a-key' }])
    await expect(queryFleet(bad.client, bad.server.peerId)).rejects.toThrow(/answered the fleet query with something other than a list of nodes/)
  })

  it('fetches a large view a page at a time, each its own query (before: one stream for all of it)', async () => {
    const fleet = Array.from({ length: 2 * FLEET_PAGE_NODES + 500 }, (_, i) => node(i))
    let asked = 0
    const { server, client, errors } = await serving(fleet, {}, () => { asked++ })
    expect(await queryFleet(client, server.peerId)).toEqual(byId(fleet))
    expect(asked).toBe(3)
    expect(errors).toEqual([])
  })

  it('still answers an older asker\'s query for the whole view in one stream', async () => {
    const fleet = Array.from({ length: FLEET_PAGE_NODES + 10 }, (_, i) => node(i))
    const { server, client } = await serving(fleet)
    const stream = await client.dialProtocol(server.peerId, QUERY_PROTOCOL)
    await pipe([new TextEncoder().encode('{"op":"fleet"}')], (src) => lp.encode(src), stream.sink)
    const nodes: FleetNode[] = []
    for await (const f of lp.decode(stream.source)) nodes.push(...JSON.parse(new TextDecoder().decode(f.subarray())) as FleetNode[])
    expect(nodes).toHaveLength(fleet.length)
  })

  it.each<[string, string | undefined, number, number, string | undefined]>([
    ['the first page', undefined, 3, 3, 'peer-2'],
    ['a page after a cursor', 'peer-2', 3, 3, 'peer-5'],
    ['the last page', 'peer-5', 10, 4, undefined]
  ])('fleetPage: %s', (_, after, limit, count, next) => {
    const frames = fleetPage(Array.from({ length: 10 }, (_, i) => node(9 - i)), after, limit).map((f) => JSON.parse(new TextDecoder().decode(f)) as unknown)
    const nodes = frames.filter((f) => Array.isArray(f)).flat() as FleetNode[]
    expect(nodes).toHaveLength(count)
    expect(nodes.every((n) => after === undefined || n.id > after)).toBe(true)
    expect(frames.find((f) => !Array.isArray(f))).toEqual(next !== undefined ? { next } : undefined)
  })

  it('refuses a fleet page whose cursor does not move on', async () => {
    const server = await peer()
    await server.handle(QUERY_PROTOCOL, ({ stream }) => {
      void pipe([new TextEncoder().encode('[]'), new TextEncoder().encode('{"next":"a"}')], (src) => lp.encode(src), stream.sink).catch(() => {})
    })
    const client = await peer()
    await client.dial(multiaddr(server.getMultiaddrs()[0]!.toString()))
    await expect(queryFleet(client, server.peerId)).rejects.toMatchObject({ name: 'InvalidQueryResponseError' })
  })

  it('answers nodes that report thousands of long policy names: the view keeps a bounded number, and frames are bounded by bytes', async () => {
    const view = new FleetView()
    const long = (i: number): string => `p${i}/${'x'.repeat(190)}`
    const hash = `sha256:${'a'.repeat(64)}`
    for (let i = 0; i < 2_000; i++) {
      view.add({ format: 1, kind: 'receipt', node: 'peer-big', key: `ed25519:${'A'.repeat(43)}`, name: 'big', tags: {}, at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), policy: long(i), version: 1, hash, outcome: 'applied', changed: 0, failures: [], failedCount: 0, durationMs: 1 })
    }
    const big = view.list()[0]!
    expect(Object.keys(big.policies)).toHaveLength(MAX_FLEET_POLICIES_PER_NODE)
    expect(big.policies[long(1_999)]).toBeDefined()
    // 40 such nodes: about 6 MB of fleet, three times the largest frame a client reads.
    const fleet = Array.from({ length: 40 }, (_, i) => ({ ...big, id: `peer-${i}`, name: `n${i}` }))
    let asked = 0
    const { server, client, errors } = await serving(fleet, {}, () => { asked++ })
    const answer = await queryFleet(client, server.peerId)
    expect(answer.map((n) => [n.id, Object.keys(n.policies).length])).toEqual(byId(fleet).map((n) => [n.id, MAX_FLEET_POLICIES_PER_NODE]))
    // About 6 MB: two pages of at most FLEET_PAGE_BYTES (and the node that passes it).
    expect(asked).toBe(2)
    expect(errors).toEqual([])
  })

  it.each([
    ['not JSON', '{op', /query is not JSON/],
    ['an unknown op', '{"op":"shutdown"}', /query field op: /],
    ['an extra field', '{"op":"fleet","all":true}', /query field \(root\): /],
    ['a bad version', '{"op":"envelope","name":"web/site","version":0}', /query field version: /]
  ])('logs a request that is %s, as an InvalidQueryError, and answers nothing', async (_, body, message) => {
    const { server, client, errors } = await serving([node(1)])
    const stream = await client.dialProtocol(server.peerId, QUERY_PROTOCOL)
    await pipe([new TextEncoder().encode(body)], (src) => lp.encode(src), stream.sink)
    const frames: unknown[] = []
    await (async () => { for await (const f of lp.decode(stream.source)) frames.push(f) })().catch(() => {})
    expect(frames).toEqual([])
    await expect.poll(() => errors.length, { timeout: 2_000 }).toBe(1)
    const err = errors[0]?.find((a) => a instanceof Error) as Error
    expect(err.name).toBe('InvalidQueryError')
    expect(err.message).toMatch(message)
  })

  it(`refuses an answer of more than ${MAX_RESPONSE_FRAMES} frames`, async () => {
    const server = await peer()
    await server.handle(QUERY_PROTOCOL, ({ stream }) => {
      void pipe(Array.from({ length: MAX_RESPONSE_FRAMES + 1 }, () => new TextEncoder().encode('[]')), (src) => lp.encode(src), stream.sink).catch(() => {})
    })
    const client = await peer()
    await client.dial(multiaddr(server.getMultiaddrs()[0]!.toString()))
    await expect(queryFleet(client, server.peerId)).rejects.toMatchObject({ name: 'TooManyResponseFramesError' })
  })

  it('refuses a fleet answer that is not a list of nodes', async () => {
    const server = await peer()
    await server.handle(QUERY_PROTOCOL, ({ stream }) => {
      void pipe([new TextEncoder().encode('{"nodes":1}')], (src) => lp.encode(src), stream.sink).catch(() => {})
    })
    const client = await peer()
    await client.dial(multiaddr(server.getMultiaddrs()[0]!.toString()))
    await expect(queryFleet(client, server.peerId)).rejects.toMatchObject({ name: 'InvalidQueryResponseError' })
  })
})
