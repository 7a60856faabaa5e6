import { afterEach, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { filePolicy, startMesh, type TestMesh } from '../node/fixtures.js'
import { startApi, type ApiServer } from '../../src/node/api.js'
import { generateSigningKey, signPolicy } from '../../src/envelope/index.js'
import { MAX_RECENT_REFUSALS } from '../../src/node/refusals.js'
import { runCli } from '../helpers/cli.js'

// Issue 15: an agent started with the wrong --trust showed "no policies yet" in `status`, as
// if nothing had been published; it now lists what it refused, with name, signer and reason.

let mesh: TestMesh | undefined
let api: ApiServer | undefined
afterEach(async () => {
  await api?.close()
  await mesh?.stop()
  mesh = undefined
  api = undefined
})

describe('status shows refused envelopes', () => {
  it('an agent that trusts another key lists what it refused (name, signer, reason, count), in --json and for people', async () => {
    mesh = await startMesh(1)
    const a = mesh.agents[0]!
    const stranger = generateSigningKey()
    const bytes = signPolicy(filePolicy('web/site', 'hi\n'), { version: 1, key: stranger })
    await a.ingest(bytes, 'gossip', 'peer-x')
    await a.ingest(bytes, 'sync', 'peer-y')
    await a.ingest(new TextEncoder().encode('not an envelope'), 'gossip', 'peer-z')
    api = await startApi(a, { stateDir: join(mesh.dir, 'node-0', 'state') })

    const json = await runCli(['status', '--agent', api.socket ?? '', '--json'])
    expect(json.code, json.stderr).toBe(0)
    const status = JSON.parse(json.stdout) as { policies: unknown[], refused: Array<Record<string, unknown>> }
    expect(status.policies).toEqual([])
    expect(status.refused).toEqual([
      expect.objectContaining({ name: 'web/site', signer: stranger.id, reason: 'untrusted', count: 2, via: 'sync', from: 'peer-y' }),
      expect.objectContaining({ reason: 'malformed', count: 1 })
    ])

    const text = await runCli(['status', '--agent', api.socket ?? ''])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).not.toContain('no policies yet')
    expect(text.stdout).toContain('no policies held: what was offered was refused (below)')
    expect(text.stdout).toContain(`web/site signed by ${stranger.id}: untrusted, key ${stranger.id} is not a root and not an admin in the trust policy (2×`)
    expect(text.stdout).toContain(`this agent trusts ${mesh.root.id}`)
    // Alone, it says so, and where to look.
    expect(text.stdout).toContain('  no peers: this node hears nothing from the mesh; check --bootstrap')
  })

  it('keeps the last MAX_RECENT_REFUSALS distinct refusals, however many a peer sends', async () => {
    mesh = await startMesh(1)
    const a = mesh.agents[0]!
    const stranger = generateSigningKey()
    for (let i = 0; i < MAX_RECENT_REFUSALS + 5; i++) await a.ingest(signPolicy(filePolicy(`web/s${i}`, 'hi\n'), { version: 1, key: stranger }), 'gossip', 'peer-x')
    const refused = a.status().refused
    expect(refused).toHaveLength(MAX_RECENT_REFUSALS)
    expect(refused[0]?.name).toBe('web/s5')
    expect(refused.at(-1)?.name).toBe(`web/s${MAX_RECENT_REFUSALS + 4}`)
  })
})
