import { describe, expect, it, onTestFinished } from 'vitest'
import { existsSync } from 'node:fs'
import { lstat, mkdir, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { ServiceResource } from '../../src/policy/schema.js'
import { serviceOutcome, type Systemctl } from '../../src/apply/services/index.js'
import { runtimeChange, systemctl } from '../../src/apply/services/systemctl.js'
import { runCommand } from '../../src/apply/command.js'
import { SYSTEMD_RUNNING_DIR } from '../../src/apply/services/constants.js'
import { contextFor, policyOf, result, useSandbox } from './helpers.js'

// Real systemctl throughout: enablement with --root into sandbox roots. This machine (and CI)
// runs no systemd as PID 1, so the running state can only fail, by name; see services-plan.spec
// for the transitions where systemd runs.

const UNIT = `[Unit]
Description=grapevine test unit

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
`

const exists = async (p: string): Promise<boolean> => await lstat(p).then(() => true, () => false)

/** The real systemctl, recording each command line without its options. */
function recorder (): { run: Systemctl, ran: string[] } {
  const ran: string[] = []
  const real = systemctl()
  return {
    ran,
    run: async (args, timeoutMs) => {
      ran.push(args.filter((a) => !a.startsWith('--')).join(' '))
      return await real(args, timeoutMs)
    }
  }
}


const svc = (fields: Partial<ServiceResource>): ServiceResource => ({ id: 'demo-svc', type: 'service', name: 'demo', reload_on_notify: false, ...fields })

describe('service provider (systemctl --root into a sandbox)', () => {
  const sandbox = useSandbox()

  /** A sandbox root with demo.service in /lib/systemd/system, as a package installs it. */
  async function rootWithUnit (): Promise<{ root: string, wants: string }> {
    const sb = sandbox()
    await mkdir(sb.at('/lib/systemd/system'), { recursive: true })
    await mkdir(sb.at('/etc/systemd/system'), { recursive: true })
    await writeFile(sb.at('/lib/systemd/system/demo.service'), UNIT)
    return { root: sb.root, wants: sb.at('/etc/systemd/system/multi-user.target.wants/demo.service') }
  }

  it('enables (create), leaves alone with only is-enabled run (no-op), and disables (delete)', async () => {
    const { root, wants } = await rootWithUnit()
    const first = recorder()
    expect(await serviceOutcome(svc({ enable: true }), contextFor(root), first.run))
      .toEqual({ action: 'modify', status: 'ok', changes: [{ field: 'enabled', from: 'false', to: 'true' }] })
    expect(await readlink(wants)).toBe('/lib/systemd/system/demo.service')
    expect(first.ran).toEqual(['is-enabled demo.service', 'enable demo.service'])

    const again = recorder()
    expect(await serviceOutcome(svc({ enable: true }), contextFor(root), again.run)).toEqual({ action: 'none', status: 'ok' })
    expect(again.ran).toEqual(['is-enabled demo.service'])

    const off = recorder()
    expect(await serviceOutcome(svc({ enable: false }), contextFor(root), off.run))
      .toEqual({ action: 'modify', status: 'ok', changes: [{ field: 'enabled', from: 'true', to: 'false' }] })
    expect(await exists(wants)).toBe(false)
    expect(off.ran).toEqual(['is-enabled demo.service', 'disable demo.service'])

    const offAgain = recorder()
    expect(await serviceOutcome(svc({ enable: false }), contextFor(root), offAgain.run)).toEqual({ action: 'none', status: 'ok' })
    expect(offAgain.ran).toEqual(['is-enabled demo.service'])
  })

  it('manages a unit in /etc/systemd/system too, named with its suffix', async () => {
    const sb = sandbox()
    await mkdir(sb.at('/etc/systemd/system'), { recursive: true })
    await writeFile(sb.at('/etc/systemd/system/app.service'), UNIT)
    const out = await serviceOutcome(svc({ name: 'app.service', enable: true }), contextFor(sb.root))
    expect(out).toMatchObject({ action: 'modify', status: 'ok' })
    expect(await readlink(sb.at('/etc/systemd/system/multi-user.target.wants/app.service'))).toBe('/etc/systemd/system/app.service')
  })

  it('plans the transition and changes nothing, running only is-enabled', async () => {
    const { root, wants } = await rootWithUnit()
    const rec = recorder()
    expect(await serviceOutcome(svc({ enable: true }), contextFor(root, { dryRun: true }), rec.run))
      .toEqual({ action: 'modify', status: 'ok', changes: [{ field: 'enabled', from: 'false', to: 'true' }] })
    expect(rec.ran).toEqual(['is-enabled demo.service'])
    expect(await exists(wants)).toBe(false)
    expect(await exists(join(root, 'etc/systemd/system/multi-user.target.wants'))).toBe(false)
  })

  it('fails by name on a unit that is not installed; a plan says it cannot know yet', async () => {
    const { root } = await rootWithUnit()
    await expect(serviceOutcome(svc({ name: 'nope', enable: true }), contextFor(root)))
      .rejects.toMatchObject({ name: 'ServiceNotFoundError', message: expect.stringMatching(/^nope\.service: no such unit under .*Failed to get unit file state for nope\.service: No such file or directory.*install its package first/) })
    const plan = await serviceOutcome(svc({ name: 'nope', enable: true, state: 'running' }), contextFor(root, { dryRun: true }))
    expect(plan).toMatchObject({ action: 'modify', status: 'unknown', changes: [{ field: 'enabled', to: 'true' }, { field: 'state', to: 'running' }] })
    expect(plan.reason).toMatch(/nope\.service is not installed under .* yet/)
  })

  it('refuses to enable a masked unit, by name, before running anything that changes it', async () => {
    const { root } = await rootWithUnit()
    await symlink('/dev/null', join(root, 'etc/systemd/system/demo.service'))
    const rec = recorder()
    await expect(serviceOutcome(svc({ enable: true }), contextFor(root), rec.run)).rejects.toMatchObject({ name: 'ServiceMaskedError' })
    expect(rec.ran).toEqual(['is-enabled demo.service'])
    // Disabling a masked unit asks for nothing: it does not start at boot.
    expect(await serviceOutcome(svc({ enable: false }), contextFor(root))).toEqual({ action: 'none', status: 'ok' })
  })

  it('warns that enable means nothing for a static unit (no [Install] section), and changes nothing', async () => {
    const sb = sandbox()
    await mkdir(sb.at('/lib/systemd/system'), { recursive: true })
    await writeFile(sb.at('/lib/systemd/system/helper.service'), '[Service]\nExecStart=/bin/true\n')
    const rec = recorder()
    const out = await serviceOutcome(svc({ name: 'helper', enable: true }), contextFor(sb.root), rec.run)
    expect(out).toMatchObject({ action: 'none', status: 'ok', warnings: [expect.stringMatching(/helper\.service is static: "enable: true" has no effect/)] })
    expect(rec.ran).toEqual(['is-enabled helper.service'])
  })

  it('in a sandbox root, state fails by name after the enablement is applied', async () => {
    const { root, wants } = await rootWithUnit()
    const rec = recorder()
    const out = await serviceOutcome(svc({ enable: true, state: 'running' }), contextFor(root), rec.run)
    expect(out).toMatchObject({ action: 'modify', status: 'failed', changes: [{ field: 'enabled', from: 'false', to: 'true' }] })
    expect(out.error?.name).toBe('ServiceRuntimeUnavailableError')
    expect(out.error?.message).toBe(`the root is ${root}, not /: a service's running state is managed only on the machine itself: cannot start demo.service (\`systemctl start demo.service\`); enablement was applied (enabled)`)
    expect(await readlink(wants)).toBe('/lib/systemd/system/demo.service')
    expect(rec.ran).toEqual(['is-enabled demo.service', 'enable demo.service'])

    // The second apply: the enablement holds, the runtime still cannot be reached, nothing else runs.
    const again = recorder()
    const second = await serviceOutcome(svc({ enable: true, state: 'running' }), contextFor(root), again.run)
    expect(second).toMatchObject({ action: 'none', status: 'failed', error: { message: expect.stringMatching(/cannot start demo\.service .*; enablement is as the policy says \(enabled\)$/) } })
    expect(again.ran).toEqual(['is-enabled demo.service'])
  })

  it('a plan of the same says the enablement would be applied and the start would fail, changing nothing', async () => {
    const { root, wants } = await rootWithUnit()
    const out = await serviceOutcome(svc({ enable: true, state: 'stopped' }), contextFor(root, { dryRun: true }))
    expect(out).toMatchObject({ action: 'modify', status: 'failed', changes: [{ field: 'enabled', from: 'false', to: 'true' }] })
    expect(out.error?.message).toMatch(/cannot stop demo\.service \(`systemctl stop demo\.service`\); enablement would still be applied \(enabled\)$/)
    expect(await exists(wants)).toBe(false)
  })

  it('notified without systemd: the restart fails by name, naming the command attempted', async () => {
    const { root } = await rootWithUnit()
    const rec = recorder()
    const out = await serviceOutcome(svc({}), contextFor(root, { notified: { state: 'yes', by: ['site'] } }), rec.run)
    expect(out).toMatchObject({ action: 'none', status: 'failed', error: { name: 'ServiceRuntimeUnavailableError' } })
    expect(out.error?.message).toMatch(/: cannot restart demo\.service \(`systemctl try-restart demo\.service`\)$/)
    expect(rec.ran).toEqual(['is-enabled demo.service'])
  })

  it('notified with reload_on_notify: the reload is what was attempted', async () => {
    const { root } = await rootWithUnit()
    const out = await serviceOutcome(svc({ reload_on_notify: true }), contextFor(root, { notified: { state: 'yes', by: ['site'] } }))
    expect(out).toMatchObject({ status: 'failed', error: { name: 'ServiceRuntimeUnavailableError' } })
    expect(out.error?.message).toMatch(/: cannot reload demo\.service \(`systemctl try-reload-or-restart demo\.service`\)$/)
  })

  it('a plan whose notifier may change reports the restart as unknown, as an exec', async () => {
    const { root } = await rootWithUnit()
    const out = await serviceOutcome(svc({ reload_on_notify: true }), contextFor(root, { dryRun: true, notified: { state: 'maybe', by: ['build'] } }))
    expect(out).toMatchObject({ action: 'run', status: 'unknown', changes: [{ field: 'reload', to: 'if "build" changes' }] })
    expect(out.warnings).toEqual([expect.stringMatching(/^if notified, systemctl try-reload-or-restart demo\.service would fail: the root is .*, not \//)])
  })

  describe('through applyPolicy', () => {
    it('enables, then a second apply changes nothing; a notifying file makes the restart fail by name; results name the service', async () => {
      const sb = sandbox()
      await mkdir(sb.at('/lib/systemd/system'), { recursive: true })
      await writeFile(sb.at('/lib/systemd/system/demo.service'), UNIT)
      const policy = (content: string): ReturnType<typeof policyOf> => policyOf([
        { id: 'etc', type: 'directory', path: '/etc' },
        { id: 'conf', type: 'file', path: '/etc/demo.conf', content, notify: ['demo-svc'] },
        { id: 'demo-svc', type: 'service', name: 'demo', enable: true, reload_on_notify: true }
      ])
      const plan = await sb.plan(policy('a\n'))
      // The file would change, so the plan knows the reload would be needed, and that it would fail here.
      expect(result(plan, 'demo-svc')).toMatchObject({
        name: 'demo',
        action: 'modify',
        status: 'failed',
        changes: [{ field: 'enabled', from: 'false', to: 'true' }],
        error: { name: 'ServiceRuntimeUnavailableError', message: expect.stringContaining('cannot reload demo.service (`systemctl try-reload-or-restart demo.service`); enablement would still be applied (enabled)') }
      })
      expect(await exists(sb.at('/etc/systemd/system/multi-user.target.wants/demo.service'))).toBe(false)

      const first = await sb.apply(policy('a\n'))
      expect(result(first, 'demo-svc')).toMatchObject({
        name: 'demo',
        action: 'modify',
        status: 'failed',
        changes: [{ field: 'enabled', from: 'false', to: 'true' }],
        error: { name: 'ServiceRuntimeUnavailableError', message: expect.stringContaining('cannot reload demo.service (`systemctl try-reload-or-restart demo.service`); enablement was applied (enabled)') }
      })
      expect(await exists(sb.at('/etc/systemd/system/multi-user.target.wants/demo.service'))).toBe(true)

      const second = await sb.apply(policy('a\n'))
      expect(second.outcome).toBe('no-changes')
      expect(result(second, 'demo-svc')).toMatchObject({ name: 'demo', action: 'none', status: 'ok' })
    })
  })
})

describe('service provider on this machine (root /, systemd not PID 1)', () => {
  it('a systemctl command that fails is a named error with its exit code and stderr tail', async () => {
    // The runtime commands, run for real where they cannot work: what a failing start reports.
    expect(existsSync(SYSTEMD_RUNNING_DIR)).toBe(false)
    const err = await runtimeChange(systemctl(), 'start', 'demo.service').then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({
      name: 'ServiceCommandFailedError',
      exitCode: 1,
      message: expect.stringMatching(/^systemctl show --property=NeedDaemonReload --value demo\.service: exited 1: System has not been booted with systemd as init system \(PID 1\)/)
    })
  })

  it('no systemctl on the machine: ProviderUnavailableError', async () => {
    const missing: Systemctl = async (args, timeoutMs) => await runCommand(['/nonexistent/systemctl', ...args], { cwd: '/', env: {}, timeoutMs })
    await expect(serviceOutcome(svc({ enable: true }), contextFor(tmpdir()), missing)).rejects.toMatchObject({
      name: 'ProviderUnavailableError',
      message: expect.stringMatching(/^service demo\.service: systemctl is not installed/)
    })
  })

  it('enables a real unit in /etc/systemd/system, then fails the start by name, saying the enablement was applied', async () => {
    // The premise of this test: the machine (and CI) is a container without systemd as init.
    expect(existsSync(SYSTEMD_RUNNING_DIR), `${SYSTEMD_RUNNING_DIR} exists: systemd runs here, this test is for machines where it does not`).toBe(false)
    const name = `grapevine-test-${randomBytes(4).toString('hex')}`
    const unitFile = `/etc/systemd/system/${name}.service`
    const wants = `/etc/systemd/system/multi-user.target.wants/${name}.service`
    onTestFinished(async () => {
      await rm(wants, { force: true })
      await rm(unitFile, { force: true })
    })
    await writeFile(unitFile, UNIT)

    const rec = recorder()
    const out = await serviceOutcome(svc({ name, enable: true, state: 'running' }), contextFor('/'), rec.run)
    expect(out).toMatchObject({ action: 'modify', status: 'failed', changes: [{ field: 'enabled', from: 'false', to: 'true' }] })
    expect(out.error).toEqual({
      name: 'ServiceRuntimeUnavailableError',
      message: `systemd is not running as PID 1 here (a container?; ${SYSTEMD_RUNNING_DIR} is missing): cannot start ${name}.service (\`systemctl start ${name}.service\`); enablement was applied (enabled)`
    })
    expect(await readlink(wants)).toBe(unitFile)
    expect(rec.ran).toEqual([`is-enabled ${name}.service`, `enable ${name}.service`])
  })

  it('a unit systemd ships (static) with state only: the named error, nothing changed', async () => {
    expect(existsSync(SYSTEMD_RUNNING_DIR)).toBe(false)
    const rec = recorder()
    const out = await serviceOutcome(svc({ name: 'systemd-journald', state: 'running' }), contextFor('/', { notified: { state: 'yes', by: ['journald-conf'] } }), rec.run)
    expect(out).toMatchObject({ action: 'none', status: 'failed', error: { name: 'ServiceRuntimeUnavailableError' } })
    expect(out.error?.message).toMatch(/^systemd is not running as PID 1 here .*: cannot start or restart systemd-journald\.service \(`systemctl start systemd-journald\.service`, then `systemctl try-restart systemd-journald\.service`\)$/)
    expect(rec.ran).toEqual(['is-enabled systemd-journald.service'])
  })
})
