import { enforcedVersion, type RolloutRecord } from './record.js'

/** The policy envelope a node holds for a name: its newest version. */
export interface HeldHead {
  version: number
  id: string
  hash: string
  /** Signed with `staged`: applied only as a rollout record includes this node. */
  staged?: boolean
}

/** What this node last applied for the name, if anything. */
export interface LastApplied {
  version: number
  hash: string
}

/**
 * Which version of a policy this node enforces (applies and repairs):
 * - `head`: the newest it holds, as without rollouts;
 * - `older`: an older version, from the archive (`id` or `hash` says which envelope exactly);
 * - `none`: nothing yet (a first version this node's stage has not reached).
 * `why` is for status and logs.
 */
export type Enforcement =
  | { kind: 'head' }
  | { kind: 'older', version: number, id?: string, hash?: string, why: string }
  | { kind: 'none', why: string }

/**
 * Pure: decides what a node enforces from the head it holds, the newest rollout record for the
 * name, its own peer id and what it last applied (docs/rollout.md, "What a node enforces").
 * - A record whose target is the head decides, by `enforcedVersion`.
 * - Otherwise a staged head waits for its record (it may arrive after the envelope, by another
 *   path): the node keeps the version it had, or manages nothing.
 * - Otherwise the head, as without rollouts: a record about another version (an older rollout,
 *   or one whose target this node does not hold yet) says nothing about the head.
 */
export function enforcement (head: HeldHead, record: RolloutRecord | undefined, peerId: string, last?: LastApplied): Enforcement {
  const follows = record !== undefined && record.target.version === head.version && record.target.id === head.id
  if (follows) {
    const v = enforcedVersion(record, peerId)
    if (v === undefined) return { kind: 'none', why: `rollout of v${head.version} at stage ${record.stage + 1}/${record.stages.length} (${record.state}): this node's stage has not come` }
    if (v.id === head.id) return { kind: 'head' }
    const why = record.rolledBack
      ? `rollout of v${head.version} ${record.state} and rolled back: enforcing v${v.version}`
      : `rollout of v${head.version} at stage ${record.stage + 1}/${record.stages.length} (${record.state}): this node's stage has not come; enforcing v${v.version}`
    return { kind: 'older', version: v.version, id: v.id, why }
  }
  if (head.staged !== true) return { kind: 'head' }
  const why = `v${head.version} is staged and no rollout record for it has arrived yet`
  if (last !== undefined && last.version < head.version) return { kind: 'older', version: last.version, hash: last.hash, why: `${why}: enforcing v${last.version}` }
  return { kind: 'none', why }
}
