// The agent's side of anti-entropy: a peer whose trust differs from this node's delivers each
// envelope this node refuses once, not every sync round; a flood of refused envelopes still gets
// its sender blocked.
import { describe, expect, it } from 'vitest'
import { envelopeId } from '../../src/envelope/index.js'
import { syncSource, SYNC_REFUSALS } from '../../src/node/network.js'
import type { Taken } from '../../src/node/intake.js'
import type { DigestEntry } from '../../src/sync/index.js'

function fixture (take: (bytes: Uint8Array) => Taken) {
  const blocked: string[] = []
  const book = { trustVersion: 1 as number | undefined, dropped: new Set<string>() }
  const source = syncSource({
    book: { digest: () => [], get: () => undefined, servable: () => undefined, get trustVersion () { return book.trustVersion }, droppedAsUntrusted: (e) => book.dropped.has(e.name) },
    store: { archivedVersions: async () => [], loadArchived: async () => undefined } as never,
    intake: { take: (bytes) => take(bytes) },
    peers: { hints: () => [], learn: () => {}, block: async (ids) => { blocked.push(...ids) } },
    now: () => 0
  })
  return { source, blocked, book }
}

const bytesOf = (i: number): Uint8Array => new TextEncoder().encode(`envelope ${i}`)
const entryOf = (i: number): DigestEntry => ({ name: `web/n${i}`, version: 1, hash: 'h', id: envelopeId(bytesOf(i)) })
const untrusted: Taken = { outcome: 'rejected', reason: 'untrusted' }
const older: Taken = { outcome: 'ignored', reason: 'older' }

describe('syncSource', () => {
  it('does not ask again for an envelope it refused, until its trust policy changes', async () => {
    const { source, book } = fixture(() => untrusted)
    expect(source.declined?.(entryOf(1))).toBe(false)
    await source.ingest(bytesOf(1), 'peer-a', 'sync')
    expect(source.declined?.(entryOf(1))).toBe(true)
    expect(source.declined?.(entryOf(2))).toBe(false)
    book.trustVersion = 2
    expect(source.declined?.(entryOf(1))).toBe(false)
  })

  it('does not ask for a version the book dropped as untrusted (a peer yet to hear of the revocation offers it)', async () => {
    const { source, book } = fixture(() => untrusted)
    book.dropped.add(entryOf(3).name)
    expect(source.declined?.(entryOf(3))).toBe(true)
    expect(source.declined?.(entryOf(4))).toBe(false)
  })

  it('remembers nothing for an envelope ignored only as older', async () => {
    const { source } = fixture(() => older)
    await source.ingest(bytesOf(1), 'peer-a', 'sync')
    expect(source.declined?.(entryOf(1))).toBe(false)
  })

  it('blocks a peer whose deliveries are refused past the burst, and only that peer', async () => {
    const { source, blocked } = fixture(() => untrusted)
    for (let i = 0; i < SYNC_REFUSALS.capacity; i++) await source.ingest(bytesOf(i), 'peer-a', 'sync')
    expect(blocked).toEqual([])
    await source.ingest(bytesOf(100), 'peer-a', 'sync')
    await source.ingest(bytesOf(101), 'peer-b', 'sync')
    expect(blocked).toEqual(['peer-a'])
  })
})
