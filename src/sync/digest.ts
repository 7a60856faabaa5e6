import { selectEnvelope, type VersionedRef } from '../envelope/index.js'
import type { DigestEntry } from './frames.js'

/**
 * Pure digest comparison: the names whose remote entry would win over ours under the
 * version rule, i.e. exactly what we should fetch. Using the selector keeps sync and
 * gossip in agreement about ties and conflicts.
 */
export function namesToFetch (local: ReadonlyMap<string, VersionedRef>, remote: readonly DigestEntry[]): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  for (const entry of remote) {
    if (seen.has(entry.name)) continue
    seen.add(entry.name)
    if (selectEnvelope(local.get(entry.name), entry).accept) out.push(entry.name)
  }
  return out
}
