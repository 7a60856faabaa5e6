// Sealing secrets to recipients (age, X25519): what a recipient opens, what nobody else can, and
// that any change to the sealed bytes is refused with a named error.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  generateEncryptionKey, NotARecipientError, openSealed, sealSecrets, SealedSecretsError, type EncryptionKey
} from '../../src/secrets/index.js'
import { validatePolicyObject, type SealedSecrets } from '../../src/policy/index.js'

const keys: EncryptionKey[] = []
async function key (i: number): Promise<EncryptionKey> {
  while (keys.length <= i) keys.push(await generateEncryptionKey())
  return keys[i] as EncryptionKey
}
const node = (i: number): string => `node-${i}`

const arbName = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/)
const arbValues = fc.dictionary(arbName, fc.string({ unit: 'grapheme', maxLength: 60 }), { minKeys: 1, maxKeys: 6 })

describe('sealSecrets and openSealed', () => {
  it('every recipient opens exactly the values sealed, whatever they are (property)', async () => {
    await fc.assert(fc.asyncProperty(arbValues, fc.integer({ min: 1, max: 5 }), async (values, n) => {
      const recipients = await Promise.all(Array.from({ length: n }, async (_, i) => ({ node: node(i), key: (await key(i)).recipient })))
      const sealed = await sealSecrets(values, recipients)
      expect(sealed.names).toEqual(Object.keys(values).sort())
      expect(sealed.recipients).toEqual(recipients)
      // No value is in the ciphertext every node relays. The names, recipients and format are
      // public by design and may equal a value by chance (a secret named "ueOf" holding "ueOf"),
      // as may a few characters: values of 6 or more, against the data, as text and decoded.
      const bytes = Buffer.from(sealed.data, 'base64')
      for (const v of Object.values(values).filter((x) => x.length >= 6)) {
        expect(sealed.data).not.toContain(v)
        expect(bytes.includes(Buffer.from(v))).toBe(false)
      }
      for (let i = 0; i < n; i++) expect(await openSealed(sealed, node(i), await key(i))).toEqual(values)
    }), { numRuns: 25 })
  })

  it('refuses every mutated ciphertext with SealedSecretsError (property)', async () => {
    const sealed = await sealSecrets({ db_password: 'correct horse battery staple' }, [{ node: node(0), key: (await key(0)).recipient }, { node: node(1), key: (await key(1)).recipient }])
    const bytes = Buffer.from(sealed.data, 'base64')
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
      const mutated = Buffer.from(bytes)
      mutated[at] = (mutated[at] as number) ^ xor
      const tampered: SealedSecrets = { ...sealed, data: mutated.toString('base64') }
      await expect(openSealed(tampered, node(1), await key(1))).rejects.toThrow(SealedSecretsError)
    }), { numRuns: 150 })
  })

  it('refuses a truncated or extended ciphertext', async () => {
    const sealed = await sealSecrets({ a: 'value-one' }, [{ node: node(0), key: (await key(0)).recipient }])
    const bytes = Buffer.from(sealed.data, 'base64')
    for (const data of [bytes.subarray(0, bytes.length - 1), bytes.subarray(0, 40), Buffer.concat([bytes, Buffer.from([0])])]) {
      await expect(openSealed({ ...sealed, data: data.toString('base64') }, node(0), await key(0))).rejects.toThrow(SealedSecretsError)
    }
  })

  it('a node that is not listed is not a recipient, and says so without opening anything', async () => {
    const sealed = await sealSecrets({ a: 'value-one' }, [{ node: node(0), key: (await key(0)).recipient }])
    await expect(openSealed(sealed, node(1), await key(1))).rejects.toThrow(NotARecipientError)
    await expect(openSealed(sealed, node(1), await key(1))).rejects.toThrow(/not a recipient: sealed to 1 node, not to this one/)
  })

  it('a node that rekeyed is told its old key was the one sealed to', async () => {
    const sealed = await sealSecrets({ a: 'value-one' }, [{ node: node(0), key: (await key(0)).recipient }])
    await expect(openSealed(sealed, node(0), await key(2))).rejects.toThrow(/rekeyed/)
  })

  it('a node cannot open what was sealed to another node, even listed in its place', async () => {
    // node-1 takes node-0's place in the list (an admin re-signed a policy with the list edited):
    // stanza 0 wraps the file key for node-0's key only.
    const sealed = await sealSecrets({ a: 'value-one' }, [{ node: node(0), key: (await key(0)).recipient }])
    const swapped: SealedSecrets = { ...sealed, recipients: [{ node: node(1), key: (await key(1)).recipient }] }
    await expect(openSealed(swapped, node(1), await key(1))).rejects.toThrow(SealedSecretsError)
  })

  it('a recipient added to the list without re-sealing cannot open it', async () => {
    const sealed = await sealSecrets({ a: 'value-one' }, [{ node: node(0), key: (await key(0)).recipient }])
    const added: SealedSecrets = { ...sealed, recipients: [...sealed.recipients, { node: node(1), key: (await key(1)).recipient }] }
    await expect(openSealed(added, node(1), await key(1))).rejects.toThrow(SealedSecretsError)
    // The one really sealed to still opens it.
    expect(await openSealed(added, node(0), await key(0))).toEqual({ a: 'value-one' })
  })

  it('refuses sealed data whose names are not the ones listed', async () => {
    const sealed = await sealSecrets({ a: 'value-one', b: 'value-two' }, [{ node: node(0), key: (await key(0)).recipient }])
    await expect(openSealed({ ...sealed, names: ['a'] }, node(0), await key(0))).rejects.toThrow(/other names/)
  })

  it('refuses to seal to nobody, to a node twice, or to a key that is not an age recipient', async () => {
    const k = (await key(0)).recipient
    await expect(sealSecrets({ a: 'value' }, [])).rejects.toThrow(NotARecipientError)
    await expect(sealSecrets({ a: 'value' }, [{ node: 'x', key: k }, { node: 'x', key: k }])).rejects.toThrow(/twice/)
    await expect(sealSecrets({ a: 'value' }, [{ node: 'x', key: 'age1nope' }])).rejects.toThrow(/not an age X25519 recipient/)
  })

  it('a sealed policy validates, and the schema refuses a malformed sealed field', async () => {
    const sealed = await sealSecrets({ db_password: 'value' }, [{ node: node(0), key: (await key(0)).recipient }])
    const policy = {
      name: 'db/app',
      resources: [{ id: 'f', type: 'file', path: '/etc/app.conf', content: 'password={{ secrets.db_password }}\n' }],
      sealed
    }
    expect(validatePolicyObject(policy).kind).toBe('policy')
    expect(() => validatePolicyObject({ ...policy, sealed: { ...sealed, names: ['other'] } })).toThrow(/names a secret that was not sealed with this policy/)
    expect(() => validatePolicyObject({ ...policy, sealed: { ...sealed, recipients: [{ node: 'n', key: 'age1bad' }] } })).toThrow(/age X25519 recipient/)
    expect(() => validatePolicyObject({ ...policy, sealed: { ...sealed, names: ['b', 'a'] } })).toThrow(/sorted/)
  })
})
