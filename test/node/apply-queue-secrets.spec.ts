import { existsSync, mkdirSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { VerifiedEnvelope } from '../../src/envelope/index.js'
import type { ApplyReport } from '../../src/apply/index.js'
import type { NodeFacts, Policy, SealedSecrets } from '../../src/policy/index.js'
import { ApplyQueue } from '../../src/node/apply-queue.js'
import { Journal } from '../../src/node/journal.js'
import { generateEncryptionKey, sealSecrets, type EncryptionKey } from '../../src/secrets/index.js'
import { configPolicy, makeKeys } from '../helpers/envelope.js'
import { useTempDir } from '../helpers/tmp.js'
import { MAX_RANK, nextRecord } from '../../src/rollout/index.js'
import { rolloutRecordOf } from '../helpers/rollout.js'
import { applyQueueRig, fakeMetrics, FakeTime, MemoryStore, RecordingLogger, trustedBook, verified } from './fakes.js'

const keys = makeKeys()
const facts: NodeFacts = { id: 'node-db1', name: 'db1', tags: { role: 'db' } }
const PASSWORD = 'correct-horse-battery-staple'
const mine = await generateEncryptionKey()
const other = await generateEncryptionKey()

/** A db policy whose file and failing command use the secret: the value may reach the managed file and nothing else. */
function dbPolicy (sealed: SealedSecrets, extra: { failing?: boolean } = {}): Policy {
  const resources: unknown[] = [{ id: 'conf', type: 'file', path: '/db.conf', content: 'password={{ secrets.db_password }}\n' }]
  // A command that prints the secret and fails: its output reaches the report, which must not carry the value.
  if (extra.failing === true) resources.push({ id: 'leaky', type: 'exec', command: ['sh', '-c', 'echo "pw is $PW" >&2; exit 3'], env: { PW: '{{ secrets.db_password }}' } })
  return configPolicy('db/conf', resources, { target: { tags: { role: 'db' } }, sealed })
}

async function sealedTo (...recipients: Array<{ node: string, key: EncryptionKey }>): Promise<SealedSecrets> {
  return await sealSecrets({ db_password: PASSWORD }, recipients.map((r) => ({ node: r.node, key: r.key.recipient })))
}

function useQueue () {
  const dir = useTempDir('grapevine-queue-secrets-')
  return (init: { key?: EncryptionKey, facts?: NodeFacts, store?: MemoryStore } = {}) => {
    const time = new FakeTime()
    const { book } = trustedBook({ keys, now: time.now })
    const store = init.store ?? new MemoryStore(join(dir(), 'state'))
    mkdirSync(store.dir, { recursive: true })
    const log = new RecordingLogger()
    const journal = new Journal({ store, log, now: time.now })
    const { metrics } = fakeMetrics('applies', 'applyDuration')
    const root = join(dir(), 'root')
    mkdirSync(root, { recursive: true })
    const seen = {
      applied: [] as Array<{ env: VerifiedEnvelope, report: ApplyReport, outcome: string }>,
      sealed: [] as Array<{ env: VerifiedEnvelope, why: string }>
    }
    let key = init.key
    const queue = new ApplyQueue({
      book, journal, store, metrics, log, now: time.now, facts: init.facts ?? facts, root,
      signal: new AbortController().signal,
      saving: () => undefined,
      encryptionKey: () => key,
      events: {
        applied: (env, report, outcome) => { seen.applied.push({ env, report, outcome }) },
        sealed: (env, why) => { seen.sealed.push({ env, why }) },
        notTargeted: () => {},
        retired: () => {},
        conflict: () => {}
      }
    })
    const hold = (p: Policy, version = 1): VerifiedEnvelope => {
      const env = verified(p, { key: keys.root, version })
      book.offer(env)
      return env
    }
    const run = async (name = 'db/conf'): Promise<void> => {
      queue.schedule(name)
      await queue.idle()
      await journal.idle()
    }
    /** Everything this apply left outside the managed file: log lines, history, records, reports. */
    const outside = (): string => JSON.stringify({ log: log.lines, history: store.history, applied: queue.applied, saves: store.appliedSaves, reports: seen })
    return { queue, book, store, log, seen, hold, run, outside, root, at: (p: string) => join(root, p), rekey: (k: EncryptionKey) => { key = k } }
  }
}

describe('ApplyQueue: sealed secrets', () => {
  const setup = useQueue()

  it('sealed to this node: opens them for the apply, the value lands in the managed file and nowhere else', async () => {
    const { seen, hold, run, outside, at, queue } = setup({ key: mine })
    const env = hold(dbPolicy(await sealedTo({ node: 'node-other', key: other }, { node: facts.id, key: mine }), { failing: true }))
    await run()
    expect(await readFile(at('/db.conf'), 'utf8')).toBe(`password=${PASSWORD}\n`)
    expect(seen.sealed).toEqual([])
    expect(seen.applied).toHaveLength(1)
    // The failing command printed the secret: the report says so with the value redacted.
    const leaky = seen.applied[0]?.report.resources.find((r) => r.id === 'leaky')
    expect(leaky?.status).toBe('failed')
    expect(JSON.stringify(leaky)).toContain('(secret)')
    expect(outside()).not.toContain(PASSWORD)
    expect(queue.outcomeOf(env)).toBe('failed')
  })

  it('not a recipient: applies nothing, says `sealed` with the reason, and history records it once per version', async () => {
    const { seen, hold, run, store, at, queue } = setup({ key: mine })
    const v1 = hold(dbPolicy(await sealedTo({ node: 'node-other', key: other })))
    await run()
    // Drift repairs open them again each time, and each time they are not this node's.
    queue.scheduleAll()
    await run()
    expect(existsSync(at('/db.conf'))).toBe(false)
    expect(seen.applied).toEqual([])
    expect(seen.sealed.map((s) => s.env.version)).toEqual([1, 1, 1])
    expect(seen.sealed[0]?.why).toMatch(/^not a recipient: sealed to 1 node, not to this one/)
    expect(queue.outcomeOf(v1)).toBe('sealed')
    expect(queue.sealedWhy(v1)).toBe(seen.sealed[0]?.why)
    expect(queue.applied['db/conf']).toBeUndefined()
    expect(store.history.filter((h) => h.event === 'sealed')).toEqual([expect.objectContaining({ name: 'db/conf', version: 1, outcome: 'sealed', error: seen.sealed[0]?.why })])
    // A next version sealed to it applies, and the node is no longer `sealed`.
    const v2 = hold(dbPolicy(await sealedTo({ node: facts.id, key: mine })), 2)
    await run()
    expect(await readFile(at('/db.conf'), 'utf8')).toBe(`password=${PASSWORD}\n`)
    expect(seen.applied.map((a) => `${a.env.version} ${a.outcome}`)).toEqual(['2 applied'])
    expect(queue.outcomeOf(v2)).toBe('applied')
    expect(queue.sealedWhy(v2)).toBeUndefined()
  })

  it('what was found sealed is kept (sealed.json): after a restart it shows at once, and history does not say it again', async () => {
    const first = setup({ key: mine })
    const policy = dbPolicy(await sealedTo({ node: 'node-other', key: other }))
    const v1 = first.hold(policy)
    await first.run()
    const saved = first.store.sealedSaves.at(-1) as Record<string, { version: number, hash: string, why: string }>
    expect(saved).toEqual({ 'db/conf': { version: 1, hash: v1.hash, why: first.seen.sealed[0]?.why } })
    // The next run, on the same state.
    const again = setup({ key: mine, store: first.store })
    again.queue.restoreSealed(saved)
    const held = again.hold(policy)
    expect(again.queue.outcomeOf(held)).toBe('sealed')
    await again.run()
    expect(again.seen.sealed).toHaveLength(1)
    expect(first.store.history.filter((h) => h.event === 'sealed')).toHaveLength(1)

    // A node no longer targeted (its tags changed) forgets it: it says not-targeted, not sealed.
    const retagged = setup({ key: mine, store: first.store, facts: { ...facts, tags: { role: 'web' } } })
    retagged.queue.restoreSealed(saved)
    const seen = retagged.hold(policy)
    expect(retagged.queue.outcomeOf(seen)).toBe('not-targeted')
    expect(retagged.queue.sealedWhy(seen)).toBeUndefined()
    await retagged.run()
    expect(first.store.sealedSaves.at(-1)).toEqual({})
  })

  it('a node with no encryption key is not a recipient', async () => {
    const { seen, hold, run } = setup()
    hold(dbPolicy(await sealedTo({ node: facts.id, key: mine })))
    await run()
    expect(seen.sealed.map((s) => s.why)).toEqual(['not a recipient: this node has no encryption key'])
    expect(seen.applied).toEqual([])
  })

  it('after a rekey, the version sealed to the old key is `sealed` at its next apply; a version sealed to the new key applies', async () => {
    const { seen, hold, run, queue, rekey, at } = setup({ key: mine })
    const v1 = hold(dbPolicy(await sealedTo({ node: facts.id, key: mine })))
    await run()
    expect(queue.outcomeOf(v1)).toBe('applied')
    const fresh = await generateEncryptionKey()
    rekey(fresh)
    queue.scheduleSealed()
    await run()
    expect(queue.outcomeOf(v1)).toBe('sealed')
    expect(seen.sealed[0]?.why).toMatch(/^not a recipient: sealed to this node's earlier key/)
    // The file it wrote stays as it is: the node enforces nothing new for the policy.
    expect(await readFile(at('/db.conf'), 'utf8')).toBe(`password=${PASSWORD}\n`)
    hold(dbPolicy(await sealSecrets({ db_password: 'rotated-secret-value' }, [{ node: facts.id, key: fresh.recipient }])), 2)
    await run()
    expect(await readFile(at('/db.conf'), 'utf8')).toBe('password=rotated-secret-value\n')
    expect(seen.applied.map((a) => `${a.env.version} ${a.outcome}`)).toEqual(['1 applied', '2 applied'])
  })

  it.each<[string, () => Promise<SealedSecrets>]>([
    // A policy re-signed with altered ciphertext: the signature holds, the age MACs do not.
    ['tampered ciphertext', async () => {
      const s = await sealedTo({ node: facts.id, key: mine })
      const bytes = Buffer.from(s.data, 'base64')
      bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 0x01
      return { ...s, data: bytes.toString('base64') }
    }],
    // An admin added this node to the list without sealing again: it has no stanza of its own.
    ['listed without being sealed to', async () => {
      const s = await sealedTo({ node: 'node-other', key: other })
      return { ...s, recipients: [...s.recipients, { node: facts.id, key: mine.recipient }] }
    }]
  ])('%s: a failed apply naming SealedSecretsError on (secrets), nothing written', async (_, make) => {
    const { seen, hold, run, at, queue, outside } = setup({ key: mine })
    const env = hold(dbPolicy(await make()))
    await run()
    expect(existsSync(at('/db.conf'))).toBe(false)
    expect(seen.sealed).toEqual([])
    expect(seen.applied).toHaveLength(1)
    expect(seen.applied[0]?.outcome).toBe('failed')
    expect(seen.applied[0]?.report.resources).toEqual([expect.objectContaining({ id: '(secrets)', status: 'failed', error: expect.objectContaining({ name: 'SealedSecretsError' }) })])
    expect(queue.applied['db/conf']?.errors?.[0]?.resource).toBe('(secrets)')
    expect(queue.outcomeOf(env)).toBe('failed')
    expect(outside()).not.toContain(PASSWORD)
  })
})

describe('ApplyQueue: sealed secrets in a staged rollout', () => {
  const dir = useTempDir('grapevine-queue-secrets-rollout-')

  it('held back on a sealed version: drift repair opens it again, a rekey makes it sealed, and the new version its stage brings is opened too', async () => {
    let key: EncryptionKey = mine
    const r = applyQueueRig(dir(), { keys, facts: { id: facts.id, name: facts.name, tags: {} }, encryptionKey: () => key })
    const take = r.take
    const conf = async (): Promise<string> => await readFile(join(r.root, 'db.conf'), 'utf8')
    const policyWith = async (value: string, to: EncryptionKey): Promise<Policy> => configPolicy('db/conf', [{ id: 'conf', type: 'file', path: '/db.conf', content: 'password={{ secrets.db_password }}\n' }], {
      sealed: await sealSecrets({ db_password: value }, [{ node: facts.id, key: to.recipient }])
    })
    const v1 = await take(await policyWith('first-password', mine))
    expect(await conf()).toBe('password=first-password\n')
    const v2Policy = await policyWith('second-password', mine)
    const rec = rolloutRecordOf({
      policy: 'db/conf',
      target: { version: 2, id: verified(v2Policy, { key: keys.root, version: 2, prev: v1.id, staged: true }).id },
      previous: { version: 1, id: v1.id },
      stages: [{ text: 'canary', nodes: ['node-2'] }, { text: '100%', upTo: MAX_RANK }]
    })
    const record = await take(rec)
    const v2 = await take(v2Policy, { version: 2, prev: v1, staged: true })
    expect(r.queue.outcomeOf(v2)).toBe('held-back')

    // Drift repair of the version it enforces (v1) opens v1's secrets again.
    await writeFile(join(r.root, 'db.conf'), 'drifted\n')
    r.queue.scheduleAll()
    await r.settled()
    expect(await conf()).toBe('password=first-password\n')

    // Rekeyed: v1 no longer opens here; nothing is written, and the node is still held back on v2.
    key = await generateEncryptionKey()
    r.queue.scheduleSealed()
    await r.settled()
    expect(r.events.filter((e) => e.startsWith('sealed'))).toEqual(['sealed db/conf v1'])
    expect(r.queue.outcomeOf(v2)).toBe('held-back')
    expect(await conf()).toBe('password=first-password\n')

    // Its stage comes: v2, sealed to the old key too, is `sealed`, not applied.
    await take(nextRecord(rec, { type: 'advance', at: Date.now() }), { version: 2, prev: record })
    expect(r.queue.outcomeOf(v2)).toBe('sealed')
    expect(r.events.filter((e) => e.startsWith('sealed'))).toEqual(['sealed db/conf v1', 'sealed db/conf v2'])
    expect(await conf()).toBe('password=first-password\n')
    expect(r.store.history.filter((h) => h.event === 'sealed').map((h) => h.version)).toEqual([1, 2])
  })
})
