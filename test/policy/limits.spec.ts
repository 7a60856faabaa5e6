import { describe, expect, it } from 'vitest'
import { InvalidPolicyError, RESOURCE_TYPES, parsePolicy, type TrustPolicy } from '../../src/policy/index.js'

const KEY = 'ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'

const trustYaml = (limits: string): string => `kind: trust
name: grapevine/trust
admins:
  - name: web team
    key: ${KEY}
    scopes: ["web/"]
    limits:
${limits.split('\n').map((l) => `      ${l}`).join('\n')}
`

function problems (text: string): string[] {
  try {
    parsePolicy(text, 'trust.yaml')
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidPolicyError)
    return (err as InvalidPolicyError).problems.map((p) => `${p.line ?? '?'}: ${p.path}: ${p.message}`)
  }
  throw new Error('expected the policy to be refused')
}

describe('trust policy limits (schema)', () => {
  it('lists every resource type', () => {
    expect(RESOURCE_TYPES).toEqual(['file', 'directory', 'symlink', 'config', 'exec', 'package', 'service', 'user', 'group'])
  })

  it('reads a restricted admin', () => {
    const p = parsePolicy(trustYaml(`types: [file, directory, config, exec]
paths: [/var/www/, /etc/nginx/]
exec:
  commands:
    - [systemctl, reload, nginx]
    - nginx -t
  run_as: www-data`)) as TrustPolicy
    expect(p.admins[0]?.limits).toEqual({
      types: ['file', 'directory', 'config', 'exec'],
      paths: ['/var/www/', '/etc/nginx/'],
      exec: { commands: [['systemctl', 'reload', 'nginx'], 'nginx -t'], run_as: 'www-data' }
    })
  })

  it('leaves limits out when none are given (an unlimited admin)', () => {
    const p = parsePolicy(`kind: trust\nname: grapevine/trust\nadmins:\n  - key: ${KEY}\n    scopes: ["*"]\n`) as TrustPolicy
    expect(p.admins[0]?.limits).toBeUndefined()
  })

  it.each([
    ['an unknown type', 'types: [file, users]', /^8: admins\[0\]\.limits\.types\[1\]: Invalid option: expected one of "file"\|"directory"\|"symlink"\|"config"\|"exec"\|"package"\|"service"\|"user"\|"group", got "users"$/m],
    ['a relative prefix', 'paths: [var/www/]', /admins\[0\]\.limits\.paths\[0\]: expected an absolute path prefix with no "\.", "\.\." or "\/\/", like "\/etc\/nginx\/", got "var\/www\/"/],
    ['a prefix with ..', 'paths: [/var/www/../etc/]', /limits\.paths\[0\]: expected an absolute path prefix .* got "\/var\/www\/\.\.\/etc\/"/],
    ['a prefix with //', 'paths: [/var//www/]', /limits\.paths\[0\]: expected an absolute path prefix/],
    ['no prefixes at all', 'paths: []', /limits\.paths: /],
    ['a relative program in an argv', 'exec:\n  commands: [[./deploy.sh]]', /limits\.exec\.commands\[0\]: expected the program as an absolute path or a bare name found on PATH, got "\.\/deploy\.sh"/],
    ['a run_as that is no user name', 'exec:\n  run_as: "www data"', /limits\.exec\.run_as: expected a user name like "www-data" or a numeric uid, got "www data"/],
    ['an unknown limit', 'power: none', /admins\[0\]\.limits\.power: unknown field/],
    ['an unknown exec limit', 'exec:\n  user: nobody', /limits\.exec\.user: unknown field/]
  ])('refuses %s with the field and line', (_, limits, expected) => {
    expect(problems(trustYaml(limits)).join('\n')).toMatch(expected)
  })
})

describe('exec run_as', () => {
  const exec = (runAs: string): string => `name: web/site\nresources:\n  - id: reload\n    type: exec\n    command: [systemctl, reload, nginx]\n    run_as: ${runAs}\n`
  it('takes a user name or a uid', () => {
    for (const u of ['www-data', 'nobody', '"33"', '_apt']) {
      const p = parsePolicy(exec(u))
      expect(p.kind === 'policy' && p.resources[0]?.type === 'exec' ? p.resources[0].run_as : undefined).toBe(u.replace(/"/g, ''))
    }
  })
  it('refuses anything else, saying where', () => {
    expect(problems(exec('"root;id"'))).toEqual(['6: resources[0].run_as: expected a user name like "www-data" or a numeric uid, got "root;id"'])
  })
})
