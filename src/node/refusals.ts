import { topLevelMembers } from '../envelope/members.js'

/** Distinct refusals `status` shows: enough to see a misconfiguration, bounded whatever a peer floods. */
export const MAX_RECENT_REFUSALS = 20

/** Longest name or signer kept from a refused envelope: it came from anyone. */
const MAX_FIELD_CHARS = 200

/** An envelope refused recently, and how many times since its first refusal (the same one comes by gossip and every sync). */
export interface RecentRefusal {
  name?: string
  signer?: string
  reason: string
  error: string
  via: string
  from?: string
  count: number
  first: string
  last: string
}

/**
 * The name and signer a refused envelope claims, read from its top level without decoding
 * the rest (envelope/members.ts); unverified, and only for showing why it was refused.
 */
export function claimedHeader (bytes: Uint8Array): { name?: string, signer?: string } {
  const members = topLevelMembers(bytes)
  if (typeof members === 'string') return {}
  const out: { name?: string, signer?: string } = {}
  const decoder = new TextDecoder()
  for (const m of members) {
    const key = decoder.decode(bytes.subarray(m.keyStart, m.keyEnd))
    if (key !== '"name"' && key !== '"signer"') continue
    if (m.valueEnd - m.valueStart > MAX_FIELD_CHARS + 2) continue
    try {
      const value = JSON.parse(decoder.decode(bytes.subarray(m.valueStart, m.valueEnd))) as unknown
      if (typeof value === 'string') out[key === '"name"' ? 'name' : 'signer'] = value
    } catch {
      // Not a JSON string: nothing to show.
    }
  }
  return out
}

/**
 * The last MAX_RECENT_REFUSALS distinct refusals (by name, signer and reason), newest last: what
 * `grapevine status` shows so that an agent with the wrong --trust does not look merely empty.
 */
export class RecentRefusals {
  private readonly byKey = new Map<string, RecentRefusal>()

  constructor (private readonly now: () => number) {}

  add (r: { name?: string, signer?: string, reason: string, error: string, via: string, from?: string }): void {
    const key = JSON.stringify([r.name ?? '', r.signer ?? '', r.reason])
    const at = new Date(this.now()).toISOString()
    const held = this.byKey.get(key)
    this.byKey.delete(key)
    this.byKey.set(key, { ...r, count: (held?.count ?? 0) + 1, first: held?.first ?? at, last: at })
    if (this.byKey.size > MAX_RECENT_REFUSALS) this.byKey.delete(this.byKey.keys().next().value as string)
  }

  list (): RecentRefusal[] {
    return [...this.byKey.values()]
  }
}
