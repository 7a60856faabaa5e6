import { afterEach, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { filePolicy, startMesh, waitFor, type TestMesh } from './fixtures.js'
import { startApi, type ApiServer } from '../../src/node/api.js'
import { generateSwarmKey } from '../../src/net/identity.js'
import { queryFleet } from '../../src/query/index.js'

let mesh: TestMesh | undefined
let api: ApiServer | undefined
afterEach(async () => {
  await api?.close()
  await mesh?.stop()
  mesh = undefined
  api = undefined
})

describe('local HTTP API', () => {
  it('serves health, status, metrics and history, and takes published envelopes', async () => {
    mesh = await startMesh(1, { tags: { role: 'web' } })
    const a = mesh.agents[0]!
    api = await startApi(a, { stateDir: join(mesh.dir, 'node-0', 'state'), tcp: { host: '127.0.0.1', port: 0 } })
    // On TCP every route but /health and /metrics needs the token (test/node/api-owner.spec.ts).
    const headers = { authorization: `Bearer ${api.token ?? ''}` }
    const bytes = mesh.sign(filePolicy('web/site', 'hi\n'), 4)
    const pub = await fetch(`${api.url}/publish`, { method: 'POST', body: Buffer.from(bytes), headers })
    expect(pub.status).toBe(200)
    expect(await pub.json()).toMatchObject({ outcome: 'accepted', name: 'web/site', version: 4 })
    await waitFor(() => a.status().policies[0]?.lastApply !== undefined, 'the apply')

    expect(await (await fetch(`${api.url}/health`)).json()).toMatchObject({ ok: true, policies: 1 })
    const status = await (await fetch(`${api.url}/status`, { headers })).json() as { node: { tags: Record<string, string> }, policies: Array<{ name: string, version: number, signer: string, lastApply: { outcome: string } }> }
    expect(status.node.tags).toEqual({ role: 'web' })
    expect(status.policies[0]).toMatchObject({ name: 'web/site', version: 4, signer: mesh.root.id, lastApply: { outcome: 'changes' } })

    const metrics = await (await fetch(`${api.url}/metrics`)).text()
    expect(metrics).toMatch(/grapevine_envelopes_accepted_total\{via="api"\} 1/)
    expect(metrics).toMatch(/grapevine_applies_total\{outcome="changes"\} 1/)

    const garbage = await fetch(`${api.url}/publish`, { method: 'POST', body: 'not an envelope', headers })
    expect(garbage.status).toBe(422)
    expect(await (await fetch(`${api.url}/metrics`)).text()).toMatch(/grapevine_envelopes_rejected_total\{reason="malformed",via="api"\} 1/)

    const history = await (await fetch(`${api.url}/history?limit=10`, { headers })).json() as Array<{ event: string, name?: string }>
    expect(history.map((h) => h.event)).toEqual(expect.arrayContaining(['started', 'accepted', 'applied']))
    expect((await fetch(`${api.url}/nope`, { headers })).status).toBe(404)
  })
})

describe('private mesh', () => {
  it('connects only peers holding the same swarm key', async () => {
    const key = generateSwarmKey()
    mesh = await startMesh(2, { swarmKey: key })
    const m = mesh
    await waitFor(() => m.agents[1]!.libp2p.getPeers().length === 1, 'the two keyed agents to connect')
    const outsider = await m.add({ swarmKey: undefined })
    await expect(outsider.connect(m.agents[0]!.multiaddrs[0]!)).rejects.toThrow()
    const wrongKey = await m.add({ swarmKey: generateSwarmKey() })
    await expect(wrongKey.connect(m.agents[0]!.multiaddrs[0]!)).rejects.toThrow()
    expect(m.agents[0]!.libp2p.getPeers().map(String)).toEqual([m.agents[1]!.peerId.toString()])
  })
})

describe('POST /rekey', () => {
  it('needs the token on TCP, as /publish does; replaces the key, which status, /fleet, a peer\'s fleet view and the mesh fleet query carry at once', async () => {
    mesh = await startMesh(2)
    const m = mesh
    const [a, b] = [m.agents[0]!, m.agents[1]!]
    await waitFor(() => b.fleet.list().find((n) => n.id === a.facts.id)?.recipient === a.recipient, 'b to know a\'s key')
    api = await startApi(a, { stateDir: join(m.dir, 'node-0', 'state'), tcp: { host: '127.0.0.1', port: 0 } })
    const first = a.recipient
    const refused = await fetch(`${api.url}/rekey`, { method: 'POST' })
    expect(refused.status).toBe(401)
    expect((await fetch(`${api.url}/rekey`, { headers: { authorization: `Bearer ${api.token ?? ''}` } })).status).toBe(405)
    expect(a.recipient).toBe(first)

    const res = await fetch(`${api.url}/rekey`, { method: 'POST', headers: { authorization: `Bearer ${api.token ?? ''}` } })
    expect(res.status).toBe(200)
    const body = await res.json() as { previous: string, recipient: string }
    expect(body).toEqual({ previous: first, recipient: a.recipient })
    expect(body.recipient).not.toBe(first)
    const headers = { authorization: `Bearer ${api.token ?? ''}` }
    expect((await (await fetch(`${api.url}/status`, { headers })).json() as { node: { recipient: string } }).node.recipient).toBe(body.recipient)
    const fleet = await (await fetch(`${api.url}/fleet`, { headers })).json() as Array<{ id: string, recipient?: string }>
    expect(fleet.find((n) => n.id === a.facts.id)?.recipient).toBe(body.recipient)
    // The beacon sent at once reaches the peer; its fleet query answer carries the key too.
    await waitFor(() => b.fleet.list().find((n) => n.id === a.facts.id)?.recipient === body.recipient, 'b to learn a\'s new key')
    // b's own entry comes from its own first beacon, sent a few seconds after it joined: waited for, not assumed.
    await waitFor(() => b.fleet.list().find((n) => n.id === b.facts.id)?.recipient === b.recipient, 'b\'s own beacon in its view')
    const answered = await queryFleet(a.libp2p, b.peerId)
    expect(answered.find((n) => n.id === a.facts.id)?.recipient).toBe(body.recipient)
    expect(answered.find((n) => n.id === b.facts.id)?.recipient).toBe(b.recipient)
  })
})
