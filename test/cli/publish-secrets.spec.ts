import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli, type CliResult } from '../helpers/cli.js'
import { startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { writeSigningKey } from '../../src/envelope/index.js'
import { generateEncryptionKey, openSealed, type EncryptionKey } from '../../src/secrets/index.js'
import type { ConfigPolicy } from '../../src/policy/index.js'
import type { Progress } from '../../src/client/index.js'
import { progressLine, publishExit, sealedLines } from '../../src/cli/commands/publish.js'
import { recipientLines } from '../../src/cli/commands/sealing.js'

// publish --secrets and reseal as an admin runs them: the recipient list printed before
// sealing, refusals, pinned lists, and the value never in anything the commands print.

const SECRET = 's3cret-Value-9f2c'
const DB_POLICY = `name: db/postgres
target: { tags: { role: db } }
resources:
  - id: etc
    type: directory
    path: /etc
  - id: pw
    type: file
    path: /etc/pg.pass
    content: "password={{ secrets.db_password }}\\n"
`
const PLAIN_POLICY = `name: site/motd
resources:
  - id: motd
    type: file
    path: /etc/motd
    content: "hello\\n"
`

let mesh: TestMesh | undefined
let scratch: string | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true })
  scratch = undefined
})

/** The value appears in nothing the command printed. */
function neverShows (r: CliResult): void {
  expect(r.stdout).not.toContain(SECRET)
  expect(r.stderr).not.toContain(SECRET)
}

/** Three agents: node-0 and node-1 tagged role=db, node-2 role=web; the admin key is the mesh's root. */
async function setup (): Promise<{ m: TestMesh, key: string, boot: string, dir: string, secrets: string }> {
  const m = await startMesh(0)
  mesh = m
  for (let i = 0; i < 3; i++) await m.add({ bootstrapFrom: i === 0 ? [] : [i - 1], tags: { role: i < 2 ? 'db' : 'web' } })
  const key = join(m.dir, 'root.key')
  await writeSigningKey(key, m.root)
  await waitFor(() => m.agents[0]!.fleet.size === 3, 'presence beacons from all nodes')
  const secrets = join(m.dir, 'secrets.yaml')
  await writeFile(secrets, `db_password: ${SECRET}\nunused: other-value\n`, { mode: 0o600 })
  await writeFile(join(m.dir, 'db.yaml'), DB_POLICY)
  await writeFile(join(m.dir, 'motd.yaml'), PLAIN_POLICY)
  return { m, key, boot: m.agents[0]!.multiaddrs[0]!, dir: m.dir, secrets }
}

const sealedOn = (m: TestMesh, i: number): ConfigPolicy['sealed'] => (m.agents[i]!.envelope('db/postgres')?.policy as ConfigPolicy | undefined)?.sealed

describe('publish --secrets: what is refused before anything is sent', () => {
  it('exits 1 naming the secrets when a policy refers to some and --secrets is missing; 64 for --secrets with nothing to seal or recipient flags alone; 1 for a hand-written sealed:', async () => {
    scratch = await mkdtemp(join(tmpdir(), 'grapevine-secrets-'))
    const dir = scratch
    await writeFile(join(dir, 'db.yaml'), DB_POLICY)
    await writeFile(join(dir, 'motd.yaml'), PLAIN_POLICY)
    await writeFile(join(dir, 's.yaml'), `db_password: ${SECRET}\n`, { mode: 0o600 })
    await writeFile(join(dir, 'k'), 'unused')
    const common = ['--key', join(dir, 'k'), '--state', join(dir, 'no-agent')]

    const missing = await runCli(['publish', join(dir, 'db.yaml'), ...common])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('db/postgres refers to secret db_password; give their values with --secrets FILE')

    const nothing = await runCli(['publish', join(dir, 'motd.yaml'), '--secrets', join(dir, 's.yaml'), ...common])
    expect(nothing.code).toBe(64)
    expect(nothing.stderr).toContain('refers to no secret')
    neverShows(nothing)

    const stray = await runCli(['publish', join(dir, 'motd.yaml'), '--recipient', 'QmX', ...common])
    expect(stray.code).toBe(64)
    expect(stray.stderr).toContain('--recipient only means something with --secrets')

    const badFlag = await runCli(['publish', join(dir, 'db.yaml'), '--secrets', join(dir, 's.yaml'), '--recipient', 'QmX=age1nope', ...common])
    expect(badFlag.code).toBe(64)

    const lacking = await writeFile(join(dir, 'other.yaml'), 'something_else: 1\n', { mode: 0o600 }).then(async () => await runCli(['publish', join(dir, 'db.yaml'), '--secrets', join(dir, 'other.yaml'), ...common]))
    expect(lacking.code).toBe(1)
    expect(lacking.stderr).toContain('has no "db_password", which the policy refers to')

    await writeFile(join(dir, 'hand.yaml'), `${DB_POLICY}sealed: { format: age-x25519, names: [db_password], recipients: [{ node: x, key: ${(await generateEncryptionKey()).recipient} }], data: AAAA }\n`)
    const hand = await runCli(['publish', join(dir, 'hand.yaml'), '--secrets', join(dir, 's.yaml'), ...common])
    expect(hand.code).toBe(1)
    expect(hand.stderr).toContain('sealed: is written by publish --secrets, never by hand')
  })
})

describe('publish --secrets against a mesh', () => {
  it('refuses a never-seen node without its key; with it, prints the recipients (name, peer id, how) before sealing, and the value shows nowhere', async () => {
    const { m, key, boot, dir, secrets } = await setup()
    const web = m.agents[2]!.facts.id
    const webKey = await generateEncryptionKey()
    const stranger = await generateEncryptionKey()
    const strangerId = '12D3KooWStrangerNeverSeenByThisPublisher1111111111'

    const refused = await runCli(['publish', join(dir, 'db.yaml'), '--key', key, '--bootstrap', boot, '--secrets', secrets, '--recipient', `${web}=${webKey.recipient}`, '--recipient', strangerId])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`--recipient ${strangerId}: never seen by this publisher, and no key given`)
    expect(refused.stderr.trim().split('\n')).toHaveLength(1)
    neverShows(refused)
    expect(m.agents.every((a) => a.envelope('db/postgres') === undefined)).toBe(true)

    const r = await runCli(['publish', join(dir, 'db.yaml'), '--key', key, '--bootstrap', boot, '--secrets', secrets, '--recipient', `${web}=${webKey.recipient}`, '--recipient', `${strangerId}=${stranger.recipient}`])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    neverShows(r)
    const lines = r.stdout.split('\n')
    const header = lines.findIndex((l) => /^sealing db_password to \d+ recipients:$/.test(l))
    const published = lines.findIndex((l) => l.startsWith('published db/postgres v1'))
    expect(header).toBeGreaterThanOrEqual(0)
    expect(published).toBeGreaterThan(header)
    expect(r.stdout).toContain(`  node-2  ${web}  named by --recipient with its key`)
    expect(r.stdout).toContain(`  ${strangerId}  ${strangerId}  named by --recipient with its key (never seen)`)
    // Only the referenced value is sealed: the file's other entry is not.
    expect(r.stdout).not.toContain('unused')

    await waitFor(() => m.agents.every((a) => a.envelope('db/postgres')?.version === 1), 'v1 on every node')
    const sealed = sealedOn(m, 1)!
    expect(sealed.names).toEqual(['db_password'])
    expect(sealed.recipients).toContainEqual({ node: web, key: webKey.recipient })
    expect(sealed.recipients).toContainEqual({ node: strangerId, key: stranger.recipient })
    expect(await openSealed(sealed, strangerId, stranger)).toEqual({ db_password: SECRET })
    // Every node relays it; no node's copy of the envelope holds the value.
    for (const a of m.agents) expect(Buffer.from(a.envelope('db/postgres')!.bytes).toString('latin1')).not.toContain(SECRET)
  })

  it('--recipients FILE pins exactly its nodes (stdin secrets, --json); reseal publishes the next version sealed to a new list; rollback says it republishes as sealed then', async () => {
    const { m, key, boot, dir, secrets } = await setup()
    const web = m.agents[2]!.facts.id
    const keys = new Map<string, EncryptionKey>([[web, await generateEncryptionKey()], ['12D3KooWLateJoiner', await generateEncryptionKey()]])
    await writeFile(join(dir, 'pinned.yaml'), `- ${web}=${keys.get(web)!.recipient}\n`)

    const r = await runCli(['publish', join(dir, 'db.yaml'), '--key', key, '--bootstrap', boot, '--secrets', '-', '--recipients', join(dir, 'pinned.yaml'), '--json'], { input: `{"db_password": "${SECRET}"}` })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    neverShows(r)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ name: 'db/postgres', version: 1, secrets: { names: ['db_password'], recipients: [{ node: web, name: 'node-2', key: keys.get(web)!.recipient, how: 'named by --recipients with its key' }] } })
    expect(out.secrets.recipients).toHaveLength(1)
    await waitFor(() => sealedOn(m, 0) !== undefined, 'v1 on node-0')
    const v1 = sealedOn(m, 0)!
    expect(v1.recipients).toEqual([{ node: web, key: keys.get(web)!.recipient }])

    // A node that joined later: reseal seals to the new list, as the next version.
    await writeFile(join(dir, 'pinned.yaml'), `nodes:\n  - { node: ${web}, key: ${keys.get(web)!.recipient} }\n  - { node: 12D3KooWLateJoiner, key: ${keys.get('12D3KooWLateJoiner')!.recipient}, name: late-1 }\n`)
    const rs = await runCli(['reseal', 'db/postgres', '--key', key, '--bootstrap', boot, '--secrets', secrets, '--recipients', join(dir, 'pinned.yaml')])
    expect(rs.stderr).toBe('')
    expect(rs.code).toBe(0)
    neverShows(rs)
    expect(rs.stdout).toContain('sealing db_password to 2 recipients:')
    expect(rs.stdout).toContain('  late-1  12D3KooWLateJoiner  named by --recipients with its key (never seen)')
    expect(rs.stdout).toMatch(/resealed db\/postgres v2 \S+ \(mesh had v1\)/)
    await waitFor(() => m.agents.every((a) => a.envelope('db/postgres')?.version === 2), 'v2 on every node')
    const v2 = sealedOn(m, 1)!
    // Sorted by name: late-1, node-2.
    expect(v2.recipients.map((x) => x.node)).toEqual(['12D3KooWLateJoiner', web])
    expect(v2.data).not.toBe(v1.data)
    expect(await openSealed(v2, '12D3KooWLateJoiner', keys.get('12D3KooWLateJoiner')!)).toEqual({ db_password: SECRET })
    // Apart from what was sealed, v2 is v1's policy.
    const { sealed: _a, ...p2 } = m.agents[1]!.envelope('db/postgres')!.policy as ConfigPolicy
    expect(p2).toMatchObject({ name: 'db/postgres', target: { tags: { role: 'db' } } })

    const rb = await runCli(['rollback', 'db/postgres', '--to', '1', '--key', key, '--bootstrap', boot])
    expect(rb.code).toBe(0)
    expect(rb.stdout).toContain('note: v1 carries secrets (db_password) sealed to its 1 recipient as they were then: republished as they are, not resealed')
    expect(rb.stdout).toContain('grapevine reseal db/postgres')
    await waitFor(() => m.agents.every((a) => a.envelope('db/postgres')?.version === 3), 'v3 on every node')
    // v1's sealed blob, as it was: not resealed.
    expect(sealedOn(m, 2)).toEqual(v1)

    // A name whose head carries no secrets: nothing to reseal.
    expect((await runCli(['publish', join(dir, 'motd.yaml'), '--key', key, '--bootstrap', boot])).code).toBe(0)
    const none = await runCli(['reseal', 'site/motd', '--key', key, '--bootstrap', boot, '--secrets', secrets])
    expect(none.code).toBe(1)
    expect(none.stderr).toContain('site/motd v1 carries no sealed secrets, so there is nothing to reseal')
  })
})

describe('publish --secrets --wait against a mesh whose agents announce their keys', () => {
  it('seals by default to the targeted nodes; a targeted node left out reports sealed (exit 6, listed); reseal reaches it and it applies', async () => {
    const { m, key, boot, dir, secrets } = await setup()
    const [db0, db1] = [m.agents[0]!.facts.id, m.agents[1]!.facts.id]
    await waitFor(() => m.agents[0]!.fleet.list().filter((n) => n.recipient !== undefined).length === 3, 'every node\'s key in node-0\'s fleet view')

    // Pinned to node-0 alone: node-1 is targeted but cannot read it.
    await writeFile(join(dir, 'only-0.yaml'), `- ${db0}\n`)
    const r = await runCli(['publish', join(dir, 'db.yaml'), '--key', key, '--bootstrap', boot, '--secrets', secrets, '--recipients', join(dir, 'only-0.yaml'), '--wait', '--timeout', '30'], { timeoutMs: 60_000 })
    neverShows(r)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(6)
    expect(r.stdout).toContain(`  node-0  ${db0}  named by --recipients`)
    expect(r.stdout).toMatch(/db\/postgres v1: 2\/2 reported — 1 applied, 0 unchanged, 0 failed, 1 sealed, 1 not targeted/)
    expect(r.stdout).toContain(`  SEALED node-1 (role=db) ${db1.slice(-8)}: not a recipient`)
    expect(await readFile(join(dir, 'node-0/root/etc/pg.pass'), 'utf8')).toBe(`password=${SECRET}\n`)
    await expect(readFile(join(dir, 'node-1/root/etc/pg.pass'), 'utf8')).rejects.toThrow(/ENOENT/)

    // The default choice: the admitted targeted nodes that announce a key, printed before sealing.
    const rs = await runCli(['reseal', 'db/postgres', '--key', key, '--bootstrap', boot, '--secrets', secrets, '--wait', '--timeout', '30', '--json'], { timeoutMs: 60_000 })
    neverShows(rs)
    expect(rs.stderr).toBe('')
    expect(rs.code).toBe(0)
    const out = JSON.parse(rs.stdout)
    expect(out.version).toBe(2)
    expect(out.secrets.recipients.map((x: { node: string }) => x.node)).toEqual([db0, db1])
    expect(out.secrets.recipients[1].how).toBe('admitted, targeted; tags role=db self-asserted')
    expect(out.secrets.skipped).toEqual([])
    // node-0 already had the file as v2 writes it: unchanged; node-1 applies it for the first time.
    expect(out.progress.unchanged.map((n: { name: string }) => n.name)).toEqual(['node-0'])
    expect(out.progress.applied.map((n: { name: string }) => n.name)).toEqual(['node-1'])
    expect(out.progress.sealed).toEqual([])
    expect(await readFile(join(dir, 'node-1/root/etc/pg.pass'), 'utf8')).toBe(`password=${SECRET}\n`)
  })
})

describe('publish --secrets --rollout', () => {
  it('seals as a plain publish does, prints the same recipients, and the stages apply it', async () => {
    const { m, key, boot, dir, secrets } = await setup()
    const [db0, db1] = [m.agents[0]!.facts.id, m.agents[1]!.facts.id]
    await waitFor(() => m.agents[0]!.fleet.list().filter((n) => n.recipient !== undefined).length === 3, 'every node\'s key in node-0\'s fleet view')
    const r = await runCli(['publish', join(dir, 'db.yaml'), '--key', key, '--bootstrap', boot, '--secrets', secrets, '--rollout', '1,100%', '--stage-timeout', '30s', '--wait', '--json'], { timeoutMs: 60_000 })
    neverShows(r)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out).toMatchObject({ name: 'db/postgres', version: 1, end: 'done', secrets: { names: ['db_password'] } })
    expect(out.secrets.recipients.map((x: { node: string }) => x.node)).toEqual([db0, db1])
    for (const i of [0, 1]) expect(await readFile(join(dir, `node-${i}/root/etc/pg.pass`), 'utf8')).toBe(`password=${SECRET}\n`)
    expect(sealedOn(m, 2)!.recipients.map((x) => x.node)).toEqual([db0, db1])
  })
})

const node = (i: number, outcome: string): Progress['applied'][number] => ({ id: `12D3KooW-node-${i}`, name: `node-${i}`, tags: { role: 'db' }, outcome })
const empty = (): Progress => ({ applied: [], unchanged: [], failed: [], notTargeted: [], sealed: [], pending: [], stale: [], conflicting: [], superseded: [], known: 0, unadmitted: 0 })

describe('publish --wait with sealed nodes', () => {
  it('counts sealed nodes as reported, shows them in the progress line, and lists them as not recipients', () => {
    const p = { ...empty(), applied: [node(0, 'applied')], sealed: [node(1, 'sealed')], pending: [node(2, 'pending')], known: 3 }
    expect(progressLine('policy', 'db/postgres', 2, p)).toBe('db/postgres v2: 2/3 reported — 1 applied, 0 unchanged, 0 failed, 1 sealed, 0 not targeted, 1 waiting')
    expect(sealedLines(p)).toEqual(['  SEALED node-1 (role=db) W-node-1: not a recipient'])
    expect(progressLine('policy', 'db/postgres', 2, { ...p, sealed: [] })).not.toContain('sealed')
  })

  it('exits 6 when a targeted node reported sealed: after 4 (failures), before 5 (timeout)', () => {
    const none = { interrupted: false, conflictLost: false, failed: 0, sealed: 0, timedOut: false }
    expect(publishExit(none)).toBe(0)
    expect(publishExit({ ...none, sealed: 1 })).toBe(6)
    expect(publishExit({ ...none, sealed: 1, timedOut: true })).toBe(6)
    expect(publishExit({ ...none, sealed: 1, failed: 1 })).toBe(4)
    expect(publishExit({ ...none, sealed: 1, conflictLost: true })).toBe(3)
    expect(publishExit({ ...none, sealed: 1, interrupted: true })).toBe(130)
    expect(publishExit({ ...none, timedOut: true })).toBe(5)
  })

  it('prints the recipient list with who was left out and why', () => {
    const lines = recipientLines(['a', 'b'], {
      recipients: [{ node: 'id-1', key: 'age1x', name: 'db-1', how: 'admitted, targeted; tags role=db self-asserted' }],
      skipped: [{ node: 'id-2', name: 'db-2', why: 'announces no encryption key (an agent older than secrets)' }],
      warnings: []
    })
    expect(lines).toEqual([
      'sealing a, b to 1 recipient:',
      '  db-1  id-1  admitted, targeted; tags role=db self-asserted',
      'not sealed to 1 targeted node (they will report "sealed"):',
      '  db-2  id-2  announces no encryption key (an agent older than secrets)'
    ])
  })
})
