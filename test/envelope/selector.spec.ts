import { describe, expect, it } from 'vitest'
import { selectEnvelope, type Selection, type VersionedRef } from '../../src/envelope/index.js'

const H1 = `sha256:${'1'.repeat(64)}`
const H2 = `sha256:${'2'.repeat(64)}`
const ref = (version: number, hash: string, id: string): VersionedRef => ({ version, hash, id })

describe('selectEnvelope (the version rule)', () => {
  it.each<[string, VersionedRef | undefined, VersionedRef, Selection]>([
    ['the first envelope for a name', undefined, ref(1, H1, 'a'), { accept: true }],
    ['a higher version', ref(1, H1, 'a'), ref(2, H1, 'b'), { accept: true }],
    ['a much higher version with a lower hash', ref(5, H2, 'z'), ref(900, H1, 'a'), { accept: true }],
    ['a rollback published as a new version (old content, new number)', ref(3, H2, 'c'), ref(4, H1, 'd'), { accept: true }],
    ['an older version', ref(2, H1, 'b'), ref(1, H1, 'a'), { accept: false, reason: 'older' }],
    ['an older version with a higher hash', ref(2, H1, 'b'), ref(1, H2, 'z'), { accept: false, reason: 'older' }],
    ['a replay of the current envelope', ref(2, H1, 'b'), ref(2, H1, 'b'), { accept: false, reason: 'duplicate' }]
  ])('%s', (_, current, incoming, expected) => {
    expect(selectEnvelope(current, incoming)).toEqual(expected)
  })

  describe('same version, different content: a conflict', () => {
    const low = ref(3, H1, 'id-low-hash')
    const high = ref(3, H2, 'id-high-hash')

    it('the higher hash wins, and the conflict is recorded on both sides', () => {
      const conflict = { version: 3, winner: H2, loser: H1 }
      expect(selectEnvelope(low, high)).toEqual({ accept: true, conflict })
      expect(selectEnvelope(high, low)).toEqual({ accept: false, reason: 'conflict-lost', conflict })
    })

    it.each([['low then high', [low, high]], ['high then low', [high, low]]] as const)(
      'every arrival order converges on the same winner (%s)', (_, arrivals) => {
        let held: VersionedRef | undefined
        const conflicts: unknown[] = []
        for (const incoming of arrivals) {
          const s = selectEnvelope(held, incoming)
          if (s.conflict !== undefined) conflicts.push(s.conflict)
          if (s.accept) held = incoming
        }
        expect(held).toBe(high)
        expect(conflicts).toEqual([{ version: 3, winner: H2, loser: H1 }])
      })
  })

  describe('same version and content in another envelope (another signer or time)', () => {
    const a = ref(3, H1, '0a')
    const b = ref(3, H1, '0b')

    it('is settled by the envelope id, deterministically, and is not a conflict', () => {
      expect(selectEnvelope(a, b)).toEqual({ accept: true })
      expect(selectEnvelope(b, a)).toEqual({ accept: false, reason: 'duplicate' })
    })

    it.each([['a then b', [a, b]], ['b then a', [b, a]]] as const)('both arrival orders keep the same envelope (%s)', (_, arrivals) => {
      let held: VersionedRef | undefined
      for (const incoming of arrivals) {
        const s = selectEnvelope(held, incoming)
        expect(s.conflict).toBeUndefined()
        if (s.accept) held = incoming
      }
      expect(held).toBe(b)
    })
  })
})
