import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import {
  rank, percentCutoff, resolveStages, inStage, stageOf, stageSizes, parseStages, MAX_RANK,
  NoTargetedNodesError, InvalidStagesError, type TargetedNode
} from '../../src/rollout/index.js'

const NAME = 'web/site'
const fleet = (n: number, tags: (i: number) => Record<string, string> = () => ({})): TargetedNode[] =>
  Array.from({ length: n }, (_, i) => ({ id: `12D3KooWnode${i}`, tags: tags(i) }))
const ids = (nodes: TargetedNode[]): string[] => nodes.map((n) => n.id)
const members = (nodes: TargetedNode[], stages: ReturnType<typeof resolveStages>, k: number, version: number): string[] =>
  ids(nodes).filter((id) => inStage(stages, k, id, NAME, version))

describe('rank', () => {
  it('is 64 hex digits, the same for the same inputs', () => {
    expect(rank('12D3KooWa', NAME, 3)).toMatch(/^[0-9a-f]{64}$/)
    expect(rank('12D3KooWa', NAME, 3)).toBe(rank('12D3KooWa', NAME, 3))
  })

  it('is the SHA-256 of the domain-separated canonical triple (every node computes the same)', () => {
    const expected = createHash('sha256').update('["grapevine/rollout-rank/1","12D3KooWa","web/site",3]').digest('hex')
    expect(rank('12D3KooWa', NAME, 3)).toBe(expected)
  })

  it.each<[string, [string, string, number]]>([
    ['another peer', ['12D3KooWb', NAME, 3]],
    ['another name', ['12D3KooWa', 'web/api', 3]],
    ['another version', ['12D3KooWa', NAME, 4]],
    ['fields that concatenate alike', ['12D3KooWaweb', '/site', 3]]
  ])('changes with %s', (_, args) => {
    expect(rank(...args)).not.toBe(rank('12D3KooWa', NAME, 3))
  })
})

describe('percentCutoff', () => {
  it.each<[number, string]>([
    [100_000, MAX_RANK],
    [50_000, `7${'f'.repeat(63)}`],
    [25_000, `3${'f'.repeat(63)}`],
    [12_500, `1${'f'.repeat(63)}`]
  ])('%i thousandths of a percent → %s', (milli, cutoff) => {
    expect(percentCutoff(milli)).toBe(cutoff)
  })

  it.each([0, -1, 0.5, Number.NaN])('refuses %d', (milli) => {
    expect(() => percentCutoff(milli)).toThrow(RangeError)
  })

  it('lets about that share of a large fleet in, with no fleet view', () => {
    const nodes = fleet(20_000)
    const stages = resolveStages(parseStages('10%,100%'), NAME, 1, [])
    const share = members(nodes, stages, 0, 1).length / nodes.length
    expect(share).toBeGreaterThan(0.09)
    expect(share).toBeLessThan(0.11)
  })
})

describe('resolveStages and inStage', () => {
  it('1,5%,25%,100% over 100 nodes: exactly 1, 5, 25, 100, each from the lowest ranks', () => {
    const nodes = fleet(100)
    const stages = resolveStages(parseStages('1,5%,25%,100%'), NAME, 7, nodes)
    expect(stageSizes(stages, NAME, 7, ids(nodes)).map((s) => s.count)).toEqual([1, 5, 25, 100])
    const byRank = ids(nodes).sort((a, b) => (rank(a, NAME, 7) < rank(b, NAME, 7) ? -1 : 1))
    expect(members(nodes, stages, 0, 7)).toEqual([byRank[0]])
    expect(new Set(members(nodes, stages, 2, 7))).toEqual(new Set(byRank.slice(0, 25)))
    expect(stages[3]?.upTo).toBe(MAX_RANK)
  })

  it('rounds a percentage up, to at least one node', () => {
    const nodes = fleet(10)
    const stages = resolveStages(parseStages('1%,15%,100%'), NAME, 1, nodes)
    expect(stageSizes(stages, NAME, 1, ids(nodes)).map((s) => s.count)).toEqual([1, 2, 10])
  })

  it('a count larger than the fleet includes all of it', () => {
    const nodes = fleet(3)
    const stages = resolveStages(parseStages('5,100%'), NAME, 1, nodes)
    expect(stageSizes(stages, NAME, 1, ids(nodes)).map((s) => s.count)).toEqual([3, 3])
  })

  it('a percentage no larger than an earlier count adds nobody, and takes nobody away', () => {
    const nodes = fleet(100)
    const stages = resolveStages(parseStages('10,5%,100%'), NAME, 1, nodes)
    expect(stageSizes(stages, NAME, 1, ids(nodes)).map((s) => s.count)).toEqual([10, 10, 100])
  })

  it('a node that joins after the stages were resolved decides alone from its rank', () => {
    const nodes = fleet(100)
    const stages = resolveStages(parseStages('50%,100%'), NAME, 1, nodes)
    const late = fleet(2000).slice(100)
    const share = members(late, stages, 0, 1).length / late.length
    expect(share).toBeGreaterThan(0.35)
    expect(share).toBeLessThan(0.65)
    expect(members(late, stages, 1, 1)).toHaveLength(late.length)
  })

  it('a tag stage lists the nodes whose tags matched, by peer id; later stages add ranks', () => {
    const nodes = fleet(40, (i) => (i % 10 === 0 ? { role: 'canary' } : { role: 'web' }))
    const stages = resolveStages(parseStages('role=canary,50%,100%'), NAME, 2, nodes)
    expect(stages[0]).toEqual({ text: 'role=canary', nodes: ['12D3KooWnode0', '12D3KooWnode10', '12D3KooWnode20', '12D3KooWnode30'] })
    expect(members(nodes, stages, 0, 2)).toEqual(['12D3KooWnode0', '12D3KooWnode10', '12D3KooWnode20', '12D3KooWnode30'])
    const second = members(nodes, stages, 1, 2)
    expect(second).toEqual(expect.arrayContaining(members(nodes, stages, 0, 2)))
    expect(second.length).toBeGreaterThanOrEqual(20)
  })

  it('a node that claims a tag after the stage was resolved is not in it', () => {
    const nodes = fleet(10, (i): Record<string, string> => (i === 0 ? { role: 'canary' } : {}))
    const stages = resolveStages(parseStages('role=canary,100%'), NAME, 1, nodes)
    expect(inStage(stages, 0, '12D3KooWnode0', NAME, 1)).toBe(true)
    expect(inStage(stages, 0, '12D3KooWnode1', NAME, 1)).toBe(false)
  })

  it('does not read inherited properties as tags', () => {
    const nodes = fleet(3)
    expect(() => resolveStages(parseStages('constructor=x,100%'), NAME, 1, nodes)).toThrow(InvalidStagesError)
  })

  it('refuses a tag stage that matches nobody', () => {
    expect(() => resolveStages(parseStages('role=canary,100%'), NAME, 1, fleet(5))).toThrow(InvalidStagesError)
  })

  it('refuses a count with no targeted nodes known; percentages fall back to the hash space', () => {
    expect(() => resolveStages(parseStages('1,100%'), NAME, 1, [])).toThrow(NoTargetedNodesError)
    expect(resolveStages(parseStages('50%,100%'), NAME, 1, [])).toEqual([
      { text: '50%', upTo: `7${'f'.repeat(63)}` }, { text: '100%', upTo: MAX_RANK }
    ])
  })

  it('stageOf is the first stage that includes a node', () => {
    const nodes = fleet(100)
    const stages = resolveStages(parseStages('1,5%,25%,100%'), NAME, 7, nodes)
    for (const id of ids(nodes)) {
      const first = stageOf(stages, id, NAME, 7) as number
      expect(inStage(stages, first, id, NAME, 7)).toBe(true)
      if (first > 0) expect(inStage(stages, first - 1, id, NAME, 7)).toBe(false)
    }
  })

  it('stageSizes gives percentages of the targeted nodes', () => {
    const nodes = fleet(20)
    const stages = resolveStages(parseStages('1,25%,100%'), NAME, 1, nodes)
    expect(stageSizes(stages, NAME, 1, ids(nodes))).toEqual([{ count: 1, percent: 5 }, { count: 5, percent: 25 }, { count: 20, percent: 100 }])
    expect(stageSizes(stages, NAME, 1, [])).toEqual([{ count: 0, percent: 0 }, { count: 0, percent: 0 }, { count: 0, percent: 0 }])
  })
})

describe('membership properties', () => {
  const spec = fc.constantFrom('1,100%', '1,5%,25%,100%', '2,5,10%,50%,100%', '0.5%,100%', '3,33.333%,66.667%,100%')
  const arb = fc.record({
    spec,
    n: fc.integer({ min: 1, max: 60 }),
    version: fc.integer({ min: 1, max: 1_000_000 }),
    known: fc.boolean()
  })

  it('is monotone: a node in stage k is in every later stage, and the last stage holds every node', () => {
    fc.assert(fc.property(arb, ({ spec, n, version, known }) => {
      const nodes = fleet(n)
      const parsed = parseStages(spec)
      // Counts need the fleet view; percentages also resolve without one.
      const view = known || parsed.some((s) => s.kind === 'count') ? nodes : []
      const stages = resolveStages(parsed, NAME, version, view)
      for (const id of ids(nodes)) {
        let seen = false
        for (let k = 0; k < stages.length; k++) {
          const inK = inStage(stages, k, id, NAME, version)
          if (seen) expect(inK).toBe(true)
          seen ||= inK
        }
        expect(seen).toBe(true)
      }
    }), { numRuns: 60 })
  })

  it('every node decides the same as the publisher from the record alone', () => {
    fc.assert(fc.property(arb, ({ spec, n, version }) => {
      const nodes = fleet(n)
      // The record travels as JSON; a node holds nothing else.
      const record = JSON.parse(JSON.stringify(resolveStages(parseStages(spec), NAME, version, nodes)))
      const sizes = stageSizes(record, NAME, version, ids(nodes)).map((s) => s.count)
      // Each stage alone: a count is exact, a percentage rounds up to at least one node;
      // cumulative sizes are the running maximum.
      let expected = 0
      parseStages(spec).forEach((s, k) => {
        const alone = s.kind === 'count' ? Math.min(s.count, n) : s.kind === 'percent' ? Math.min(n, Math.max(1, Math.ceil((n * s.milli) / 100_000))) : 0
        expected = Math.max(expected, alone)
        expect(sizes[k]).toBe(expected)
      })
    }), { numRuns: 60 })
  })

  it('different versions pick different canaries', () => {
    const nodes = fleet(100)
    const canaries = new Set<string>()
    for (let v = 1; v <= 20; v++) {
      const stages = resolveStages(parseStages('1,100%'), NAME, v, nodes)
      canaries.add(members(nodes, stages, 0, v)[0] as string)
    }
    // 20 draws from 100 nodes: all distinct with probability ~0.13, ≥ 10 distinct almost surely.
    expect(canaries.size).toBeGreaterThanOrEqual(10)
  })
})
