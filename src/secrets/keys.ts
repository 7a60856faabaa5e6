import { readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { generateX25519Identity, identityToRecipient } from 'age-encryption'
import { writeFileAtomic } from '../store/atomic.js'
import { AGE_IDENTITY, ENCRYPTION_KEY_FILE } from './constants.js'
import { EncryptionKeyError } from './errors.js'

/** A node's encryption key pair: the age identity (secret, mode 0600 on disk) and its recipient (public, in every report the node signs). */
export interface EncryptionKey {
  identity: string
  recipient: string
}

export function encryptionKeyPath (stateDir: string): string {
  return join(stateDir, ENCRYPTION_KEY_FILE)
}

/** Reads the node's key; undefined when there is none yet. Throws EncryptionKeyError on a file that is not one. */
export async function readEncryptionKey (stateDir: string): Promise<EncryptionKey | undefined> {
  const path = encryptionKeyPath(stateDir)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new EncryptionKeyError(`cannot read the encryption key ${path}: ${(err as Error).message}`, { cause: err })
  }
  const identity = text.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'))
  if (identity === undefined || !AGE_IDENTITY.test(identity)) throw new EncryptionKeyError(`${path} is not an age X25519 identity (AGE-SECRET-KEY-1...); move it away and restart the agent to make a new one (policies sealed to the old key become unreadable here)`)
  return { identity, recipient: await identityToRecipient(identity) }
}

/** `exclusive`: fail with EEXIST rather than replace a key another process made meanwhile. */
async function writeKey (stateDir: string, key: EncryptionKey, exclusive = false): Promise<void> {
  const text = `# grapevine node encryption key (age X25519); public key: ${key.recipient}\n${key.identity}\n`
  await writeFileAtomic(encryptionKeyPath(stateDir), text, { mode: 0o600, exclusive })
}

export async function generateEncryptionKey (): Promise<EncryptionKey> {
  const identity = await generateX25519Identity()
  return { identity, recipient: await identityToRecipient(identity) }
}

/** The node's key, made (durably, mode 0600) on first use. */
export async function loadOrCreateEncryptionKey (stateDir: string): Promise<EncryptionKey> {
  const held = await readEncryptionKey(stateDir)
  if (held !== undefined) return held
  const key = await generateEncryptionKey()
  try {
    // Two processes starting at once keep one key, not each their own.
    await writeKey(stateDir, key, true)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return await readEncryptionKey(stateDir) as EncryptionKey
    throw err
  }
  return key
}

/**
 * Replaces the node's key with a new one (`grapevine rekey`). The old identity is gone once this
 * returns: every version sealed to it is unreadable here, and publishers seal to the new one as
 * soon as the node's next report carries it.
 */
export async function rotateEncryptionKey (stateDir: string): Promise<{ previous?: string, key: EncryptionKey }> {
  const previous = await readEncryptionKey(stateDir).catch(() => undefined)
  const key = await generateEncryptionKey()
  await writeKey(stateDir, key)
  return { ...(previous !== undefined ? { previous: previous.recipient } : {}), key }
}

/** Removes the key (tests of a node that never had one). */
export async function removeEncryptionKey (stateDir: string): Promise<void> {
  await unlink(encryptionKeyPath(stateDir)).catch(() => {})
}
