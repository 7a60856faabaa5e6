import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { writeFileAtomic } from '../store/atomic.js'
import { KEY_ID_PREFIX } from './constants.js'
import { InvalidKeyError } from './errors.js'

/**
 * Admin keys are Ed25519. The private key is a PKCS#8 PEM file (readable by openssl);
 * the public key id is `ed25519:` + base64url of the 32 raw public-key bytes, so the id
 * alone is enough to verify a signature.
 */
export interface SigningKey {
  id: string
  privateKey: KeyObject
}

const KEY_ID = /^ed25519:[A-Za-z0-9_-]{43}$/

export function keyIdOf (publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' })
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new InvalidKeyError('not an Ed25519 key')
  return KEY_ID_PREFIX + jwk.x
}

export function isKeyId (s: string): boolean {
  return KEY_ID.test(s)
}

/**
 * Parsed keys, by id. Every receipt and envelope is verified by every node, and importing
 * a key costs more than the signature check itself, so the few thousand live keys are kept.
 */
const keyCache = new Map<string, KeyObject>()
const MAX_CACHED_KEYS = 20_000

export function publicKeyFromId (id: string): KeyObject {
  const cached = keyCache.get(id)
  if (cached !== undefined) return cached
  if (!KEY_ID.test(id)) throw new InvalidKeyError(`"${id}" is not a public key id (expected "ed25519:" and 43 base64url characters)`)
  let key: KeyObject
  try {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: id.slice(KEY_ID_PREFIX.length) }, format: 'jwk' })
  } catch (err) {
    throw new InvalidKeyError(`"${id}" is not a valid Ed25519 public key`, { cause: err })
  }
  if (keyCache.size >= MAX_CACHED_KEYS) keyCache.delete(keyCache.keys().next().value as string)
  keyCache.set(id, key)
  return key
}

export function generateSigningKey (): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { id: keyIdOf(publicKey), privateKey }
}

export function signBytes (key: SigningKey, bytes: Uint8Array): Uint8Array {
  return sign(null, bytes, key.privateKey)
}

/** Never throws for bad input: a malformed key id or signature simply does not verify. */
export function verifyBytes (keyId: string, bytes: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, bytes, publicKeyFromId(keyId), signature)
  } catch {
    return false
  }
}

export function signingKeyFromPem (pem: string, file = '<key>'): SigningKey {
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(pem)
  } catch (err) {
    throw new InvalidKeyError(`${file}: not a PEM private key`, { cause: err })
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new InvalidKeyError(`${file}: expected an Ed25519 key, got ${privateKey.asymmetricKeyType ?? 'unknown'}`)
  return { id: keyIdOf(createPublicKey(privateKey)), privateKey }
}

export async function readSigningKey (file: string): Promise<SigningKey> {
  let pem: string
  try {
    pem = await readFile(file, 'utf8')
  } catch (err) {
    throw new InvalidKeyError(`${file}: cannot read the key file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
  }
  return signingKeyFromPem(pem, file)
}

/** Writes the key with mode 0600 from the first byte (never a moment world-readable), atomically. */
export async function writeSigningKey (file: string, key: SigningKey, overwrite = false): Promise<void> {
  const pem = key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  // Exclusive unless asked: a concurrent keygen cannot clobber a key.
  await writeFileAtomic(file, pem, { mode: 0o600, exclusive: !overwrite })
}

/**
 * Resolves a `--trust` value: a key id, or a file holding a key id (as written by keygen's
 * `.pub` file) or a PEM public key. A private key file is refused (InvalidKeyError).
 */
export async function resolveTrustedKey (value: string): Promise<string> {
  if (isKeyId(value)) return value
  let text: string
  try {
    text = await readFile(value, 'utf8')
  } catch {
    throw new InvalidKeyError(`"${value}" is neither a public key id nor a readable file`)
  }
  const trimmed = text.trim()
  // A private key would work (its public half), and invite copying a root's private key to
  // every server, where anyone who reads the agent's config could sign policies. Refuse it
  // and say what to give instead.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) {
    throw new InvalidKeyError(`${value} is a private key: give its public key instead (the .pub file \`grapevine keygen\` wrote beside it, or its key id ed25519:…): --trust takes the admin's public key, and giving a node the private key would let anyone who reads the node's config sign policies`)
  }
  const firstLine = trimmed.split('\n').find((l) => isKeyId(l.trim()))
  if (firstLine !== undefined) return firstLine.trim()
  try {
    return keyIdOf(createPublicKey(trimmed))
  } catch {
    throw new InvalidKeyError(`${value}: holds no public key id or PEM Ed25519 key`)
  }
}

export async function writePublicKeyFile (file: string, key: SigningKey): Promise<void> {
  await writeFile(file, `${key.id}\n`, { mode: 0o644 })
}
