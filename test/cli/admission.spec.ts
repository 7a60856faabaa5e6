import { afterEach, describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.js'
import { filePolicy, startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { startRogue } from '../node/rogue.js'
import { trustPolicy } from '../helpers/envelope.js'
import { generateSigningKey, signPolicy, validateEnvelope, writeSigningKey, type SigningKey } from '../../src/envelope/index.js'
import { generateIdentity, nodeSigningKey, peerIdOf, privateKeyToProtobuf } from '../../src/net/identity.js'
import type { GrapevineLibp2p, PrivateKey } from '../../src/net/libp2p.js'
import { receiptTopic } from '../../src/node/constants.js'
import { signReport, type NodeReport } from '../../src/receipt/index.js'
import { signAdmission } from '../../src/admission/index.js'
import { StateStore } from '../../src/store/index.js'
import { startApi, type ApiServer } from '../../src/node/api.js'
import type { Policy } from '../../src/policy/index.js'

let mesh: TestMesh | undefined
let rogue: GrapevineLibp2p | undefined
let api: ApiServer | undefined
afterEach(async () => {
  await api?.close()
  await rogue?.stop()
  await mesh?.stop()
  mesh = rogue = api = undefined
})

const hashOf = (policy: Policy): string => validateEnvelope(signPolicy(policy, { version: 1, key: generateSigningKey() }), { authorize: () => {} }).hash

/** A node identity nobody admitted, and the report it signs about itself: what anyone can mint. */
async function fake (i: number, body: (id: string) => Partial<NodeReport>): Promise<Uint8Array> {
  const key = await generateIdentity()
  const signing = nodeSigningKey(key)
  const node = peerIdOf(key).toString()
  const common = { format: 1 as const, node, key: signing.id, name: `fake-${i}`, tags: { role: 'web' }, at: new Date().toISOString() }
  const extra = body(node)
  const report = { ...common, ...(extra.kind === 'receipt' ? {} : { kind: 'presence', policies: [] }), ...extra } as NodeReport
  return signReport(report, signing)
}

const receipt = (policy: string, hash: string, outcome: string, tags = { role: 'web' }) => (): Partial<NodeReport> =>
  ({ kind: 'receipt', policy, version: 1, hash, outcome, changed: 1, failures: [], failedCount: 0, durationMs: 1, tags } as Partial<NodeReport>)

/** An agent whose identity is made first, so an enroller can admit its peer id before it starts. */
async function admittedAgent (m: TestMesh, i: number, enroller: SigningKey, bootstrapFrom: number[]): Promise<PrivateKey> {
  const key = await generateIdentity()
  const stateDir = join(m.dir, `node-${i}`, 'state')
  await (await StateStore.open(stateDir)).writeIdentity(privateKeyToProtobuf(key))
  const admission = signAdmission({ peer: peerIdOf(key).toString(), name: `node-${i}`, tags: { site: 'lab' }, key: enroller, issuedAt: Date.now() })
  await m.add({ stateDir, admission, bootstrapFrom })
  return key
}

describe('fake node identities against fleet and publish --wait', () => {
  it('count nowhere once the trust policy lists an enroller; admit --revoke withdraws a real one', async () => {
    mesh = await startMesh(0)
    const m = mesh
    const enroller = generateSigningKey()
    await admittedAgent(m, 0, enroller, [])
    await admittedAgent(m, 1, enroller, [0])
    const [a0, a1] = m.agents as [NonNullable<typeof m.agents[0]>, NonNullable<typeof m.agents[0]>]
    await a0.publish(m.sign({ ...trustPolicy([]), enrollers: [enroller.id] } as Policy, 1))
    await waitFor(() => m.agents.every((a) => a.status().trust.policyVersion === 1), 'the trust policy everywhere')
    api = await startApi(a0, { stateDir: join(m.dir, 'node-0', 'state') })
    const agentFlag = ['--agent', `unix:${api.socket!}`]
    const rootKey = join(m.dir, 'root.key')
    await writeSigningKey(rootKey, m.root)

    // The attacker's made-up fleet: a failure, a conflicting claim, nodes that never report, and "db" nodes that applied.
    const site = filePolicy('web/site', 'hello\n', '/site')
    const db = filePolicy('db/conf', 'db\n', '/db/conf', { target: { tags: { role: 'db' } } })
    const fakes = await Promise.all([
      fake(0, receipt('web/site', hashOf(site), 'failed')),
      fake(1, receipt('web/site', `sha256:${'f'.repeat(64)}`, 'applied')),
      ...[2, 3, 4, 5, 6].map(async (i) => await fake(i, () => ({}))),
      fake(7, receipt('db/conf', hashOf(db), 'applied', { role: 'db' })),
      fake(8, receipt('db/conf', hashOf(db), 'applied', { role: 'db' }))
    ])
    rogue = await startRogue({ target: a0, topics: [receiptTopic(a0.mesh)] })
    for (const bytes of fakes) await rogue.services.pubsub.publish(receiptTopic(a0.mesh), bytes)
    await waitFor(() => a0.fleet.size === 2 + fakes.length && a0.fleet.list({ admittedOnly: true }).length === 2, 'the fakes heard, and both real nodes admitted')

    // fleet: the two admitted nodes, and a count of the rest; --all lists them, marked.
    const human = await runCli(['fleet', ...agentFlag])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/node-0/)
    expect(human.stdout).not.toMatch(/fake-/)
    expect(human.stdout).toContain('9 unadmitted node(s) not shown (--all lists them)')
    const json = await runCli(['fleet', ...agentFlag, '--json'])
    const parsed = JSON.parse(json.stdout) as { nodes: Array<{ name: string, admitted: boolean, admission?: { tags: Record<string, string> } }>, unadmitted: number }
    expect(parsed.unadmitted).toBe(9)
    expect(parsed.nodes.map((n) => [n.name, n.admitted, n.admission?.tags])).toEqual([['node-0', true, { site: 'lab' }], ['node-1', true, { site: 'lab' }]])
    const all = await runCli(['fleet', ...agentFlag, '--all'])
    expect(all.stdout).toContain('fake-0 (UNADMITTED: no-certificate)')

    // publish --wait: neither the fake failure (4), the fake conflict (3), nor the silent fakes (5) decide the outcome.
    await writeFile(join(m.dir, 'site.json'), JSON.stringify(site))
    const r = await runCli(['publish', join(m.dir, 'site.json'), '--key', rootKey, ...agentFlag, '--wait', '--timeout', '20', '--json'])
    expect(r.stderr).toBe('')
    const out = JSON.parse(r.stdout) as { exitCode: number, progress: { known: number, unadmitted: number, applied: unknown[], failed: unknown[], conflicting: unknown[] } }
    expect(out.progress).toMatchObject({ known: 2, unadmitted: 9, failed: [], conflicting: [] })
    expect(out.progress.applied).toHaveLength(2)
    expect(r.code).toBe(0)

    // Nodes that only fakes "applied" do not make --expect succeed.
    await writeFile(join(m.dir, 'db.json'), JSON.stringify(db))
    const d = await runCli(['publish', join(m.dir, 'db.json'), '--key', rootKey, ...agentFlag, '--wait', '--expect', '2', '--timeout', '2', '--json'])
    expect(JSON.parse(d.stdout)).toMatchObject({ progress: { known: 2, applied: [], notTargeted: [{}, {}] }, timedOut: true })
    expect(d.code).toBe(5)

    // admit --revoke: the trust policy's next version names node-1, and it counts no more.
    const node1 = a1.peerId.toString()
    const rv = await runCli(['admit', '--revoke', node1, '--key', rootKey, ...agentFlag, '--json'])
    expect(rv.stderr).toBe('')
    expect(rv.code).toBe(0)
    expect(JSON.parse(rv.stdout)).toMatchObject({ name: 'grapevine/trust', version: 2 })
    await waitFor(() => m.agents.every((a) => a.status().trust.policyVersion === 2), 'the new trust policy everywhere')
    expect(a0.fleet.list().find((n) => n.id === node1)).toMatchObject({ admitted: false, unadmitted: 'revoked' })
    expect(a0.envelope('grapevine/trust')?.policy).toMatchObject({ enrollers: [enroller.id], revokedNodes: [node1] })
  }, 90_000)
})

describe('grapevine agent --admission', () => {
  it('refuses another node\'s certificate at start (64)', async () => {
    mesh = await startMesh(0)
    const cert = join(mesh.dir, 'other.cert')
    const other = peerIdOf(await generateIdentity()).toString()
    await writeFile(cert, signAdmission({ peer: other, name: 'other', key: mesh.root, issuedAt: Date.now() }))
    const r = await runCli(['agent', '--state', join(mesh.dir, 'state'), '--root', join(mesh.dir, 'root'), '--trust', mesh.root.id, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-api', '--admission', cert, '--log-level', 'silent'])
    expect(r.code).toBe(64)
    expect(r.stderr).toContain(`${cert}: the admission certificate given admits ${other}, but this node's peer id is 12D3KooW`)
  })
})
