import { canonicalBytes, sha256Hex } from '../envelope/canonical.js'
import { MAX_RANK, MAX_STAGE_NODES } from './constants.js'
import { InvalidStagesError, NoTargetedNodesError } from './errors.js'
import { ALL_MILLI, type StageSpec } from './stages.js'

// Domain-separated, so a rank is never the hash of anything else the project signs or hashes.
const RANK_CONTEXT = 'grapevine/rollout-rank/1'

/**
 * A node's place in a rollout's order: SHA-256 of (peer id, policy name, version), as 64 hex
 * digits, so comparing two ranks as strings compares them as big-endian integers. The version
 * is in the hash, so each change picks different canaries; the peer id, not a tag, so a node
 * cannot choose its place.
 */
export function rank (peerId: string, name: string, version: number): string {
  return sha256Hex(canonicalBytes([RANK_CONTEXT, peerId, name, version]))
}

const SPACE = 1n << 256n

function toHex (n: bigint): string {
  return n.toString(16).padStart(64, '0')
}

/**
 * The highest rank inside the first `milli` thousandths of a percent of the hash space: a node
 * decides alone, with no view of the fleet, and about that share of any fleet falls below it.
 */
export function percentCutoff (milli: number): string {
  if (!Number.isInteger(milli) || milli <= 0) throw new RangeError(`expected a positive whole number of thousandths of a percent, got ${milli}`)
  if (milli >= ALL_MILLI) return MAX_RANK
  return toHex((SPACE * BigInt(milli)) / BigInt(ALL_MILLI) - 1n)
}

/** A targeted node as the publisher's fleet view knows it: admitted, and matched by the policy's target. */
export interface TargetedNode {
  id: string
  tags: Readonly<Record<string, string>>
}

/**
 * A stage as the rollout record carries it: resolved, so that a node needs only the record and
 * its own peer id. `upTo` is the highest rank included; `nodes` lists peer ids (tag stages).
 */
export interface ResolvedStage {
  text: string
  upTo?: string
  nodes?: string[]
}

function tagsMatch (want: Record<string, string>, have: Readonly<Record<string, string>>): boolean {
  return Object.entries(want).every(([k, v]) => Object.hasOwn(have, k) && have[k] === v)
}

/**
 * Turns stages as written into stages a node can check alone (docs/rollout.md):
 * - a count `k` becomes the rank of the k-th lowest-ranked targeted node;
 * - a percentage becomes the rank of the ⌈p·n⌉-th node (at least one) when the publisher knows
 *   the targeted nodes, and the hash-space cutoff when it knows none; 100% is every rank;
 * - a tag selector becomes the list of targeted nodes whose tags matched when the stage was
 *   resolved (tags are self-asserted: the list is fixed in the signed record, so a node that
 *   claims the tag later does not join).
 * Cutoffs never go down from one stage to the next, so membership only grows.
 */
export function resolveStages (specs: readonly StageSpec[], name: string, version: number, targeted: readonly TargetedNode[]): ResolvedStage[] {
  const ranks = targeted.map((n) => rank(n.id, name, version)).sort()
  let floor: string | undefined
  const raise = (r: string): string => (floor === undefined || r > floor ? (floor = r) : floor)
  return specs.map((s): ResolvedStage => {
    if (s.kind === 'tags') {
      const nodes = targeted.filter((n) => tagsMatch(s.tags, n.tags)).map((n) => n.id).sort()
      if (nodes.length === 0) throw new InvalidStagesError(`stage "${s.text}": no targeted node has these tags`, s.text)
      if (nodes.length > MAX_STAGE_NODES) throw new InvalidStagesError(`stage "${s.text}": selects ${nodes.length} nodes; a tag stage may list at most ${MAX_STAGE_NODES}`, s.text)
      return { text: s.text, nodes }
    }
    if (s.kind === 'percent' && s.milli >= ALL_MILLI) return { text: s.text, upTo: raise(MAX_RANK) }
    if (ranks.length === 0) {
      if (s.kind === 'count') throw new NoTargetedNodesError(`stage "${s.text}": a node count needs the targeted nodes, and none is known; use a percentage`)
      return { text: s.text, upTo: raise(percentCutoff(s.milli)) }
    }
    const k = s.kind === 'count' ? s.count : Math.max(1, Math.ceil((ranks.length * s.milli) / ALL_MILLI))
    return { text: s.text, upTo: raise(ranks[Math.min(k, ranks.length) - 1] as string) }
  })
}

/** Whether a node is in stage `index` or any before it: membership is cumulative. */
export function inStage (stages: readonly ResolvedStage[], index: number, peerId: string, name: string, version: number): boolean {
  const first = stageOf(stages, peerId, name, version)
  return first !== undefined && first <= index
}

/** The first stage that includes the node; undefined when none does (only possible before a 100% stage is resolved). */
export function stageOf (stages: readonly ResolvedStage[], peerId: string, name: string, version: number): number | undefined {
  const r = rank(peerId, name, version)
  const i = stages.findIndex((s) => (s.upTo !== undefined && r <= s.upTo) || (s.nodes?.includes(peerId) ?? false))
  return i < 0 ? undefined : i
}

export interface StageSize {
  /** Targeted nodes in this stage or an earlier one. */
  count: number
  /** The same as a share of the targeted nodes, 0–100. */
  percent: number
}

/**
 * Cumulative stage sizes over the targeted nodes the caller knows (for `rollout status` and the
 * publisher's plan). `firstStage` is stageOf for these stages, or a cache of it.
 */
export function stageSizes (stages: readonly ResolvedStage[], name: string, version: number, targeted: readonly string[], firstStage = (id: string) => stageOf(stages, id, name, version)): StageSize[] {
  const counts = stages.map(() => 0)
  for (const id of targeted) {
    const first = firstStage(id)
    if (first !== undefined) for (let i = first; i < counts.length; i++) counts[i] = (counts[i] as number) + 1
  }
  return counts.map((count) => ({ count, percent: targeted.length === 0 ? 0 : (100 * count) / targeted.length }))
}
