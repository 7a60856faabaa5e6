/** The mesh could not be reached, refused the envelope, or holds a newer version: the message says which. */
export class PublishError extends Error {
  static override name = 'PublishError'
  override name = 'PublishError'
}

/** A tombstone for a name the mesh holds no version of: retiring it would only create it (`retire web/nope`). */
export class UnknownPolicyError extends Error {
  static override name = 'UnknownPolicyError'
  override name = 'UnknownPolicyError'
  constructor (readonly policy: string) {
    super(`the mesh holds no policy named ${policy}, so there is nothing to retire (check the name: \`grapevine status\` lists the policies an agent holds)`)
  }
}

/** The mesh's newest version already has this content; with `skipUnchanged`, nothing is signed or sent. */
export class PolicyUnchangedError extends Error {
  static override name = 'PolicyUnchangedError'
  override name = 'PolicyUnchangedError'
  constructor (readonly policy: string, readonly held: { version: number, hash: string, id: string }) {
    super(`${policy} v${held.version} already has this content (${held.hash.slice(0, 19)}); nothing published`)
  }
}

/** A rollout action on a policy the mesh holds no rollout record for. */
export class RolloutNotFoundError extends Error {
  static override name = 'RolloutNotFoundError'
  override name = 'RolloutNotFoundError'
  constructor (readonly policy: string) {
    super(`the mesh holds no rollout of ${policy} (\`grapevine rollout status\` lists the rollouts it knows)`)
  }
}

/** Another rollout of the policy is in progress, or another admin's record won: the message says which. */
export class RolloutConflictError extends Error {
  static override name = 'RolloutConflictError'
  override name = 'RolloutConflictError'
}
