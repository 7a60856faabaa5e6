import { afterEach, describe, expect, it } from 'vitest'
import { filePolicy, startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { connectMesh, publishPolicy } from '../../src/client/index.js'

let mesh: TestMesh | undefined
afterEach(async () => { await mesh?.stop(); mesh = undefined })

describe('a publisher given one bootstrap peer', () => {
  it('also asks the peers that one offers for the head, so the head is never one peer\'s word', async () => {
    mesh = await startMesh(3, { topology: 'star' })
    const m = mesh
    await waitFor(() => m.agents[0]!.libp2p.getPeers().length === 2, 'the star to form')
    const asked = new Set<string>()
    for (const a of m.agents.slice(1)) a.on('sync', (r) => { if (!r.initiator) asked.add(`${a.facts.name} by ${r.peer}`) })
    const client = await connectMesh({ bootstrap: [m.agents[0]!.multiaddrs[0]!] })
    try {
      const result = await publishPolicy(client, { policy: filePolicy('web/site', 'one\n', '/site'), key: m.root })
      expect(result.envelope.version).toBe(1)
    } finally {
      await client.close()
    }
    const insiders = new Set(m.agents.map((a) => a.peerId.toString()))
    // node-1 and node-2 were never given to the publisher, yet each answered it.
    const byPublisher = [...asked].filter((x) => !insiders.has(x.split(' by ')[1]!)).map((x) => x.split(' by ')[0])
    expect(new Set(byPublisher)).toEqual(new Set(['node-1', 'node-2']))
  })
})
