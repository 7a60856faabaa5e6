// What a publisher and a node read: secrets files, recipients, node keys, and what redaction hides.
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  chooseRecipients, EncryptionKeyError, loadOrCreateEncryptionKey, parseRecipientFlag, parseSecrets, pickSecrets, readEncryptionKey,
  readRecipientsFile, readSecretsFile, RecipientError, redactDeep, redactor, rotateEncryptionKey, SecretsFileError, generateEncryptionKey
} from '../../src/secrets/index.js'
import { renderString, validatePolicyObject, secretReferences, TemplateError, type ConfigPolicy } from '../../src/policy/index.js'
import type { FleetNode } from '../../src/receipt/index.js'
import { useTempDir } from '../helpers/tmp.js'

const dir = useTempDir()
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('secrets files', () => {
  it('reads a flat YAML or JSON map, numbers and booleans as text', () => {
    expect(parseSecrets(text('db_password: "s3cret pass"\nport: 5432\nflag: true\n'), 'f')).toEqual({ db_password: 's3cret pass', port: '5432', flag: 'true' })
    expect(parseSecrets(text('{"a-b": "x"}'), 'f')).toEqual({ 'a-b': 'x' })
  })

  it('refuses what is not a map of names to scalars, naming the key and never the value', () => {
    expect(() => parseSecrets(text('- a\n- b\n'), 'f.yaml')).toThrow(SecretsFileError)
    expect(() => parseSecrets(text('nested: { x: hunter2-value }\n'), 'f.yaml')).toThrow(/secret "nested" is a map/)
    expect(() => parseSecrets(text('"bad name": x\n'), 'f.yaml')).toThrow(/is not a secret name/)
    expect(() => parseSecrets(text(''), 'f.yaml')).toThrow(/empty/)
  })

  it('a syntax error gives the line, not the parser\'s quote of it (which would hold the value)', () => {
    let message = ''
    try { parseSecrets(text('ok: fine\ndb_password: "hunter2-unclosed\n'), 'secrets.yaml') } catch (err) { message = (err as Error).message }
    expect(message).toMatch(/^secrets\.yaml:\d+:\d+: not valid YAML or JSON$/)
    expect(message).not.toContain('hunter2')
  })

  it('warns about a file others can read, and picks only the names a policy refers to', async () => {
    const f = join(dir(), 'secrets.yaml')
    await writeFile(f, 'a: one-value\nb: two-value\n', { mode: 0o644 })
    const read = await readSecretsFile(f)
    expect(read.warnings.join()).toMatch(/readable by other users \(mode 0644\)/)
    expect(pickSecrets(read.values, ['b'], f)).toEqual({ b: 'two-value' })
    expect(() => pickSecrets(read.values, ['b', 'c'], f)).toThrow(/has no "c", which the policy refers to/)
    await expect(readSecretsFile(join(dir(), 'missing.yaml'))).rejects.toThrow(/cannot read the secrets file .*ENOENT/)
  })
})

describe('node encryption keys', () => {
  it('are made once, mode 0600, and kept across loads', async () => {
    const a = await loadOrCreateEncryptionKey(dir())
    expect(a.recipient).toMatch(/^age1/)
    expect((await stat(join(dir(), 'encryption.key'))).mode & 0o777).toBe(0o600)
    expect(await loadOrCreateEncryptionKey(dir())).toEqual(a)
  })

  it('rekey replaces the key and says which it was', async () => {
    const a = await loadOrCreateEncryptionKey(dir())
    const { previous, key } = await rotateEncryptionKey(dir())
    expect(previous).toBe(a.recipient)
    expect(key.recipient).not.toBe(a.recipient)
    expect(await readEncryptionKey(dir())).toEqual(key)
    expect(await readFile(join(dir(), 'encryption.key'), 'utf8')).not.toContain(a.identity)
  })

  it('a file that is not an age identity is a named error', async () => {
    await writeFile(join(dir(), 'encryption.key'), 'garbage\n')
    await expect(readEncryptionKey(dir())).rejects.toThrow(EncryptionKeyError)
  })
})

describe('choosing recipients', () => {
  const policy = validatePolicyObject({ name: 'db/app', target: { tags: { role: 'db' } }, resources: [] }) as ConfigPolicy
  let keys: string[] = []
  const fleet = async (): Promise<FleetNode[]> => {
    if (keys.length === 0) keys = await Promise.all([0, 1, 2, 3, 4].map(async () => (await generateEncryptionKey()).recipient))
    const base = { lastSeen: new Date().toISOString(), policies: {} }
    return [
      { ...base, id: 'p-db1', name: 'db-1', tags: { role: 'db' }, admitted: true, admission: { name: 'db-1', tags: { role: 'db' }, enroller: 'e', issuedAt: '' }, recipient: keys[0] },
      { ...base, id: 'p-db2', name: 'db-2', tags: { role: 'db' }, admitted: true, admission: { name: 'db-2', tags: {}, enroller: 'e', issuedAt: '' }, recipient: keys[1] },
      { ...base, id: 'p-web', name: 'web-1', tags: { role: 'web' }, admitted: true, recipient: keys[2] },
      { ...base, id: 'p-rogue', name: 'rogue', tags: { role: 'db' }, admitted: false, unadmitted: 'no certificate', recipient: keys[3] },
      { ...base, id: 'p-old', name: 'db-old', tags: { role: 'db' }, admitted: true }
    ]
  }

  it('are the admitted targeted nodes with a key; the others targeted are listed with why', async () => {
    const choice = chooseRecipients(policy, await fleet())
    expect(choice.recipients.map((r) => [r.name, r.key === keys[r.name === 'db-1' ? 0 : 1]])).toEqual([['db-1', true], ['db-2', true]])
    expect(choice.recipients[0]?.how).toMatch(/certified by its admission/)
    expect(choice.recipients[1]?.how).toMatch(/self-asserted/)
    expect(choice.skipped.map((s) => [s.name, s.why])).toEqual([['rogue', 'not admitted (no certificate)'], ['db-old', 'announces no encryption key (an agent older than secrets)']])
  })

  it('--certified-tags keeps only nodes whose certificate asserts the target\'s tags', async () => {
    const choice = chooseRecipients(policy, await fleet(), { certifiedTags: true })
    expect(choice.recipients.map((r) => r.name)).toEqual(['db-1'])
  })

  it('--recipient adds a node; one never seen needs its key', async () => {
    const f = await fleet()
    expect(() => chooseRecipients(policy, f, { add: [parseRecipientFlag('p-new')] })).toThrow(/never seen by this publisher, and no key given/)
    const choice = chooseRecipients(policy, f, { add: [parseRecipientFlag(`p-new=${keys[4] as string}`)] })
    expect(choice.recipients.map((r) => r.node)).toContain('p-new')
    expect(choice.recipients.find((r) => r.node === 'p-new')?.how).toMatch(/never seen/)
    expect(() => parseRecipientFlag('p=age1short')).toThrow(RecipientError)
  })

  it('--recipients FILE pins exactly its nodes', async () => {
    const f = join(dir(), 'recipients.yaml')
    await writeFile(f, `- p-web\n- { node: p-x, key: ${keys[4] as string}, name: x-1 }\n`)
    const choice = chooseRecipients(policy, await fleet(), { pinned: await readRecipientsFile(f) })
    expect(choice.recipients.map((r) => r.node).sort()).toEqual(['p-web', 'p-x'])
  })

  it('nobody left is a named refusal', async () => {
    const none = validatePolicyObject({ name: 'x', target: { tags: { role: 'cache' } }, resources: [] }) as ConfigPolicy
    const f = await fleet()
    expect(() => chooseRecipients(none, f)).toThrow(/no recipient for x's secrets/)
  })
})

describe('redaction and templates', () => {
  it('replaces every value, the longest first, and leaves short ones', () => {
    const redact = redactor({ a: 'hunter2', b: 'hunter2-long', c: 'x1' }) as (s: string) => string
    expect(redact('pw hunter2-long and hunter2, x1')).toBe('pw (secret) and (secret), x1')
    expect(redactDeep({ list: ['hunter2'], n: 1 }, redact)).toEqual({ list: ['(secret)'], n: 1 })
    expect(redactor({ c: 'x1' })).toBeUndefined()
  })

  it('{{ secrets.NAME }} renders from the secrets given, and without them names the secret only', () => {
    const ctx = { node: { id: 'i', name: 'n', tags: {} }, vars: {}, secrets: { db_password: 'hunter2' } }
    expect(renderString('password={{ secrets.db_password }}', ctx, 'w')).toBe('password=hunter2')
    expect(() => renderString('{{ secrets.db_password }}', { ...ctx, secrets: undefined }, 'w')).toThrow(/names a secret, and none were given/)
    expect(() => renderString('{{ secrets.other }}', ctx, 'w')).toThrow(TemplateError)
    expect(() => renderString('{{ secrets.other }}', ctx, 'w')).not.toThrow(/hunter2/)
  })

  it('secretReferences lists the names used in content, config data and env', () => {
    const policy = validatePolicyObject({
      name: 'x',
      resources: [
        { id: 'f', type: 'file', path: '/a', content: '{{ secrets.b }} {{ vars.v }}' },
        { id: 'c', type: 'config', path: '/c.json', format: 'json', data: { pw: '{{ secrets.a }}' } },
        { id: 'e', type: 'exec', command: ['true'], env: { X: '{{ secrets.c }}' } }
      ],
      vars: { v: 1 }
    }) as ConfigPolicy
    expect(secretReferences(policy)).toEqual(['a', 'b', 'c'])
  })
})
