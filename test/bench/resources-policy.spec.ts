import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { parsePolicy, type ConfigPolicy } from '../../src/policy/index.js'
import { BENCH_ACCOUNTS, BENCH_PACKAGES, BENCH_UNITS, BENCH_USER, grapevinePolicy, puppetManifest } from '../../src/bench/resources-policy.js'

const resourcesOf = (text: string): ConfigPolicy['resources'] => (parsePolicy(text, 'bench.yaml') as ConfigPolicy).resources

/** `type { 'title': attr => value, … }` lines of a manifest the bench writes (one resource a line). */
function puppetResources (text: string): Array<{ type: string, title: string, attrs: Record<string, string> }> {
  return text.trim().split('\n').map((line) => {
    const m = /^(\w+) \{ '([^']+)': (.*) \}$/.exec(line)
    if (m === null) throw new Error(`not one resource: ${line}`)
    const attrs = Object.fromEntries([...(m[3] as string).matchAll(/(\w+) => ('[^']*'|\[[^\]]*\]|\w+)/g)].map((a) => [a[1], (a[2] as string).replace(/^'|'$/g, '')]))
    return { type: m[1] as string, title: m[2] as string, attrs }
  })
}

describe('the resources bench workload', () => {
  it('is a valid Grapevine policy of 20 packages (present, never latest), 5 groups, 5 users and 5 services', () => {
    const all = resourcesOf(grapevinePolicy({ accounts: true, services: true }))
    const count = (type: string): number => all.filter((r) => r.type === type).length
    expect([count('package'), count('group'), count('user'), count('service'), all.length]).toEqual([20, 5, 5, 5, 35])
    for (const r of all) {
      if (r.type === 'package') expect(r.ensure).toBe('present')
      if (r.type === 'service') expect([r.enable, r.state]).toEqual([true, undefined])
    }
    expect(resourcesOf(grapevinePolicy({ accounts: true, services: false })).map((r) => r.type)).not.toContain('service')
    expect(resourcesOf(grapevinePolicy({ accounts: false, services: true })).map((r) => r.type)).toEqual(Array(5).fill('service'))
  })

  it('says the same in the Puppet manifest: each resource with the same fields', () => {
    const gv = resourcesOf(grapevinePolicy({ accounts: true, services: true }))
    const pp = puppetResources(puppetManifest({ accounts: true, services: true }, 'service'))
    expect(pp.map((r) => `${r.type} ${r.title}`)).toEqual(gv.map((r) => `${r.type} ${(r as { name: string }).name}`))
    for (const [i, r] of gv.entries()) {
      const { attrs } = pp[i] as { attrs: Record<string, string> }
      if (r.type === 'package') expect(attrs).toEqual({ ensure: 'present' })
      if (r.type === 'group') expect(attrs).toEqual({ ensure: 'present', gid: String(r.gid) })
      if (r.type === 'user') {
        expect(attrs).toEqual({ ensure: 'present', uid: String(r.uid), gid: String(r.gid), home: r.home, shell: r.shell, comment: r.comment, managehome: 'false' })
        expect([r.home, r.shell, r.comment, r.manage_home]).toEqual([BENCH_USER.home, BENCH_USER.shell, BENCH_USER.comment, false])
      }
      if (r.type === 'service') expect(attrs).toEqual({ enable: 'true' })
    }
    expect(new Set(gv.filter((r) => r.type === 'user').map((r) => (r as { name: string }).name))).toEqual(new Set(BENCH_ACCOUNTS.map((a) => a.name)))
  })

  it('enables each unit with an exec guarded by the same is-enabled query where the service type cannot', () => {
    const pp = puppetResources(puppetManifest({ accounts: false, services: true }, 'exec'))
    expect(pp.map((r) => r.type)).toEqual(Array(5).fill('exec'))
    for (const [i, unit] of BENCH_UNITS.entries()) {
      expect(pp[i]?.attrs).toMatchObject({ command: `systemctl enable ${unit}`, unless: `systemctl is-enabled --quiet ${unit}` })
    }
  })

  it('names only packages of priority required, installed on this machine, so that a no-op installs nothing', () => {
    const out = execFileSync('dpkg-query', ['-W', '-f', '${Package} ${Priority} ${db:Status-Status}\n', ...BENCH_PACKAGES], { encoding: 'utf8' })
    expect(out.trim().split('\n').sort()).toEqual([...BENCH_PACKAGES].sort().map((p) => `${p} required installed`))
  })
})
