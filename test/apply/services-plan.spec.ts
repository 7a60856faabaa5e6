import { describe, expect, it } from 'vitest'
import type { ServiceResource } from '../../src/policy/schema.js'
import type { Notified } from '../../src/apply/exec.js'
import { describeVerbs, planService, unitName, type Runtime, type ServiceCurrent } from '../../src/apply/services/plan.js'
import { ServiceMaskedError } from '../../src/apply/errors.js'

const svc = (fields: Partial<ServiceResource> = {}): ServiceResource => ({ id: 'web', type: 'service', name: 'nginx', reload_on_notify: false, ...fields })
const booted: Runtime = { available: true }
const container: Runtime = { available: false, why: 'systemd is not running as PID 1 here' }
const quiet: Notified = { state: 'no', by: [] }
const bySite: Notified = { state: 'yes', by: ['site'] }
const maybeSite: Notified = { state: 'maybe', by: ['site'] }

/** The plan in one line per step, to compare with tables. */
function steps (r: ServiceResource, current: ServiceCurrent, notified: Notified, runtime: Runtime): string[] {
  const plan = planService(r, 'nginx.service', current, notified, runtime)
  const show = (verb: string, c?: { field: string, from?: string, to?: string }): string =>
    c === undefined ? verb : `${verb} (${c.field}: ${c.from !== undefined ? `${c.from} -> ` : ''}${c.to ?? ''})`
  return [
    ...(plan.enablement !== undefined ? [show(plan.enablement.verb, plan.enablement.change)] : []),
    ...plan.runtime.map((s) => show(s.verb, s.change)),
    ...(plan.maybe !== undefined ? [`maybe ${show(plan.maybe.verb, plan.maybe.change)}`] : []),
    ...plan.warnings.map((w) => `warning: ${w}`),
    ...plan.reasons.map((w) => `reason: ${w}`)
  ]
}

describe('unitName', () => {
  it.each([
    ['nginx', 'nginx.service'],
    ['nginx.service', 'nginx.service'],
    ['php8.2-fpm', 'php8.2-fpm.service'],
    ['fstrim.timer', 'fstrim.timer'],
    ['docker.socket', 'docker.socket'],
    ['getty@tty1', 'getty@tty1.service']
  ])('%s is %s', (name, unit) => expect(unitName(name)).toBe(unit))
})

describe('planService: enablement', () => {
  it.each<[string, Partial<ServiceResource>, string, string[]]>([
    ['disabled, enable: true', { enable: true }, 'disabled', ['enable (enabled: false -> true)']],
    ['enabled, enable: false', { enable: false }, 'enabled', ['disable (enabled: true -> false)']],
    ['enabled, enable: true', { enable: true }, 'enabled', []],
    ['disabled, enable: false', { enable: false }, 'disabled', []],
    ['enabled at run time counts as enabled', { enable: true }, 'enabled-runtime', []],
    ['linked is not enabled', { enable: true }, 'linked', ['enable (enabled: false -> true)']],
    ['indirect is not enabled (Puppet reads it so too)', { enable: true }, 'indirect', ['enable (enabled: false -> true)']],
    ['masked counts as disabled', { enable: false }, 'masked', []],
    ['enable omitted leaves it', {}, 'disabled', []],
    ['static: enable has no effect', { enable: true }, 'static', ['warning: nginx.service is static: "enable: true" has no effect (it has no [Install] section; it starts when another unit needs it)']],
    ['static: nor has disable', { enable: false }, 'static', ['warning: nginx.service is static: "enable: false" has no effect (it has no [Install] section; it starts when another unit needs it)']]
  ])('%s', (_, fields, unitFile, expected) => {
    expect(steps(svc(fields), { unitFile }, quiet, container)).toEqual(expected)
  })

  it('refuses to enable or start a masked unit, by name', () => {
    expect(() => planService(svc({ enable: true }), 'nginx.service', { unitFile: 'masked' }, quiet, container)).toThrow(ServiceMaskedError)
    expect(() => planService(svc({ state: 'running' }), 'nginx.service', { unitFile: 'masked-runtime' }, quiet, booted)).toThrow(/nginx.service is masked .* cannot be started; .*systemctl unmask nginx.service/)
  })
})

describe('planService: running state where systemd runs', () => {
  it.each<[string, Partial<ServiceResource>, ServiceCurrent['active'], string[]]>([
    ['stopped, state: running', { state: 'running' }, 'stopped', ['start (state: stopped -> running)']],
    ['running, state: stopped', { state: 'stopped' }, 'running', ['stop (state: running -> stopped)']],
    ['running, state: running', { state: 'running' }, 'running', []],
    ['stopped, state: stopped', { state: 'stopped' }, 'stopped', []],
    ['enable and start together', { enable: true, state: 'running' }, 'stopped', ['enable (enabled: false -> true)', 'start (state: stopped -> running)']]
  ])('%s', (_, fields, active, expected) => {
    expect(steps(svc(fields), { unitFile: 'disabled', ...(active !== undefined ? { active } : {}) }, quiet, booted)).toEqual(expected)
  })
})

describe('planService: notifications', () => {
  it.each<[string, Partial<ServiceResource>, ServiceCurrent['active'], Notified, Runtime, string[]]>([
    ['running, notified: restart', { state: 'running' }, 'running', bySite, booted, ['try-restart (restart: notified by "site")']],
    ['reload_on_notify: reload (or restart a unit that cannot reload)', { state: 'running', reload_on_notify: true }, 'running', bySite, booted, ['try-reload-or-restart (reload: notified by "site")']],
    ['stopped and started now: the start reads the new configuration', { state: 'running' }, 'stopped', bySite, booted,
      ['start (state: stopped -> running)', 'reason: notified by "site"; it starts with the new configuration, no restart needed']],
    ['state: stopped is not restarted', { state: 'stopped' }, 'stopped', bySite, booted, ['reason: notified by "site"; not a restart: the policy keeps it stopped']],
    ['no state and not running: not started by a notification', {}, 'stopped', bySite, booted, ['reason: notified by "site"; not a restart: it is not running']],
    ['no state and running: restarted', {}, 'running', bySite, booted, ['try-restart (restart: notified by "site")']],
    ['not notified: nothing', { state: 'running' }, 'running', quiet, booted, []],
    ['a plan whose notifier may change: maybe', { state: 'running', reload_on_notify: true }, 'running', maybeSite, booted, ['maybe try-reload-or-restart (reload: if "site" changes)']],
    ['without systemd: the restart is still planned (to fail by name)', {}, undefined, bySite, container, ['try-restart (restart: notified by "site")']],
    ['without systemd: start then restart, current state unknown', { state: 'running' }, undefined, { state: 'yes', by: ['a', 'b'] }, container,
      ['start', 'try-restart (restart: notified by "a", "b")']]
  ])('%s', (_, fields, active, notified, runtime, expected) => {
    expect(steps(svc(fields), { unitFile: 'enabled', ...(active !== undefined ? { active } : {}) }, notified, runtime)).toEqual(expected)
  })

  it('describes verbs in words', () => {
    expect(describeVerbs(['start', 'try-restart'])).toBe('start or restart')
    expect(describeVerbs(['try-reload-or-restart'])).toBe('reload')
  })
})
