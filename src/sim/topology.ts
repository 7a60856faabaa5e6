// Pure: who connects to whom at the start, which cluster each node is in, and which links
// between clusters exist. Everything random comes from the injected source.

import { shuffle } from './random.js'
import type { Selector, Topology } from './scenario.js'

export interface TopologyPlan {
  /** Initial connections: [dialer, listener]. */
  edges: Array<[number, number]>
  /** Cluster of each node (clusters topology); all 0 otherwise. */
  cluster: number[]
  /** Cross-cluster pairs allowed through the firewall (clusters topology). */
  bridges: Array<[number, number]>
}

/** Cluster c holds a contiguous block of nodes, so "cluster 1" is easy to picture. */
export function clusterOf (index: number, nodes: number, clusters: number): number {
  return Math.min(clusters - 1, Math.floor(index * clusters / nodes))
}

/**
 * Each node dials `k` distinct random nodes among those before it: a connected random graph.
 * With `hostOf` (several agents per simulated host), only nodes on other hosts: an agent
 * bootstraps through other machines, as it would in a fleet.
 */
function randomEdges (members: number[], k: number, random: () => number, hostOf?: (node: number) => number): Array<[number, number]> {
  const edges: Array<[number, number]> = []
  members.forEach((node, i) => {
    const earlier = members.slice(0, i).filter((j) => hostOf === undefined || hostOf(j) !== hostOf(node))
    for (const peer of shuffle(earlier, random).slice(0, k)) edges.push([node, peer])
  })
  return edges
}

export function planTopology (t: Topology, nodes: number, random: () => number, hostOf?: (node: number) => number): TopologyPlan {
  const all = Array.from({ length: nodes }, (_, i) => i)
  switch (t.kind) {
    case 'random':
      return { edges: randomEdges(all, t.peers, random, hostOf), cluster: all.map(() => 0), bridges: [] }
    case 'ring': {
      const edges: Array<[number, number]> = all.slice(1).map((i) => [i, i - 1])
      if (nodes > 2) edges.push([0, nodes - 1])
      return { edges, cluster: all.map(() => 0), bridges: [] }
    }
    case 'clusters': {
      const cluster = all.map((i) => clusterOf(i, nodes, t.clusters))
      const members = Array.from({ length: t.clusters }, (_, c) => all.filter((i) => cluster[i] === c))
      const edges = members.flatMap((m) => randomEdges(m, t.peers, random))
      const bridges: Array<[number, number]> = []
      // A ring of clusters: c ↔ c+1 (and the last back to the first when there are more than two).
      const pairs = t.clusters === 2 ? [[0, 1]] : members.map((_, c) => [c, (c + 1) % t.clusters])
      for (const [a, b] of pairs) {
        const ma = shuffle(members[a as number] as number[], random)
        const mb = shuffle(members[b as number] as number[], random)
        for (let j = 0; j < t.bridges && ma.length > 0 && mb.length > 0; j++) {
          bridges.push([ma[j % ma.length] as number, mb[j % mb.length] as number])
        }
      }
      edges.push(...bridges)
      return { edges, cluster, bridges }
    }
  }
}

/** Nodes of other clusters that `node` may not reach: all but its bridge partners. */
export function firewalled (node: number, cluster: readonly number[], bridges: ReadonlyArray<[number, number]>): number[] {
  const mine = cluster[node]
  const partners = new Set(bridges.flatMap(([a, b]) => a === node ? [b] : b === node ? [a] : []))
  const out: number[] = []
  cluster.forEach((c, j) => { if (c !== mine && !partners.has(j)) out.push(j) })
  return out
}

export interface SelectContext {
  /** Nodes that exist so far (started at least once), by index. */
  total: number
  isUp: (node: number) => boolean
  tags: (node: number) => Record<string, string>
  cluster: (node: number) => number
  random: () => number
}

function countOf (sel: { count: number, percent: boolean }, of: number): number {
  return sel.percent ? Math.min(of, Math.max(1, Math.round(sel.count * of / 100))) : Math.min(of, sel.count)
}

/** Resolves selectors to node indexes (sorted, no duplicates); `rest` resolves to nothing here. */
export function selectNodes (sels: readonly Selector[], ctx: SelectContext): number[] {
  const all = Array.from({ length: ctx.total }, (_, i) => i)
  const out = new Set<number>()
  for (const s of sels) {
    let picked: number[]
    switch (s.kind) {
      case 'all': picked = all; break
      case 'node': picked = s.index < ctx.total ? [s.index] : []; break
      case 'first': picked = all.slice(0, countOf(s, all.length)); break
      case 'last': picked = all.slice(all.length - countOf(s, all.length)); break
      case 'random': picked = shuffle(all, ctx.random).slice(0, countOf(s, all.length)); break
      case 'tag': picked = all.filter((i) => ctx.tags(i)[s.key] === s.value); break
      case 'cluster': picked = all.filter((i) => ctx.cluster(i) === s.index); break
      case 'killed': picked = all.filter((i) => !ctx.isUp(i)); break
      case 'rest': picked = []; break
    }
    for (const i of picked) out.add(i)
  }
  return [...out].sort((a, b) => a - b)
}

/**
 * Partition groups: each node goes to the first group that selects it; `rest` (or, when no
 * group says `rest`, an extra group) takes the nodes no group selected.
 */
export function partitionGroups (groups: ReadonlyArray<readonly Selector[]>, ctx: SelectContext): number[][] {
  const assigned = new Set<number>()
  const out: number[][] = groups.map((g) => {
    const picked = selectNodes(g, ctx).filter((i) => !assigned.has(i))
    for (const i of picked) assigned.add(i)
    return picked
  })
  const rest = Array.from({ length: ctx.total }, (_, i) => i).filter((i) => !assigned.has(i))
  const restGroup = groups.findIndex((g) => g.some((s) => s.kind === 'rest'))
  if (restGroup >= 0) (out[restGroup] as number[]).push(...rest)
  else if (rest.length > 0) out.push(rest)
  return out.map((g) => g.sort((a, b) => a - b)).filter((g) => g.length > 0)
}
