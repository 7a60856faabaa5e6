import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applyPolicy, type ApplyReport } from '../../src/apply/index.js'
import type { PackageResource } from '../../src/policy/schema.js'
import type { SystemContext } from '../../src/apply/system.js'
import { packageOutcome, PACKAGE_SETTINGS, type PackageSettings } from '../../src/apply/packages/index.js'
import { runTool } from '../../src/apply/packages/tool.js'
import { buildDeb, holdDpkgLock } from '../helpers/deb.js'
import { useTempDir } from '../helpers/tmp.js'
import { policyOf, result, summary } from './helpers.js'

const run = promisify(execFile)

/** A tiny package from Debian's archive (a few dozen KB, no dependencies beyond libc and ncurses). */
const PACKAGE = 'sl'
const BINARY = '/usr/games/sl'

async function installedVersion (name: string): Promise<string | undefined> {
  const { stdout } = await run('dpkg-query', ['-W', '-f', '${db:Status-Status} ${Version}', name]).catch(() => ({ stdout: '' }))
  const [status, version] = stdout.split(' ')
  return status === 'installed' ? version : undefined
}

async function purge (name: string): Promise<void> {
  await run('apt-get', ['purge', '-y', '-q', name], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
}

const debian = { id: 'node-1', name: 'web1', tags: {}, facts: { os: { family: 'debian' } } }

/** On this machine's root, with real apt-get and Debian's archive; the machine is put back as it was. */
describe('package resources on / with apt (real packages)', () => {
  const dir = useTempDir('grapevine-apt-')
  let candidate: string

  beforeAll(async () => {
    if (await installedVersion(PACKAGE) !== undefined) throw new Error(`${PACKAGE} is installed on this machine already; this test installs and purges it, so it refuses to run`)
    // The package lists may be missing (a fresh container or CI image): fetch them once.
    const policy = async (): Promise<string | undefined> => /Candidate: (\S+)/.exec((await run('apt-cache', ['policy', PACKAGE])).stdout)?.[1]
    let c = await policy()
    if (c === undefined || c === '(none)') {
      await run('apt-get', ['update', '-q'])
      c = await policy()
    }
    if (c === undefined || c === '(none)') throw new Error(`apt offers no ${PACKAGE} even after apt-get update`)
    candidate = c
  }, 300_000)

  afterAll(async () => {
    if (await installedVersion(PACKAGE) !== undefined) await purge(PACKAGE)
  }, 300_000)

  const apply = async (resources: unknown[], dryRun = false): Promise<ApplyReport> =>
    await applyPolicy(policyOf(resources), { root: '/', stateDir: join(dir(), 'state'), facts: debian, dryRun })

  it('plans, installs, leaves alone, and removes sl with apt-get', async () => {
    const present = [{ id: 'sl', type: 'package', name: PACKAGE, ensure: 'present' }]
    const plan = await apply(present, true)
    expect(result(plan, 'sl')).toMatchObject({ action: 'create', status: 'ok', reason: `install sl ${candidate}`, changes: [{ field: 'version', to: candidate }] })
    expect(await installedVersion(PACKAGE)).toBeUndefined()

    const installed = await apply(present)
    expect(result(installed, 'sl')).toMatchObject({ action: 'create', status: 'ok', reason: `install sl ${candidate}` })
    expect(await installedVersion(PACKAGE)).toBe(candidate)
    expect(existsSync(BINARY)).toBe(true)

    expect(summary(await apply(present))).toEqual(['sl:none/ok'])
    expect(summary(await apply([{ id: 'sl', type: 'package', name: PACKAGE, ensure: 'latest' }]))).toEqual(['sl:none/ok'])
    const latest = counted()
    expect(await packageOutcome({ id: 'sl', type: 'package', name: PACKAGE, ensure: 'latest' } as PackageResource, latest.ctx)).toEqual({ action: 'none', status: 'ok' })
    expect(latest.calls.map((c) => c.slice(0, 2).join(' '))).toEqual(['dpkg-query --admindir=/var/lib/dpkg', `apt-cache policy`])
    expect(summary(await apply([{ id: 'sl', type: 'package', name: PACKAGE, ensure: candidate }]))).toEqual(['sl:none/ok'])

    const absent = [{ id: 'sl', type: 'package', name: PACKAGE, ensure: 'absent' }]
    expect(result(await apply(absent, true), 'sl')).toMatchObject({ action: 'delete', reason: `remove sl ${candidate}` })
    expect(await installedVersion(PACKAGE)).toBe(candidate)
    expect(result(await apply(absent), 'sl')).toMatchObject({ action: 'delete', status: 'ok', changes: [{ field: 'version', from: candidate }] })
    expect(await installedVersion(PACKAGE)).toBeUndefined()
    expect(existsSync(BINARY)).toBe(false)
    expect(summary(await apply(absent))).toEqual(['sl:none/ok'])
  }, 300_000)

  function counted (opts: { dryRun?: boolean } = {}): { calls: string[][], ctx: SystemContext } {
    const calls: string[][] = []
    const settings: Partial<PackageSettings> = { run: async (argv, o) => { calls.push(argv); return await runTool(argv, o) } }
    return { calls, ctx: { root: '/', dryRun: opts.dryRun === true, facts: debian, notified: { state: 'no', by: [] }, run: new Map([[PACKAGE_SETTINGS, settings]]), render: (t) => t, where: 'resources[0]', now: Date.now } }
  }

  it('an unchanged package runs only dpkg-query (and apt-cache policy where the decision needs it)', async () => {
    // dpkg and apt are on every Debian machine; present and their installed versions never change anything.
    const dpkgVersion = await installedVersion('dpkg')
    const aptVersion = await installedVersion('apt')
    const resources = [
      { id: 'dpkg', type: 'package', name: 'dpkg', ensure: 'present' },
      { id: 'apt', type: 'package', name: 'apt', ensure: aptVersion },
      { id: 'dpkg2', type: 'package', name: 'dpkg', ensure: dpkgVersion }
    ] as PackageResource[]
    const { calls, ctx } = counted()
    const outcomes = await Promise.all(resources.map(async (r) => await packageOutcome(r, ctx)))
    expect(outcomes.map((o) => o.action)).toEqual(['none', 'none', 'none'])
    expect(calls).toEqual([['dpkg-query', '--admindir=/var/lib/dpkg', '-W', '-f', '${Package}\\t${Status}\\t${Version}\\n']])
  })

  it('packages planned together ask apt-cache policy once', async () => {
    const { calls, ctx } = counted({ dryRun: true })
    const names = [PACKAGE, 'hello', 'gv-no-such-package']
    const outcomes = await Promise.all(names.map(async (name) => await packageOutcome({ id: name, type: 'package', name, ensure: 'latest' } as PackageResource, ctx).catch((e: Error) => e.name)))
    expect(outcomes[0]).toMatchObject({ action: 'create', reason: `install sl ${candidate}` })
    expect(outcomes[2]).toBe('PackageNotFoundError')
    expect(calls.map((c) => c[0])).toEqual(['dpkg-query', 'apt-cache'])
    expect(calls[1]?.slice(2).sort()).toEqual([...names].sort())
  })

  it('names a version the archive does not offer, in a plan and an apply', async () => {
    const report = await apply([{ id: 'sl', type: 'package', name: PACKAGE, ensure: '0.0.1-1' }], true)
    expect(result(report, 'sl').error).toEqual({ name: 'PackageNotFoundError', message: `package sl 0.0.1-1: not offered; offered: ${candidate}` })
    const none = await apply([{ id: 'x', type: 'package', name: 'gv-no-such-package', ensure: 'present' }])
    expect(result(none, 'x').error?.name).toBe('PackageNotFoundError')
  })

  it('a failed apt-get fails with its error tail and changes nothing', async () => {
    // A local .deb that depends on a package no source has: apt-get refuses the whole transaction.
    const deb = await buildDeb(join(dir(), 'gv-broken.deb'), { name: 'gv-broken', version: '1', depends: 'gv-no-such-dependency' })
    const report = await apply([{ id: 'b', type: 'package', name: 'gv-broken', ensure: 'present', source: deb }])
    const error = result(report, 'b').error
    expect(error?.name).toBe('PackageCommandFailedError')
    expect(error?.message).toMatch(/^apt-get install gv-broken: exited 100:\n/)
    expect(error?.message).toContain('Depends: gv-no-such-dependency but it is not installable')
    expect(await installedVersion('gv-broken')).toBeUndefined()
  }, 120_000)

  it('while another process holds the dpkg lock, apt-get waits up to the bound, then fails by name', async () => {
    const held = await holdDpkgLock('/var/lib/dpkg/lock-frontend')
    try {
      const settings: Partial<PackageSettings> = { lockWaitS: 1 }
      const ctx: SystemContext = { root: '/', dryRun: false, facts: debian, notified: { state: 'no', by: [] }, run: new Map([[PACKAGE_SETTINGS, settings]]), render: (t) => t, where: 'resources[0]', now: Date.now }
      const err = await packageOutcome({ id: 'sl', type: 'package', name: PACKAGE, ensure: 'present' } as PackageResource, ctx).catch((e: Error) => e)
      expect(err).toMatchObject({ name: 'PackageLockedError', lock: '/var/lib/dpkg/lock-frontend', seconds: 1 })
      expect((err as Error).message).toBe(`sl: /var/lib/dpkg/lock-frontend is held by process ${held.pid} (perl); waited 1 s for it, then gave up. Nothing was changed; the next apply tries again`)
    } finally {
      await held.release()
    }
    expect(await installedVersion(PACKAGE)).toBeUndefined()
  }, 120_000)
})
