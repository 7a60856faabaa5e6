import { describe, expect, it } from 'vitest'
import { managedKey, orderResources, resource, type Resource } from '../../src/policy/index.js'
import { policy } from '../helpers/envelope.js'

/** Directory resources with the given ids and edges, checked by the schema but not the graph (cycles allowed). */
function resources (...specs: Array<{ id: string, requires?: string[], notify?: string[] }>): Resource[] {
  return specs.map((s, i) => resource.parse({ type: 'directory', path: `/r${i}`, ...s }))
}

const ids = (result: ReturnType<typeof orderResources>): string[] => {
  if ('cycle' in result) throw new Error(`unexpected cycle ${result.cycle.join(' -> ')}`)
  return result.order.map((r) => r.id)
}

describe('orderResources', () => {
  it.each([
    ['keeps the written order when nothing constrains it', [{ id: 'a' }, { id: 'b' }, { id: 'c' }], ['a', 'b', 'c']],
    ['moves a resource after what it requires', [{ id: 'a', requires: ['c'] }, { id: 'b' }, { id: 'c' }], ['c', 'a', 'b']],
    ['moves a notified resource after its notifier', [{ id: 'reload' }, { id: 'conf', notify: ['reload'] }], ['conf', 'reload']],
    ['follows chains', [{ id: 'a', requires: ['b'] }, { id: 'b', requires: ['c'] }, { id: 'c' }], ['c', 'b', 'a']],
    ['handles diamonds once each', [{ id: 'top', requires: ['l', 'r'] }, { id: 'l', requires: ['base'] }, { id: 'r', requires: ['base'] }, { id: 'base' }], ['base', 'l', 'r', 'top']]
  ])('%s', (_, specs, expected) => {
    expect(ids(orderResources(resources(...specs)))).toEqual(expected)
  })

  it('puts every resource after all it depends on (checked against the edges)', () => {
    const rs = resources(
      { id: 'svc', requires: ['conf', 'bin'] },
      { id: 'conf', requires: ['dir'], notify: ['svc-reload'] },
      { id: 'svc-reload', requires: ['svc'] },
      { id: 'bin' },
      { id: 'dir' }
    )
    const order = ids(orderResources(rs))
    expect([...order].sort()).toEqual(rs.map((r) => r.id).sort())
    for (const r of rs) {
      for (const d of r.requires ?? []) expect(order.indexOf(d)).toBeLessThan(order.indexOf(r.id))
      for (const t of r.notify ?? []) expect(order.indexOf(t)).toBeGreaterThan(order.indexOf(r.id))
    }
  })

  it.each([
    ['a two-resource cycle', [{ id: 'a', requires: ['b'] }, { id: 'b', requires: ['a'] }], ['a', 'b', 'a']],
    ['a cycle through notify', [{ id: 'a', notify: ['b'] }, { id: 'b', notify: ['a'] }], ['a', 'b', 'a']],
    ['a cycle behind a free resource', [{ id: 'x' }, { id: 'a', requires: ['c'] }, { id: 'b', requires: ['a'] }, { id: 'c', requires: ['b'] }], ['a', 'c', 'b', 'a']]
  ])('names %s, start to end', (_, specs, cycle) => {
    expect(orderResources(resources(...specs))).toEqual({ cycle })
  })
})

describe('managedKey', () => {
  it('is the path for everything but exec, which manages nothing', () => {
    const p = policy({
      kind: 'policy',
      name: 'k',
      resources: [
        { id: 'f', type: 'file', path: '/a', content: '' },
        { id: 'c', type: 'config', path: '/b', format: 'json' },
        { id: 'e', type: 'exec', command: 'true' }
      ]
    })
    if (p.kind !== 'policy') throw new Error('unreachable')
    expect(p.resources.map(managedKey)).toEqual(['path:/a', 'path:/b', undefined])
  })
})
