import type { FleetNode } from '../receipt/index.js'
import { NODE_STALE_AFTER_MS } from './watch.js'

export interface PolicySummary {
  name: string
  newest: number
  holders: number
  onNewest: number
  /** Nodes still on an older version. */
  stragglers: string[]
  /** Nodes whose last apply of the newest version failed. */
  failing: string[]
  /** Nodes holding other content under the newest version number. */
  conflicts: number
}

/** Pure: per policy, the newest version seen, who lags, who fails; and which nodes went quiet (not heard from in `staleAfterMs`). */
export function fleetSummary (nodes: readonly FleetNode[], now: number, staleAfterMs = NODE_STALE_AFTER_MS): { policies: PolicySummary[], stale: string[] } {
  const byName = new Map<string, PolicySummary & { hashes: Map<string, number> }>()
  for (const n of nodes) {
    for (const [name, s] of Object.entries(n.policies)) {
      let p = byName.get(name)
      if (p === undefined) { p = { name, newest: 0, holders: 0, onNewest: 0, stragglers: [], failing: [], conflicts: 0, hashes: new Map() }; byName.set(name, p) }
      p.newest = Math.max(p.newest, s.version)
    }
  }
  for (const p of byName.values()) {
    for (const n of nodes) {
      const s = n.policies[p.name]
      if (s === undefined) continue
      p.holders++
      if (s.version < p.newest) { p.stragglers.push(n.name); continue }
      p.onNewest++
      p.hashes.set(s.hash, (p.hashes.get(s.hash) ?? 0) + 1)
      if (s.outcome === 'failed' || s.outcome === 'unhealthy' || s.outcome === 'failures' || s.outcome === 'changes-and-failures') p.failing.push(n.name)
    }
    if (p.hashes.size > 1) p.conflicts = Math.min(...p.hashes.values())
  }
  const stale = nodes.filter((n) => now - Date.parse(n.lastSeen) > staleAfterMs).map((n) => n.name)
  return { policies: [...byName.values()].map(({ hashes: _h, ...p }) => p).sort((a, b) => a.name.localeCompare(b.name)), stale }
}
