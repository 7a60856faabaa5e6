import { afterEach, describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.js'
import { filePolicy, startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { startRogue } from '../node/rogue.js'
import { generateSigningKey, signPolicy, writeSigningKey } from '../../src/envelope/index.js'
import { multiaddr, type GrapevineLibp2p } from '../../src/net/libp2p.js'
import { policyTopic } from '../../src/node/constants.js'
import { trustPolicy } from '../helpers/envelope.js'
import { startApi } from '../../src/node/api.js'

let mesh: TestMesh | undefined
let rogue: GrapevineLibp2p | undefined
afterEach(async () => {
  await rogue?.stop()
  await mesh?.stop()
  mesh = undefined
  rogue = undefined
})

const POLICY = (content: string): string => `name: web/site
resources:
  - { id: site, type: file, path: /site, content: "${content}\\n" }
`

describe('an admin publishes along the chain, and resolves a fork', () => {
  it('publish by an admin key extends the chain; a withheld v1000 is a fork; resolve makes every node take the chosen content', async () => {
    mesh = await startMesh(3)
    const m = mesh
    const admin = generateSigningKey()
    const keyFile = join(m.dir, 'admin.key')
    await writeSigningKey(keyFile, admin)
    await m.agents[0]!.publish(m.sign(trustPolicy([{ key: admin.id, scopes: ['web/'] }]), 1))
    await waitFor(() => m.agents.every((x) => x.status().trust.policyVersion === 1), 'trust everywhere')
    const boot = m.agents.map((a) => ['--bootstrap', a.multiaddrs[0]!]).slice(0, 2).flat()

    // Two publishes with an admin key (not a root): each names the version before it.
    for (const [i, content] of ['B', 'C'].entries()) {
      await writeFile(join(m.dir, 'p.yaml'), POLICY(content))
      const r = await runCli(['publish', join(m.dir, 'p.yaml'), '--key', keyFile, ...boot, '--json'])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(JSON.parse(r.stdout)).toMatchObject({ name: 'web/site', version: i + 1 })
      await waitFor(() => m.agents.every((x) => x.envelope('web/site')?.version === i + 1), `v${i + 1} everywhere`)
    }
    const c = m.agents[0]!.envelope('web/site')!

    // A withheld v1000 is released: a fork on the node it reaches, held back.
    const withheld = signPolicy(filePolicy('web/site', 'A\n', '/site'), { version: 1000, key: admin, prev: 'e'.repeat(64) })
    rogue = await startRogue({ offers: [withheld] })
    await rogue.dial(multiaddr(m.agents[2]!.multiaddrs[0]!))
    await waitFor(() => m.agents[2]!.status().forks.length === 1, 'a fork on node 2')
    // The operator sees it in `grapevine status`, with what to do about it.
    const api = await startApi(m.agents[2]!, { stateDir: join(m.dir, 'node-2', 'state') })
    try {
      const st = await runCli(['status', '--agent', api.socket!])
      expect(st.code).toBe(0)
      expect(st.stdout).toMatch(/1 fork held back .*grapevine resolve NAME --to ID/)
      expect(st.stdout).toContain(`web/site: holds v2 ${c.id}; offered v1000`)
    } finally {
      await api.close()
    }

    // The admin keeps C: every node takes it as v3, forced, and the fork is closed.
    const r = await runCli(['resolve', 'web/site', '--to', c.id, '--key', keyFile, ...boot, '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'web/site', version: 3 })
    await waitFor(() => m.agents.every((x) => x.envelope('web/site')?.version === 3), 'v3 everywhere')
    for (const [i, x] of m.agents.entries()) {
      await x.idle()
      expect(x.envelope('web/site')?.force).toMatch(/^resolve web\/site to [0-9a-f]{64} \(v2\)$/)
      expect(x.status().forks).toEqual([])
      expect(await readFile(join(m.dir, `node-${i}`, 'root', 'site'), 'utf8')).toBe('C\n')
    }
    // Offered again, the ruled-on envelope is not a fork any more.
    await rogue.services.pubsub.publish(policyTopic('default'), withheld).catch(() => {})
    await m.agents[2]!.syncNow()
    expect(m.agents[2]!.status().forks).toEqual([])
    const history = await m.agents[2]!.readHistory()
    expect(history.find((h) => h.event === 'accepted' && h.version === 3)?.detail).toMatchObject({ force: expect.stringMatching(/^resolve web\/site to /) })
  })

  it('refuses an id that is not an envelope id, as a usage error', async () => {
    const r = await runCli(['resolve', 'web/site', '--to', 'nope', '--key', '/nonexistent', '--bootstrap', '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWS81vtmeTvdKunJGGNytADHk6FrR4NThahDt19J2XnH2e'])
    expect(r.code).toBe(64)
    expect(r.stderr).toMatch(/--to expects an envelope id/)
  })
})
