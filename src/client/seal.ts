import { chooseRecipients, sealSecrets, RecipientError, type NamedRecipient, type RecipientChoice } from '../secrets/index.js'
import { MAX_ENVELOPE_BYTES } from '../envelope/constants.js'
import type { ConfigPolicy } from '../policy/index.js'
import type { FleetNode } from '../receipt/index.js'
import type { MeshClient } from './publisher.js'

/**
 * The publish side of secrets (docs/secrets.md): whom a policy's values are sealed to, chosen
 * from the publisher's fleet view, and the policy with its `sealed` field written. The values
 * are sealed here and nowhere else; they never leave this process in the clear.
 */

/** What a publisher seals: the values the policy refers to (and only those), and how recipients are chosen. */
export interface SealRequest {
  values: Readonly<Record<string, string>>
  /** `--recipient PEERID[=age1…]`: added to the choice. */
  add?: readonly NamedRecipient[]
  /** `--recipients FILE`: exactly these (with `add`), instead of the targeted nodes. */
  pinned?: readonly NamedRecipient[]
  /** `--certified-tags`: a node counts as targeted only when its admission certificate asserts the target's tags. */
  certifiedTags?: boolean
}

/**
 * Bytes each recipient's age stanza adds to the sealed data, base64'd: "-> X25519 " and two
 * 43-character lines (the ephemeral share, the wrapped file key), ~97 bytes raw. Its entry in
 * `recipients` is counted from the list itself.
 */
const STANZA_BYTES = 132
/** Room for the envelope around the policy: signature, signer, version, chain, hash. */
const ENVELOPE_OVERHEAD_BYTES = 4096

/**
 * About how large the envelope of `policy` sealed to `recipients` will be. Sealing to 10,000
 * takes ~12 s and signs an envelope no node takes (over MAX_ENVELOPE_BYTES), so this is checked first.
 */
export function sealedEnvelopeEstimate (policy: ConfigPolicy, values: Readonly<Record<string, string>>, recipients: ReadonlyArray<{ node: string, key: string }>): number {
  const list = JSON.stringify(recipients.map(({ node, key }) => ({ node, key }))).length
  const payload = Math.ceil((Buffer.byteLength(JSON.stringify(values)) + 200) * 4 / 3)
  return Buffer.byteLength(JSON.stringify(policy)) + list + recipients.length * STANZA_BYTES + payload + ENVELOPE_OVERHEAD_BYTES
}

export interface SealedPolicy {
  /** The policy with `sealed` written: what is signed. */
  policy: ConfigPolicy
  choice: RecipientChoice
}

/** The policy without its sealed secrets: what a reseal starts from, and what a publish seals into. */
export function withoutSealed (policy: ConfigPolicy): ConfigPolicy {
  const { sealed: _sealed, ...rest } = policy
  return rest
}

/**
 * Chooses the recipients from `fleet`, shows the choice through `onChoice` (the publisher prints
 * it before anything is sealed: tags are the nodes' own word), then seals the values to them.
 * Any `sealed` the policy already carries is replaced: a new random file key every time, so two
 * seals of the same values never look alike (and a publish with secrets is always a new version).
 * Throws RecipientError when nobody can be chosen, SecretsFileError for values over the limits.
 */
export async function sealToFleet (policy: ConfigPolicy, fleet: readonly FleetNode[], req: SealRequest, onChoice?: (choice: RecipientChoice) => void): Promise<SealedPolicy> {
  const bare = withoutSealed(policy)
  const choice = chooseRecipients(bare, fleet, {
    ...(req.add !== undefined ? { add: req.add } : {}),
    ...(req.pinned !== undefined ? { pinned: req.pinned } : {}),
    ...(req.certifiedTags === true ? { certifiedTags: true } : {})
  })
  onChoice?.(choice)
  const estimate = sealedEnvelopeEstimate(bare, req.values, choice.recipients)
  if (estimate > MAX_ENVELOPE_BYTES) {
    throw new RecipientError(`sealed to ${choice.recipients.length} recipients, ${policy.name}'s envelope would be about ${(estimate / 1024 / 1024).toFixed(1)} MiB, over the ${MAX_ENVELOPE_BYTES / 1024 / 1024} MiB every node accepts (each recipient adds ~270 bytes): split the policy by group (one per role or site, docs/secrets.md "Limits"), or pin fewer with --recipients FILE`)
  }
  const sealed = await sealSecrets(req.values, choice.recipients.map(({ node, key }) => ({ node, key })))
  return { policy: { ...bare, sealed }, choice }
}

/** sealToFleet over the fleet view of the mesh the client reaches. */
export async function sealForMesh (client: MeshClient, policy: ConfigPolicy, req: SealRequest, onChoice?: (choice: RecipientChoice) => void): Promise<SealedPolicy> {
  return await sealToFleet(policy, await client.fleet(), req, onChoice)
}
