// A node's identity: its libp2p Ed25519 key, the peer id derived from it, the same key as the
// signing key of its receipts, and the swarm key of a private mesh.
import '../shim.js'
import { generateKey as generateSwarmKeyBytes } from '@libp2p/pnet'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { createPrivateKey } from 'node:crypto'
import { KEY_ID_PREFIX } from '../envelope/constants.js'
import type { SigningKey } from '../envelope/index.js'

/** The identity key as the state store keeps it (libp2p's protobuf form), and back. */
export { privateKeyFromProtobuf, privateKeyToProtobuf }

export async function generateIdentity (): Promise<PrivateKey> {
  return await generateKeyPair('Ed25519')
}

/** Where the identity key is kept: the state store's two calls (a type: this module loads no store). */
export interface IdentityStore {
  readIdentity: () => Promise<Uint8Array | undefined>
  writeIdentity: (bytes: Uint8Array) => Promise<void>
}

/** The node's libp2p identity: the stored key, or a new one stored before first use (`created`). */
export async function loadIdentity (store: IdentityStore): Promise<{ key: PrivateKey, created: boolean }> {
  const stored = await store.readIdentity()
  if (stored !== undefined) return { key: privateKeyFromProtobuf(stored), created: false }
  const key = await generateIdentity()
  await store.writeIdentity(privateKeyToProtobuf(key))
  return { key, created: true }
}

export function peerIdOf (key: PrivateKey): PeerId {
  return peerIdFromPublicKey(key.publicKey)
}

const keyIdOfRaw = (pub: Uint8Array): string => KEY_ID_PREFIX + Buffer.from(pub).toString('base64url')

/** The node's libp2p Ed25519 identity as a signing key for receipts (same key, node:crypto form). */
export function nodeSigningKey (key: PrivateKey): SigningKey {
  if (key.type !== 'Ed25519') throw new TypeError(`node identity must be Ed25519, got ${key.type}`)
  const seed = key.raw.subarray(0, 32)
  const pub = key.publicKey.raw
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(seed).toString('base64url'), x: Buffer.from(pub).toString('base64url') }, format: 'jwk' })
  return { id: keyIdOfRaw(pub), privateKey }
}

/** The key id (`ed25519:…`) embedded in an Ed25519 peer id, or undefined for other peer ids. */
export function keyIdOfPeer (peer: string): string | undefined {
  try {
    const id = peerIdFromString(peer)
    if (id.type !== 'Ed25519' || id.publicKey === undefined) return undefined
    return keyIdOfRaw(id.publicKey.raw)
  } catch {
    return undefined
  }
}

/** The standard libp2p swarm key file (`/key/swarm/psk/1.0.0/`), as go-ipfs and js-libp2p write it. */
export function generateSwarmKey (): Uint8Array {
  const out = new Uint8Array(95)
  generateSwarmKeyBytes(out)
  return out
}
