import { MAX_VERSION_JUMP } from './constants.js'

/** What the version rule needs to know about an envelope. */
export interface VersionedRef {
  version: number
  /** Content hash (`sha256:…`) of the policy. */
  hash: string
  /** Envelope id: breaks ties between envelopes with the same content. */
  id: string
}

export type Selection =
  | { accept: true, conflict?: Conflict }
  | { accept: false, reason: 'older' | 'duplicate' | 'conflict-lost', conflict?: Conflict }

/** Two different contents signed under one version number: both nodes record it. */
export interface Conflict {
  version: number
  winner: string
  loser: string
}

/**
 * The version rule (DESIGN decision 3), pure. Higher version wins; an older version is never
 * accepted, so a replayed envelope cannot roll a node back. Same version with different content:
 * the higher content hash wins everywhere, and the result carries a conflict to report.
 * Same version and content from another envelope (another signer or time): the higher id wins,
 * so every node converges on the same bytes, and it is not a conflict.
 */
export function selectEnvelope (current: VersionedRef | undefined, incoming: VersionedRef): Selection {
  if (current === undefined) return { accept: true }
  if (incoming.version > current.version) return { accept: true }
  if (incoming.version < current.version) return { accept: false, reason: 'older' }
  if (incoming.id === current.id) return { accept: false, reason: 'duplicate' }
  if (incoming.hash === current.hash) return incoming.id > current.id ? { accept: true } : { accept: false, reason: 'duplicate' }
  const incomingWins = incoming.hash > current.hash
  const conflict: Conflict = {
    version: incoming.version,
    winner: incomingWins ? incoming.hash : current.hash,
    loser: incomingWins ? current.hash : incoming.hash
  }
  return incomingWins ? { accept: true, conflict } : { accept: false, reason: 'conflict-lost', conflict }
}

/** What the chain rule needs to know about an envelope, beyond the version rule. */
export interface ChainRef extends VersionedRef {
  /** The id of the envelope it supersedes. */
  prev?: string
  /** A signed reason to replace whatever is held. */
  force?: string
}

/**
 * How a newer version relates to the one held (docs/versions.md):
 * - `extends`: it names the held envelope as the one it supersedes: a fast-forward;
 * - `forced`: it carries a signed reason to replace whatever is held (`grapevine resolve`);
 * - `root`: a root key signed it, and roots may replace anything;
 * - `unlinked`: none of these: the node may lack the versions between (it asks the sender for
 *   them) or the sender's history is not its own (a fork, held back for an admin);
 * - `jump`: it is more than MAX_VERSION_JUMP past the held version, whoever signed it.
 * Only the first three are taken, so a withheld or forged "higher" version never silently
 * rolls a node back, and no envelope can push a name to the end of the integers.
 */
export type Link = 'extends' | 'forced' | 'root' | 'unlinked' | 'jump'

export function linkOf (current: ChainRef, incoming: ChainRef, signedByRoot: boolean, maxJump = MAX_VERSION_JUMP): Link {
  if (incoming.version - current.version > maxJump) return 'jump'
  if (incoming.prev === current.id) return 'extends'
  if (incoming.force !== undefined) return 'forced'
  if (signedByRoot) return 'root'
  return 'unlinked'
}
