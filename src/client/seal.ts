import { chooseRecipients, sealSecrets, type NamedRecipient, type RecipientChoice } from '../secrets/index.js'
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
  const sealed = await sealSecrets(req.values, choice.recipients.map(({ node, key }) => ({ node, key })))
  return { policy: { ...bare, sealed }, choice }
}

/** sealToFleet over the fleet view of the mesh the client reaches. */
export async function sealForMesh (client: MeshClient, policy: ConfigPolicy, req: SealRequest, onChoice?: (choice: RecipientChoice) => void): Promise<SealedPolicy> {
  return await sealToFleet(policy, await client.fleet(), req, onChoice)
}
