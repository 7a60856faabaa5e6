// Pure: the model's connection graph and gossipsub mesh, as fixed-stride neighbour lists in
// typed arrays (one row per node). Built in O(N·k): the live harness's planTopology draws
// from a shuffled list of earlier nodes per node, which is O(N²) and too slow at N = 100,000,
// so the model draws the same shapes (random, ring, clusters) its own way.

import type { Topology } from '../scenario.js'

/** libp2p's connection manager cap in src/net/libp2p.ts (maxConnections 64). */
export const MAX_CONNECTIONS = 64
/** Mesh rows hold up to this many peers; gossipsub prunes above D_hi at the next heartbeat. */
export const MESH_STRIDE = 32

export class NeighbourLists {
  readonly stride: number
  readonly ids: Int32Array
  readonly len: Uint8Array

  constructor (capacity: number, stride: number) {
    this.stride = stride
    this.ids = new Int32Array(capacity * stride)
    this.len = new Uint8Array(capacity)
  }

  has (u: number, v: number): boolean {
    const base = u * this.stride
    const n = this.len[u]!
    for (let i = 0; i < n; i++) if (this.ids[base + i] === v) return true
    return false
  }

  /** Adds v to u's row; false when the row is full or v is already there. */
  add (u: number, v: number): boolean {
    const n = this.len[u]!
    if (n >= this.stride || this.has(u, v)) return false
    this.ids[u * this.stride + n] = v
    this.len[u] = n + 1
    return true
  }

  remove (u: number, v: number): boolean {
    const base = u * this.stride
    const n = this.len[u]!
    for (let i = 0; i < n; i++) {
      if (this.ids[base + i] === v) {
        this.ids[base + i] = this.ids[base + n - 1]!
        this.len[u] = n - 1
        return true
      }
    }
    return false
  }

  get (u: number, i: number): number {
    return this.ids[u * this.stride + i]!
  }

  clear (u: number): void {
    this.len[u] = 0
  }
}

export interface Graph {
  conn: NeighbourLists
  /** Cluster of each node (clusters topology), else 0. */
  cluster: Int32Array
  /** Bridge pairs between clusters, encoded u * capacity + v with u < v. */
  bridges: Set<number>
  clusters: number
}

function connect (g: Graph, u: number, v: number): boolean {
  if (u === v || g.conn.has(u, v)) return false
  if (g.conn.len[u]! >= MAX_CONNECTIONS || g.conn.len[v]! >= MAX_CONNECTIONS) return false
  g.conn.add(u, v)
  g.conn.add(v, u)
  return true
}

/** Whether a firewall (clusters topology) lets u and v connect. */
export function allowed (g: Graph, u: number, v: number, capacity: number): boolean {
  if (g.clusters <= 1 || g.cluster[u] === g.cluster[v]) return true
  return g.bridges.has(Math.min(u, v) * capacity + Math.max(u, v))
}

/** Up to k distinct random members of [lo, hi) other than `self`, by rejection (k is small). */
function pickDistinct (lo: number, hi: number, k: number, self: number, random: () => number): number[] {
  const span = hi - lo
  const avail = span - (self >= lo && self < hi ? 1 : 0)
  const want = Math.min(k, avail)
  const out: number[] = []
  while (out.length < want) {
    const x = lo + Math.floor(random() * span)
    if (x !== self && !out.includes(x)) out.push(x)
  }
  return out
}

/**
 * The initial connections: the scenario's topology (each node dials `peers` random earlier
 * nodes; a ring; or clusters with bridges), then, with `topUp`, each node dials random
 * allowed peers until it has `targetPeers` connections, as the agent's peer maintenance does
 * once peer exchange has told it about the fleet.
 */
export function buildGraph (t: Topology, nodes: number, capacity: number, targetPeers: number, topUp: boolean, random: () => number): Graph {
  const clusters = t.kind === 'clusters' ? t.clusters : 1
  const g: Graph = { conn: new NeighbourLists(capacity, MAX_CONNECTIONS), cluster: new Int32Array(capacity), bridges: new Set(), clusters }
  const blockOf = (c: number): [number, number] => [Math.ceil(c * nodes / clusters), Math.ceil((c + 1) * nodes / clusters)]
  if (t.kind === 'ring') {
    for (let i = 1; i < nodes; i++) connect(g, i, i - 1)
    if (nodes > 2) connect(g, 0, nodes - 1)
  } else if (t.kind === 'random') {
    for (let i = 1; i < nodes; i++) for (const j of pickDistinct(0, i, t.peers, i, random)) connect(g, i, j)
  } else {
    for (let c = 0; c < clusters; c++) {
      const [lo, hi] = blockOf(c)
      for (let i = lo; i < hi; i++) g.cluster[i] = c
      for (let i = lo + 1; i < hi; i++) for (const j of pickDistinct(lo, i, t.peers, i, random)) connect(g, i, j)
    }
    const pairs = clusters === 2 ? [[0, 1]] : Array.from({ length: clusters }, (_, c) => [c, (c + 1) % clusters])
    for (const [a, b] of pairs) {
      const [alo, ahi] = blockOf(a as number)
      const [blo, bhi] = blockOf(b as number)
      if (ahi <= alo || bhi <= blo) continue
      for (let j = 0; j < t.bridges; j++) {
        const u = alo + Math.floor(random() * (ahi - alo))
        const v = blo + Math.floor(random() * (bhi - blo))
        g.bridges.add(Math.min(u, v) * capacity + Math.max(u, v))
        connect(g, u, v)
      }
    }
  }
  if (topUp && t.kind !== 'ring') for (let i = 0; i < nodes; i++) topUpNode(g, i, nodes, capacity, targetPeers, random, () => true)
  return g
}

/** Dials random allowed peers among [0, nodes) until `node` has `target` connections (a bounded number of tries). */
export function topUpNode (g: Graph, node: number, nodes: number, capacity: number, target: number, random: () => number, ok: (peer: number) => boolean): number[] {
  const added: number[] = []
  // Other clusters are firewalled: draw from the whole fleet and keep the allowed ones.
  const tries = 8 * target * Math.min(g.clusters, 64)
  for (let k = 0; g.conn.len[node]! < target && k < tries && nodes > 1; k++) {
    const v = Math.floor(random() * nodes)
    if (ok(v) && allowed(g, node, v, capacity) && connect(g, node, v)) added.push(v)
  }
  return added
}

export function connectNodes (g: Graph, u: number, v: number): boolean {
  return connect(g, u, v)
}

/**
 * Forms the gossipsub mesh as heartbeats do: a node with fewer than D_lo live mesh peers
 * GRAFTs random live connections up to D, the grafted side accepts (mesh links are
 * symmetric), and a node above D_hi PRUNEs random peers down to D. A few rounds settle it.
 */
export function formMesh (g: Graph, mesh: NeighbourLists, nodes: number, p: { D: number, Dlo: number, Dhi: number }, live: (u: number, v: number) => boolean, random: () => number, rounds = 4): void {
  const order = Int32Array.from({ length: nodes }, (_, i) => i)
  for (let r = 0; r < rounds; r++) {
    for (let i = nodes - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      const tmp = order[i]!
      order[i] = order[j]!
      order[j] = tmp
    }
    for (let k = 0; k < nodes; k++) repairMesh(g, mesh, order[k]!, p, live, random)
  }
}

/** One node's heartbeat mesh maintenance. Returns the peers it grafted. */
export function repairMesh (g: Graph, mesh: NeighbourLists, u: number, p: { D: number, Dlo: number, Dhi: number }, live: (u: number, v: number) => boolean, random: () => number): void {
  // Drop peers that are gone (disconnected, down or behind a partition).
  for (let i = mesh.len[u]! - 1; i >= 0; i--) {
    const v = mesh.get(u, i)
    if (!live(u, v)) {
      mesh.remove(u, v)
      mesh.remove(v, u)
    }
  }
  if (mesh.len[u]! < p.Dlo) {
    const cands: number[] = []
    const n = g.conn.len[u]!
    for (let i = 0; i < n; i++) {
      const v = g.conn.get(u, i)
      if (live(u, v) && !mesh.has(u, v) && mesh.len[v]! < MESH_STRIDE) cands.push(v)
    }
    while (mesh.len[u]! < p.D && cands.length > 0) {
      const k = Math.floor(random() * cands.length)
      const v = cands[k]!
      cands[k] = cands[cands.length - 1]!
      cands.pop()
      mesh.add(u, v)
      mesh.add(v, u)
    }
  }
  if (mesh.len[u]! > p.Dhi) {
    while (mesh.len[u]! > p.D) {
      const v = mesh.get(u, Math.floor(random() * mesh.len[u]!))
      mesh.remove(u, v)
      mesh.remove(v, u)
    }
  }
}
