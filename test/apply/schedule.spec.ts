import { describe, expect, it } from 'vitest'
import { autoRequires, schedule } from '../../src/apply/schedule.js'
import type { Resource } from '../../src/policy/index.js'
import { policyOf } from './helpers.js'

const ids = (s: ReturnType<typeof schedule>): string[] => {
  if ('cycle' in s) throw new Error(`cycle ${s.cycle.join(' -> ')}`)
  return s.order.map((r) => r.id)
}

describe('schedule', () => {
  it('puts a managed parent directory first, whatever the written order', () => {
    const p = policyOf([
      { id: 'conf', type: 'file', path: '/etc/app/conf', content: 'x' },
      { id: 'app', type: 'directory', path: '/etc/app' },
      { id: 'etc', type: 'directory', path: '/etc' }
    ])
    const s = schedule(p.resources)
    expect(ids(s)).toEqual(['etc', 'app', 'conf'])
    if (!('cycle' in s)) expect(s.dependsOn.get('conf')).toEqual(['app'])
  })

  it('removes what is inside a directory before the directory', () => {
    const p = policyOf([
      { id: 'app', type: 'directory', path: '/etc/app', ensure: 'absent' },
      { id: 'conf', type: 'file', path: '/etc/app/conf', ensure: 'absent' }
    ])
    expect(ids(schedule(p.resources))).toEqual(['conf', 'app'])
  })

  it('follows requires and notify, and records who notifies whom', () => {
    const p = policyOf([
      { id: 'restart', type: 'exec', command: ['true'], refreshonly: true },
      { id: 'conf', type: 'file', path: '/conf', content: 'x', notify: ['restart'], requires: ['pkg'] },
      { id: 'pkg', type: 'exec', command: ['true'] }
    ])
    const s = schedule(p.resources)
    expect(ids(s)).toEqual(['pkg', 'conf', 'restart'])
    if (!('cycle' in s)) {
      expect(s.notifiers.get('restart')).toEqual(['conf'])
      expect(s.dependsOn.get('restart')).toEqual(['conf'])
    }
  })

  it('drops an implicit edge that would make a cycle with explicit ones', () => {
    // The directory explicitly requires a file inside it: odd, but not the applier's to refuse.
    const p = policyOf([
      { id: 'app', type: 'directory', path: '/app', requires: ['inside'] },
      { id: 'inside', type: 'file', path: '/app/x', content: 'x' }
    ])
    expect(ids(schedule(p.resources))).toEqual(['inside', 'app'])
  })

  it('reports a cycle', () => {
    const resources = [
      { id: 'a', type: 'exec', command: ['true'], requires: ['b'], timeout: 300, refreshonly: false },
      { id: 'b', type: 'exec', command: ['true'], requires: ['a'], timeout: 300, refreshonly: false }
    ] as const
    expect(schedule(resources as never)).toEqual({ cycle: ['a', 'b', 'a'] })
  })
})

describe('implicit edges of system resources', () => {
  it('orders owners, groups, packages and home directories first, whatever the written order', () => {
    const resources = [
      { id: 'svc', type: 'service', name: 'nginx.service', reload_on_notify: false },
      { id: 'conf', type: 'file', path: '/srv/app/app.conf', ensure: 'present', encoding: 'utf8', template: true, owner: 'app', group: 'web' },
      { id: 'app', type: 'user', name: 'app', ensure: 'present', gid: 'web', groups: ['ops'], membership: 'additive', manage_home: true, home: '/srv/app', system: false },
      { id: 'srv', type: 'directory', path: '/srv', ensure: 'present' },
      { id: 'web', type: 'group', name: 'web', ensure: 'present', system: false },
      { id: 'ops', type: 'group', name: 'ops', ensure: 'present', system: false },
      { id: 'pkg', type: 'package', name: 'nginx', ensure: 'present' }
    ] as unknown as Resource[]
    const auto = autoRequires(resources)
    expect(auto.get('svc')).toEqual(['pkg'])
    expect(auto.get('conf')).toEqual(expect.arrayContaining(['app', 'web']))
    expect(auto.get('app')).toEqual(expect.arrayContaining(['web', 'ops', 'srv']))
    const plan = schedule(resources)
    if ('cycle' in plan) throw new Error('unexpected cycle')
    const at = (id: string): number => plan.order.findIndex((r) => r.id === id)
    expect(at('pkg')).toBeLessThan(at('svc'))
    expect(at('app')).toBeLessThan(at('conf'))
    expect(at('srv')).toBeLessThan(at('app'))
  })
})
