import { describe, expect, it } from 'vitest'
import { matchesTarget, type NodeFacts, type Target } from '../../src/policy/index.js'

const node: NodeFacts = { id: '12D3KooWnode', name: 'web-1', tags: { role: 'web', dc: 'ams' } }

describe('matchesTarget', () => {
  it.each<[string, Target | undefined, boolean]>([
    ['no target: every node', undefined, true],
    ['an empty target', {}, true],
    ['a matching tag', { tags: { role: 'web' } }, true],
    ['every tag matching', { tags: { role: 'web', dc: 'ams' } }, true],
    ['one tag of two not matching', { tags: { role: 'web', dc: 'fra' } }, false],
    ['a tag the node lacks', { tags: { rack: 'r1' } }, false],
    ['a tag with the wrong case', { tags: { role: 'Web' } }, false],
    ['the node listed by id', { nodes: ['other', '12D3KooWnode'] }, true],
    ['the node listed by name', { nodes: ['web-1'] }, true],
    ['the node not listed', { nodes: ['web-2'] }, false],
    ['an empty node list', { nodes: [] }, false],
    ['listed, and tags match', { nodes: ['web-1'], tags: { dc: 'ams' } }, true],
    ['listed, but tags do not match', { nodes: ['web-1'], tags: { dc: 'fra' } }, false]
  ])('%s → %s', (_, target, expected) => {
    expect(matchesTarget({ target }, node)).toBe(expected)
  })

  it('does not treat inherited properties as tags', () => {
    expect(matchesTarget({ target: { tags: { constructor: 'x' } } }, node)).toBe(false)
  })
})
