import { describe, expect, it } from 'vitest'
import { GateReports, sealToFleet, sealedEnvelopeEstimate, stageView, withoutSealed } from '../../src/client/index.js'
import { generateSigningKey, signPolicy } from '../../src/envelope/index.js'
import { MAX_RANK } from '../../src/rollout/index.js'
import { rolloutRecordOf } from '../helpers/rollout.js'
import { generateEncryptionKey, openSealed, NotARecipientError, RecipientError, type EncryptionKey } from '../../src/secrets/index.js'
import { validatePolicyObject, type ConfigPolicy } from '../../src/policy/index.js'
import type { FleetNode } from '../../src/receipt/index.js'

// The publish side of secrets over fleet views built by hand: who the values are sealed to, that
// the choice is shown before sealing, and that only the chosen nodes can open what was sealed.

const SECRET = 'hunter2-correct-horse'
const policy = validatePolicyObject({
  name: 'db/postgres',
  target: { tags: { role: 'db' } },
  resources: [{ id: 'pw', type: 'file', path: '/etc/pg.pass', content: 'password={{ secrets.db_password }}\n' }]
}) as ConfigPolicy

async function fleetOf (specs: Array<{ id: string, role: string, admitted?: boolean, key?: boolean }>): Promise<{ fleet: FleetNode[], keys: Map<string, EncryptionKey> }> {
  const keys = new Map<string, EncryptionKey>()
  const fleet: FleetNode[] = []
  for (const s of specs) {
    const key = await generateEncryptionKey()
    keys.set(s.id, key)
    fleet.push({
      id: s.id, name: `name-${s.id}`, tags: { role: s.role }, lastSeen: new Date(0).toISOString(), policies: {},
      admitted: s.admitted ?? true,
      ...(s.admitted === false ? { unadmitted: 'no-certificate' } : {}),
      ...(s.key === false ? {} : { recipient: key.recipient })
    })
  }
  return { fleet, keys }
}

describe('sealToFleet', () => {
  it('seals to the admitted targeted nodes that announce a key, and only they can open it', async () => {
    const { fleet, keys } = await fleetOf([
      { id: 'db-1', role: 'db' }, { id: 'db-2', role: 'db' }, { id: 'web-1', role: 'web' },
      { id: 'db-rogue', role: 'db', admitted: false }, { id: 'db-old', role: 'db', key: false }
    ])
    const { policy: sealed, choice } = await sealToFleet(policy, fleet, { values: { db_password: SECRET } })
    expect(choice.recipients.map((r) => r.node)).toEqual(['db-1', 'db-2'])
    expect(choice.recipients[0]?.how).toContain('self-asserted')
    expect(choice.skipped.map((s) => s.node).sort()).toEqual(['db-old', 'db-rogue'])
    expect(sealed.sealed?.names).toEqual(['db_password'])
    expect(sealed.sealed?.recipients).toEqual([{ node: 'db-1', key: keys.get('db-1')?.recipient }, { node: 'db-2', key: keys.get('db-2')?.recipient }])
    expect(JSON.stringify(sealed)).not.toContain(SECRET)
    expect(await openSealed(sealed.sealed!, 'db-2', keys.get('db-2')!)).toEqual({ db_password: SECRET })
    await expect(openSealed(sealed.sealed!, 'web-1', keys.get('web-1')!)).rejects.toThrow(NotARecipientError)
    await expect(openSealed(sealed.sealed!, 'db-rogue', keys.get('db-rogue')!)).rejects.toThrow(NotARecipientError)
    // The rest of the policy is what was given: sealing adds `sealed` and nothing else.
    expect(withoutSealed(sealed)).toEqual(policy)
  })

  it('shows the choice before sealing, and seals nothing when the choice is refused', async () => {
    const { fleet } = await fleetOf([{ id: 'db-1', role: 'db' }])
    const seen: string[][] = []
    await sealToFleet(policy, fleet, { values: { db_password: SECRET } }, (c) => seen.push(c.recipients.map((r) => r.node)))
    expect(seen).toEqual([['db-1']])

    const shown: unknown[] = []
    await expect(sealToFleet(policy, fleet, { values: { db_password: SECRET }, add: [{ node: 'never-seen' }] }, (c) => shown.push(c)))
      .rejects.toThrow(/never-seen: never seen by this publisher, and no key given/)
    expect(shown).toEqual([])
  })

  it('seals to a node never seen only when its key is given, and pins exactly the --recipients list', async () => {
    const { fleet, keys } = await fleetOf([{ id: 'db-1', role: 'db' }, { id: 'db-2', role: 'db' }])
    const stranger = await generateEncryptionKey()
    const added = await sealToFleet(policy, fleet, { values: { db_password: SECRET }, add: [{ node: 'stranger', key: stranger.recipient }] })
    expect(added.choice.recipients.map((r) => r.node)).toEqual(['db-1', 'db-2', 'stranger'])
    expect(added.choice.recipients.find((r) => r.node === 'stranger')?.how).toBe('named by --recipient with its key (never seen)')
    expect(await openSealed(added.policy.sealed!, 'stranger', stranger)).toEqual({ db_password: SECRET })

    const pinned = await sealToFleet(policy, fleet, { values: { db_password: SECRET }, pinned: [{ node: 'db-2' }] })
    expect(pinned.policy.sealed?.recipients).toEqual([{ node: 'db-2', key: keys.get('db-2')?.recipient }])
    await expect(openSealed(pinned.policy.sealed!, 'db-1', keys.get('db-1')!)).rejects.toThrow(NotARecipientError)
  })

  it('replaces a sealed field the policy already carries, with new ciphertext every time (a publish with secrets is always a new version)', async () => {
    const { fleet, keys } = await fleetOf([{ id: 'db-1', role: 'db' }, { id: 'db-2', role: 'db' }])
    const first = await sealToFleet(policy, fleet.slice(0, 1), { values: { db_password: SECRET } })
    const again = await sealToFleet(first.policy, fleet, { values: { db_password: SECRET } })
    expect(again.policy.sealed?.recipients.map((r) => r.node)).toEqual(['db-1', 'db-2'])
    expect(again.policy.sealed?.data).not.toBe(first.policy.sealed?.data)
    expect(await openSealed(again.policy.sealed!, 'db-2', keys.get('db-2')!)).toEqual({ db_password: SECRET })
    const same = await sealToFleet(policy, fleet, { values: { db_password: SECRET } })
    expect(same.policy.sealed?.data).not.toBe(again.policy.sealed?.data)
  })

  it('refuses when no targeted node can be a recipient, naming who was left out and why', async () => {
    const { fleet } = await fleetOf([{ id: 'db-old', role: 'db', key: false }, { id: 'web-1', role: 'web' }])
    await expect(sealToFleet(policy, fleet, { values: { db_password: SECRET } })).rejects.toThrow(RecipientError)
    await expect(sealToFleet(policy, fleet, { values: { db_password: SECRET } })).rejects.toThrow(/name-db-old \(announces no encryption key/)
  })

  it('with certifiedTags, leaves out nodes whose admission does not assert the target\'s tags', async () => {
    const { fleet } = await fleetOf([{ id: 'db-1', role: 'db' }, { id: 'db-2', role: 'db' }])
    fleet[0]!.admission = { name: 'name-db-1', tags: { role: 'db' }, enroller: 'ed25519:x', issuedAt: new Date(0).toISOString() }
    const { choice } = await sealToFleet(policy, fleet, { values: { db_password: SECRET }, certifiedTags: true })
    expect(choice.recipients.map((r) => r.node)).toEqual(['db-1'])
    expect(choice.recipients[0]?.how).toContain('certified by its admission')
    expect(choice.skipped).toEqual([{ node: 'db-2', name: 'name-db-2', why: expect.stringContaining('--certified-tags') }])
  })
})

describe('a staged rollout of a policy with secrets', () => {
  it('counts a stage node that reported sealed as failed, naming why, instead of waiting on it until the stage timeout', () => {
    const NOW = Date.parse('2026-12-05T00:10:00.000Z')
    const HASH = `sha256:${'2'.repeat(64)}`
    const web = validatePolicyObject({ kind: 'policy', name: 'web/nginx', resources: [] }) as ConfigPolicy
    const node = (id: string, outcome: string): FleetNode => ({
      id, name: id, tags: {}, lastSeen: new Date(NOW - 1000).toISOString(), admitted: true,
      policies: { 'web/nginx': { version: 2, hash: HASH, outcome, at: new Date(NOW - 500).toISOString() } }
    })
    const fleet = [node('canary-1', 'sealed'), node('canary-2', 'applied')]
    const reports = new GateReports('web/nginx', { version: 2, hash: HASH })
    reports.add(fleet)
    const record = rolloutRecordOf({ stages: [{ text: 'canary', nodes: ['canary-1', 'canary-2'] }, { text: '100%', upTo: MAX_RANK }], at: NOW - 60_000 })
    const v = stageView(record, web, fleet, reports, NOW)
    expect(v.waiting).toEqual([])
    expect(v.applied).toBe(1)
    expect(v.failed).toEqual([{ id: 'canary-1', name: 'canary-1', outcome: 'failed', failures: [{ resource: 'secrets', error: expect.stringContaining('not a recipient') }] }])
    expect(v.gate.verdict).toBe('halt')
  })
})

const signedSize = (p: ConfigPolicy): number => signPolicy(p, { version: 1, key: generateSigningKey() }).byteLength

describe('sealing to more recipients than an envelope holds', () => {
  it('is refused before sealing, saying to split the policy, and the estimate is close to what sealing writes', async () => {
    const key = await generateEncryptionKey()
    const fleetOfSize = (n: number): FleetNode[] => Array.from({ length: n }, (_, i) => ({
      id: `12D3KooW${String(i).padStart(44, '0')}`, name: `db-${i}`, tags: { role: 'db' }, lastSeen: new Date(0).toISOString(), policies: {}, admitted: true, recipient: key.recipient
    }))
    const values = { db_password: SECRET }
    const { policy: sealed } = await sealToFleet(policy, fleetOfSize(200), { values })
    const estimate = sealedEnvelopeEstimate(policy, values, sealed.sealed!.recipients)
    const actual = signedSize(sealed)
    expect(estimate).toBeGreaterThanOrEqual(actual)
    expect(estimate).toBeLessThan(actual * 1.1)

    let shown = 0
    const started = performance.now()
    await expect(sealToFleet(policy, fleetOfSize(9000), { values }, () => { shown++ })).rejects.toThrow(/sealed to 9000 recipients, db\/postgres's envelope would be about 2\.\d MiB, over the 2 MiB .*split the policy by group/)
    expect(shown).toBe(1)
    // Refused before the ~10 s an age file with 9,000 stanzas takes.
    expect(performance.now() - started).toBeLessThan(3000)
  })
})
