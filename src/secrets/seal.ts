import { Decrypter, Encrypter, type Identity } from 'age-encryption'
import type { SealedSecrets } from '../policy/schema.js'
import { AGE_RECIPIENT, MAX_SECRET_BYTES, MAX_SECRET_RECIPIENTS, MAX_SECRETS, SEALED_FORMAT } from './constants.js'
import { NotARecipientError, SealedSecretsError, SecretsFileError } from './errors.js'
import type { EncryptionKey } from './keys.js'

/** A node a policy's secrets are sealed to: its peer id and the encryption key its signed reports announce. */
export interface SecretRecipient {
  node: string
  key: string
}

/**
 * Seals secret values to recipients, as one age file (age-encryption.org/v1): a random file key
 * encrypts the values, and one X25519 stanza per recipient wraps the file key, in the order of
 * `recipients`. age, not hand-rolled crypto: docs/secrets.md says why age and not HPKE.
 */
export async function sealSecrets (values: Readonly<Record<string, string>>, recipients: readonly SecretRecipient[]): Promise<SealedSecrets> {
  const names = Object.keys(values).sort()
  if (names.length === 0) throw new SecretsFileError('no secrets to seal')
  if (names.length > MAX_SECRETS) throw new SecretsFileError(`${names.length} secrets; a policy may carry at most ${MAX_SECRETS}`)
  for (const n of names) {
    if (Buffer.byteLength(values[n] as string) > MAX_SECRET_BYTES) throw new SecretsFileError(`secret "${n}" is over ${MAX_SECRET_BYTES} bytes; secrets are passwords and keys, not files`)
  }
  if (recipients.length === 0) throw new NotARecipientError('no recipients: the secrets would be sealed to nobody')
  if (recipients.length > MAX_SECRET_RECIPIENTS) throw new NotARecipientError(`${recipients.length} recipients; one policy may be sealed to at most ${MAX_SECRET_RECIPIENTS} (split the fleet into policies per group, docs/secrets.md)`)
  const seen = new Set<string>()
  const encrypter = new Encrypter()
  for (const r of recipients) {
    if (seen.has(r.node)) throw new NotARecipientError(`${r.node} is listed twice`)
    seen.add(r.node)
    if (!AGE_RECIPIENT.test(r.key)) throw new NotARecipientError(`${r.node}: "${r.key}" is not an age X25519 recipient (age1...)`)
    encrypter.addRecipient(r.key)
  }
  const payload = JSON.stringify(Object.fromEntries(names.map((n) => [n, values[n]])))
  const data = await encrypter.encrypt(payload)
  return { format: SEALED_FORMAT, names, recipients: recipients.map(({ node, key }) => ({ node, key })), data: Buffer.from(data).toString('base64') }
}

/**
 * Opens a policy's sealed secrets on one node. Throws NotARecipientError when the node is not
 * listed (or listed with a key it no longer holds: rekeyed), and SealedSecretsError when it is
 * listed but the file does not open for it (altered, or listed without a stanza of its own).
 * Only this node's stanza is tried: age would try all of them, one X25519 each (0.7 ms),
 * 7 s per apply for a policy sealed to 10,000 nodes.
 */
export async function openSealed (sealed: SealedSecrets, node: string, key: EncryptionKey): Promise<Record<string, string>> {
  const index = sealed.recipients.findIndex((r) => r.node === node)
  if (index < 0) throw new NotARecipientError(`not a recipient: sealed to ${sealed.recipients.length} node${sealed.recipients.length === 1 ? '' : 's'}, not to this one (grapevine reseal seals the next version for today's fleet)`)
  const listed = sealed.recipients[index] as SecretRecipient
  if (listed.key !== key.recipient) throw new NotARecipientError(`not a recipient: sealed to this node's earlier key ${listed.key.slice(0, 12)}…, and its key is now ${key.recipient.slice(0, 12)}… (rekeyed; grapevine reseal seals to the new key)`)
  const decrypter = new Decrypter()
  decrypter.addIdentity(stanzaIdentity(key.identity, index))
  let text: string
  try {
    text = await decrypter.decrypt(Buffer.from(sealed.data, 'base64'), 'text')
  } catch (err) {
    throw new SealedSecretsError(`the sealed secrets do not open with this node's key (${(err as Error).message}): altered after sealing, or this node was listed without being sealed to`)
  }
  let values: unknown
  try {
    values = JSON.parse(text)
  } catch {
    throw new SealedSecretsError('the sealed secrets opened, but hold no JSON object')
  }
  if (values === null || typeof values !== 'object' || Array.isArray(values)) throw new SealedSecretsError('the sealed secrets opened, but hold no JSON object')
  const out = values as Record<string, unknown>
  const names = Object.keys(out).sort()
  if (names.join('\n') !== sealed.names.join('\n') || names.some((n) => typeof out[n] !== 'string')) {
    throw new SealedSecretsError(`the sealed secrets opened, but hold other names than the policy lists (${sealed.names.join(', ')})`)
  }
  return out as Record<string, string>
}

/**
 * The age identity, made to look only at stanza `index` (the recipient's place in the list),
 * whose X25519 unwrap is age's own. The header MAC is still checked over every stanza. Without
 * the library's identity at hand (a release that renames its field), all stanzas are tried:
 * slower, never wrong.
 */
function stanzaIdentity (identity: string, index: number): string | Identity {
  const probe = new Decrypter()
  probe.addIdentity(identity)
  const inner = (probe as unknown as { identities?: Identity[] }).identities?.[0]
  if (inner === undefined || typeof inner.unwrapFileKey !== 'function') return identity
  return { unwrapFileKey: async (stanzas) => { const s = stanzas[index]; return s === undefined ? null : await inner.unwrapFileKey([s]) } }
}
