import { generateKeyPairSync } from 'node:crypto'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  InvalidKeyError, generateSigningKey, isKeyId, keyIdOf, publicKeyFromId, readSigningKey, resolveTrustedKey, signBytes,
  signingKeyFromPem, verifyBytes, writePublicKeyFile, writeSigningKey
} from '../../src/envelope/index.js'
import { useTempDir } from '../helpers/tmp.js'

const message = new TextEncoder().encode('hello grapevine')

describe('key ids', () => {
  it('are ed25519: and the base64url raw public key, enough to verify on their own', () => {
    const key = generateSigningKey()
    expect(key.id).toMatch(/^ed25519:[A-Za-z0-9_-]{43}$/)
    expect(isKeyId(key.id)).toBe(true)
    const raw = publicKeyFromId(key.id).export({ format: 'der', type: 'spki' }).subarray(-32)
    expect(`ed25519:${Buffer.from(raw).toString('base64url')}`).toBe(key.id)
    expect(keyIdOf(publicKeyFromId(key.id))).toBe(key.id)
    expect(verifyBytes(key.id, message, signBytes(key, message))).toBe(true)
  })

  it.each(['', 'ed25519:', 'ed25519:short', `rsa:${'A'.repeat(43)}`, `ed25519:${'A'.repeat(42)}+`, `ed25519:${'A'.repeat(44)}`])(
    'refuses %j as a key id', (id) => {
      expect(isKeyId(id)).toBe(false)
      expect(() => publicKeyFromId(id)).toThrow(InvalidKeyError)
    })

  it('keyIdOf refuses a key that is not Ed25519', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    expect(() => keyIdOf(publicKey)).toThrow(InvalidKeyError)
  })
})

describe('verifyBytes', () => {
  const key = generateSigningKey()
  const other = generateSigningKey()
  const sig = signBytes(key, message)

  it('verifies only the right key, bytes and signature', () => {
    expect(verifyBytes(key.id, message, sig)).toBe(true)
    expect(verifyBytes(other.id, message, sig)).toBe(false)
    expect(verifyBytes(key.id, new TextEncoder().encode('hello grapevinE'), sig)).toBe(false)
    expect(verifyBytes(key.id, message, sig.subarray(1))).toBe(false)
  })

  it('never throws, whatever the key id and signature (property)', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.constant(key.id)), fc.uint8Array({ maxLength: 100 }), (id, signature) => {
      expect(verifyBytes(id, message, signature)).toBe(false)
    }), { numRuns: 300 })
  })
})

describe('key files', () => {
  const dir = useTempDir()

  it('writes a PKCS#8 PEM with mode 0600 that reads back as the same key', async () => {
    const key = generateSigningKey()
    const file = join(dir(), 'admin.key')
    await writeSigningKey(file, key)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const pem = await readFile(file, 'utf8')
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/)
    const back = await readSigningKey(file)
    expect(back.id).toBe(key.id)
    expect(verifyBytes(key.id, message, signBytes(back, message))).toBe(true)
    expect(await readdir(dir())).toEqual(['admin.key'])
  })

  it('refuses to overwrite an existing key unless asked, leaving it intact', async () => {
    const file = join(dir(), 'admin.key')
    const first = generateSigningKey()
    await writeSigningKey(file, first)
    await expect(writeSigningKey(file, generateSigningKey())).rejects.toMatchObject({ code: 'EEXIST' })
    expect((await readSigningKey(file)).id).toBe(first.id)
    expect(await readdir(dir())).toEqual(['admin.key'])

    const second = generateSigningKey()
    await writeSigningKey(file, second, true)
    expect((await readSigningKey(file)).id).toBe(second.id)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
  })

  it.each([
    ['a missing file', async (_f: string) => {}, /cannot read the key file: ENOENT/],
    ['not PEM', async (f: string) => { await writeFile(f, 'not a key') }, /not a PEM private key/],
    ['an RSA key', async (f: string) => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 })
      await writeFile(f, privateKey.export({ format: 'pem', type: 'pkcs8' }))
    }, /expected an Ed25519 key, got rsa/]
  ])('readSigningKey refuses %s with a message naming the file', async (_, setup, expected) => {
    const file = join(dir(), 'k.pem')
    await setup(file)
    const err = await readSigningKey(file).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidKeyError)
    expect((err as Error).message).toContain(file)
    expect((err as Error).message).toMatch(expected)
  })

  it('signingKeyFromPem refuses a public key', () => {
    const pub = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString()
    expect(() => signingKeyFromPem(pub)).toThrow(InvalidKeyError)
  })
})

describe('resolveTrustedKey', () => {
  const dir = useTempDir()
  const key = generateSigningKey()

  it.each([
    ['a key id', async () => key.id],
    ['a .pub file from keygen', async (d: string) => { const f = join(d, 'a.pub'); await writePublicKeyFile(f, key); return f }],
    ['a file with comments around the key id', async (d: string) => { const f = join(d, 'ids'); await writeFile(f, `# root\n  ${key.id}  \n`); return f }],
    ['a PEM public key', async (d: string) => {
      const f = join(d, 'pub.pem')
      await writeFile(f, publicKeyFromId(key.id).export({ format: 'pem', type: 'spki' }))
      return f
    }]
  ])('accepts %s', async (_, make) => {
    expect(await resolveTrustedKey(await make(dir()))).toBe(key.id)
  })

  it('refuses a private key file, and says to give the public key', async () => {
    const f = join(dir(), 'root.key')
    await writeSigningKey(f, key)
    await expect(resolveTrustedKey(f)).rejects.toThrow(/is a private key: give its public key instead \(the \.pub file/)
  })

  it('refuses a value that is neither a key id nor a file with a key', async () => {
    await expect(resolveTrustedKey(join(dir(), 'missing'))).rejects.toThrow(/neither a public key id nor a readable file/)
    const f = join(dir(), 'junk')
    await writeFile(f, 'nothing useful\n')
    await expect(resolveTrustedKey(f)).rejects.toThrow(InvalidKeyError)
  })
})
