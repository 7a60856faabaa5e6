import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { ApplyOptions } from '../../src/apply/index.js'
import type { PackageResource } from '../../src/policy/schema.js'
import type { SystemContext } from '../../src/apply/system.js'
import { packageOutcome, PACKAGE_SETTINGS, type PackageSettings } from '../../src/apply/packages/index.js'
import { runTool } from '../../src/apply/packages/tool.js'
import { buildDeb, holdDpkgLock, installedUnder } from '../helpers/deb.js'
import { policyOf, result, summary, useSandbox } from './helpers.js'

const debian: Partial<ApplyOptions> = { facts: { id: 'node-1', name: 'web1', tags: {}, facts: { os: { family: 'debian' } } } }

/** The dpkg runs the sandbox's log records: one "startup" line per dpkg run that changed something. */
async function dpkgRuns (root: string): Promise<string[]> {
  const log = join(root, 'var/log/dpkg.log')
  if (!existsSync(log)) return []
  return (await readFile(log, 'utf8')).split('\n').filter((l) => / startup (archives|packages) /.test(l))
}

function pkg (id: string, name: string, ensure: string, source?: string): Record<string, unknown> {
  return { id, type: 'package', name, ensure, ...(source !== undefined ? { source } : {}) }
}

describe('package resources in a sandbox root (dpkg --root, real .debs)', () => {
  const sandbox = useSandbox()

  async function debs (root: string): Promise<void> {
    await buildDeb(join(root, 'debs/gv-a_1.0-1.deb'), { name: 'gv-a', version: '1.0-1', files: { 'usr/share/gv-a/version': 'one\n' } })
    await buildDeb(join(root, 'debs/gv-a_2.0-1.deb'), { name: 'gv-a', version: '2.0-1', files: { 'usr/share/gv-a/version': 'two\n' } })
    await buildDeb(join(root, 'debs/gv-b_0.5.deb'), { name: 'gv-b', version: '0.5', files: { 'usr/share/gv-b/readme': 'b\n' } })
  }

  it('installs from source, then a second apply changes nothing and runs no dpkg', async () => {
    const s = sandbox()
    await debs(s.root)
    const policy = policyOf([pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb')])
    const first = await s.apply(policy, debian)
    expect(result(first, 'a')).toMatchObject({ type: 'package', name: 'gv-a', action: 'create', status: 'ok', reason: 'install gv-a 1.0-1', changes: [{ field: 'version', to: '1.0-1' }] })
    expect(await installedUnder(s.root)).toEqual({ 'gv-a': '1.0-1' })
    expect(await readFile(s.at('usr/share/gv-a/version'), 'utf8')).toBe('one\n')
    const runs = (await dpkgRuns(s.root)).length
    expect(runs).toBe(1)

    const second = await s.apply(policy, debian)
    expect(summary(second)).toEqual(['a:none/ok'])
    expect(await dpkgRuns(s.root)).toHaveLength(runs)
  })

  it('upgrades to a named version, downgrades back, and takes latest from the source', async () => {
    const s = sandbox()
    await debs(s.root)
    await s.apply(policyOf([pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb')]), debian)

    const up = await s.apply(policyOf([pkg('a', 'gv-a', '2.0-1', '/debs/gv-a_2.0-1.deb')]), debian)
    expect(result(up, 'a')).toMatchObject({ action: 'modify', status: 'ok', reason: 'upgrade gv-a 1.0-1 → 2.0-1', changes: [{ field: 'version', from: '1.0-1', to: '2.0-1' }] })
    expect(await readFile(s.at('usr/share/gv-a/version'), 'utf8')).toBe('two\n')

    // present is satisfied by any version: the older source is not installed over it.
    expect(summary(await s.apply(policyOf([pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb')]), debian))).toEqual(['a:none/ok'])

    const down = await s.apply(policyOf([pkg('a', 'gv-a', '1.0-1', '/debs/gv-a_1.0-1.deb')]), debian)
    expect(result(down, 'a')).toMatchObject({ action: 'modify', status: 'ok', reason: 'downgrade gv-a 2.0-1 → 1.0-1' })
    expect(await installedUnder(s.root)).toEqual({ 'gv-a': '1.0-1' })

    const latest = await s.apply(policyOf([pkg('a', 'gv-a', 'latest', '/debs/gv-a_2.0-1.deb')]), debian)
    expect(result(latest, 'a')).toMatchObject({ action: 'modify', reason: 'upgrade gv-a 1.0-1 → 2.0-1' })
    expect(summary(await s.apply(policyOf([pkg('a', 'gv-a', 'latest', '/debs/gv-a_2.0-1.deb')]), debian))).toEqual(['a:none/ok'])
  })

  it('removes with ensure: absent (no source needed), then does nothing', async () => {
    const s = sandbox()
    await debs(s.root)
    await s.apply(policyOf([pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb')]), debian)
    const policy = policyOf([pkg('a', 'gv-a', 'absent')])
    const removed = await s.apply(policy, debian)
    expect(result(removed, 'a')).toMatchObject({ action: 'delete', status: 'ok', reason: 'remove gv-a 1.0-1', changes: [{ field: 'version', from: '1.0-1' }] })
    expect(await installedUnder(s.root)).toEqual({})
    expect(existsSync(s.at('usr/share/gv-a/version'))).toBe(false)
    expect(summary(await s.apply(policy, debian))).toEqual(['a:none/ok'])
  })

  it('plans install, upgrade and remove with versions and changes nothing', async () => {
    const s = sandbox()
    await debs(s.root)
    const fresh = await s.plan(policyOf([pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb'), pkg('b', 'gv-b', 'absent')]), debian)
    expect(fresh.dryRun).toBe(true)
    expect(summary(fresh)).toEqual(['a:create/ok', 'b:none/ok'])
    expect(result(fresh, 'a').reason).toBe('install gv-a 1.0-1')
    expect(await installedUnder(s.root)).toEqual({})
    expect(existsSync(s.at('usr/share/gv-a'))).toBe(false)

    await s.apply(policyOf([pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb'), pkg('b', 'gv-b', 'present', '/debs/gv-b_0.5.deb')]), debian)
    const runs = (await dpkgRuns(s.root)).length
    const plan = await s.plan(policyOf([pkg('a', 'gv-a', '2.0-1', '/debs/gv-a_2.0-1.deb'), pkg('b', 'gv-b', 'absent')]), debian)
    expect(result(plan, 'a')).toMatchObject({ action: 'modify', status: 'ok', reason: 'upgrade gv-a 1.0-1 → 2.0-1' })
    expect(result(plan, 'b')).toMatchObject({ action: 'delete', status: 'ok', reason: 'remove gv-b 0.5' })
    expect(await installedUnder(s.root)).toEqual({ 'gv-a': '1.0-1', 'gv-b': '0.5' })
    expect(await dpkgRuns(s.root)).toHaveLength(runs)
  })

  it('installs adjacent packages in one dpkg run, each with its own result', async () => {
    const s = sandbox()
    await debs(s.root)
    const report = await s.apply(policyOf([pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb'), pkg('b', 'gv-b', 'present', '/debs/gv-b_0.5.deb')]), debian)
    expect(summary(report)).toEqual(['a:create/ok', 'b:create/ok'])
    expect(await installedUnder(s.root)).toEqual({ 'gv-a': '1.0-1', 'gv-b': '0.5' })
    const runs = await dpkgRuns(s.root)
    expect(runs).toHaveLength(1)
    expect(runs[0]).toMatch(/startup archives install$/)

    // Removing both is one run too.
    await s.apply(policyOf([pkg('a', 'gv-a', 'absent'), pkg('b', 'gv-b', 'absent')]), debian)
    expect(await dpkgRuns(s.root)).toHaveLength(2)
    expect(await installedUnder(s.root)).toEqual({})
  })

  it('fails the member dpkg refused with the tool\'s error tail, and keeps the one it installed', async () => {
    const s = sandbox()
    await debs(s.root)
    // gv-c ships a file gv-a owns: dpkg refuses to overwrite it.
    await buildDeb(join(s.root, 'debs/gv-c_1.deb'), { name: 'gv-c', version: '1', files: { 'usr/share/gv-a/version': 'c\n' } })
    await s.apply(policyOf([pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb')]), debian)
    const report = await s.apply(policyOf([pkg('b', 'gv-b', 'present', '/debs/gv-b_0.5.deb'), pkg('c', 'gv-c', 'present', '/debs/gv-c_1.deb')]), debian)
    expect(summary(report)).toEqual(['b:create/ok', 'c:none/failed'])
    expect(result(report, 'c').error?.name).toBe('PackageCommandFailedError')
    expect(result(report, 'c').error?.message).toMatch(/^dpkg --install gv-b gv-c: exited 1:\n/)
    expect(result(report, 'c').error?.message).toContain("trying to overwrite '/usr/share/gv-a/version', which is also in package gv-a")
    expect(result(report, 'b').warnings?.[0]).toMatch(/gv-b is as the policy wants, but the transaction it was part of failed/)
    expect(await installedUnder(s.root)).toEqual({ 'gv-a': '1.0-1', 'gv-b': '0.5' })
  })

  it('fails by name without a source, with a source of another package, or with a version the source is not', async () => {
    const s = sandbox()
    await debs(s.root)
    const report = await s.apply(policyOf([
      pkg('none', 'gv-a', 'present'),
      pkg('other', 'gv-other', 'present', '/debs/gv-b_0.5.deb'),
      pkg('wrong', 'gv-b', '0.6', '/debs/gv-b_0.5.deb')
    ]), debian)
    expect(result(report, 'none').error).toEqual({ name: 'PackageSourceError', message: `package gv-a: the dpkg provider installs only from a package file: give source (a .deb path under the root ${s.root}), or put gv-a_VERSION_ARCH.deb in ${join(s.root, 'var/cache/apt/archives')} (none there)` })
    expect(result(report, 'other').error).toEqual({ name: 'PackageSourceError', message: 'package gv-other: /debs/gv-b_0.5.deb holds the package gv-b, not gv-other' })
    expect(result(report, 'wrong').error).toEqual({ name: 'PackageNotFoundError', message: 'package gv-b 0.6: not offered; offered: 0.5' })
    expect(await installedUnder(s.root)).toEqual({})
  })

  it('needs an os.family it knows, or provider:', async () => {
    const s = sandbox()
    await debs(s.root)
    const unknown = await s.apply(policyOf([pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb')]), { facts: { id: 'n', name: 'n', tags: {}, facts: { os: { family: 'plan9' } } } })
    expect(result(unknown, 'a').error).toEqual({ name: 'ProviderUnavailableError', message: 'package gv-a: no package provider for os.family "plan9" (known: debian, ubuntu); name one with provider:' })
    const none = await s.apply(policyOf([pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb')]))
    expect(result(none, 'a').error?.name).toBe('ProviderUnavailableError')
    const apt = await s.apply(policyOf([{ ...pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb'), provider: 'apt' }]), debian)
    expect(result(apt, 'a').error?.message).toMatch(/apt manages only the root \//)
    const named = await s.apply(policyOf([{ ...pkg('a', 'gv-a', 'present', '/debs/gv-a_1.0-1.deb'), provider: 'dpkg' }]), { facts: { id: 'n', name: 'n', tags: {}, facts: { os: { family: 'plan9' } } } })
    expect(summary(named)).toEqual(['a:create/ok'])
  })
})

describe('package transactions, with the tool runner counted', () => {
  const sandbox = useSandbox()

  function context (root: string, run: Map<string, unknown>, dryRun = false): SystemContext {
    return { root, dryRun, facts: { id: 'n', name: 'n', tags: {}, facts: { os: { family: 'debian' } } }, notified: { state: 'no', by: [] }, run, render: (t) => t, where: 'resources[0]', now: Date.now }
  }

  function counting (settings: Partial<PackageSettings> = {}): { calls: string[][], run: Map<string, unknown> } {
    const calls: string[][] = []
    const run = new Map<string, unknown>([[PACKAGE_SETTINGS, { ...settings, run: async (argv: string[], opts: Parameters<typeof runTool>[1]) => { calls.push(argv); return await runTool(argv, opts) } }]])
    return { calls, run }
  }

  const resource = (name: string, ensure: string, source?: string): PackageResource => ({ id: name, type: 'package', name, ensure, ...(source !== undefined ? { source } : {}) }) as PackageResource

  it('three packages started together: one dpkg-query, one dpkg --install; again: only the query', async () => {
    const s = sandbox()
    for (const n of ['x', 'y', 'z']) await buildDeb(join(s.root, `debs/gv-${n}.deb`), { name: `gv-${n}`, version: '1', files: { [`usr/share/gv-${n}`]: n } })
    const first = counting()
    const outcomes = await Promise.all(['x', 'y', 'z'].map(async (n) => await packageOutcome(resource(`gv-${n}`, 'present', `/debs/gv-${n}.deb`), context(s.root, first.run))))
    expect(outcomes.map((o) => `${o.action}/${o.status}`)).toEqual(['create/ok', 'create/ok', 'create/ok'])
    const tools = first.calls.map((c) => c[0])
    // The query before, three dpkg-deb -f reads of the sources, one install, the query after.
    expect(tools.filter((t) => t === 'dpkg')).toHaveLength(1)
    expect(tools.filter((t) => t === 'dpkg-query')).toHaveLength(2)
    expect(first.calls.find((c) => c[0] === 'dpkg')).toEqual(expect.arrayContaining(['--install', join(s.root, 'debs/gv-x.deb'), join(s.root, 'debs/gv-y.deb'), join(s.root, 'debs/gv-z.deb')]))

    const again = counting()
    const noop = await Promise.all(['x', 'y', 'z'].map(async (n) => await packageOutcome(resource(`gv-${n}`, 'present', `/debs/gv-${n}.deb`), context(s.root, again.run))))
    expect(noop.map((o) => o.action)).toEqual(['none', 'none', 'none'])
    expect(again.calls.map((c) => c[0])).toEqual(['dpkg-query'])
  })

  it('waits for another process\'s dpkg lock up to the bound, then fails every member by name; nothing changes', async () => {
    const s = sandbox()
    await buildDeb(join(s.root, 'debs/gv-x.deb'), { name: 'gv-x', version: '1' })
    await buildDeb(join(s.root, 'debs/gv-y.deb'), { name: 'gv-y', version: '1' })
    const lockFile = join(s.root, 'var/lib/dpkg/lock-frontend')
    const held = await holdDpkgLock(lockFile)
    try {
      const { calls, run } = counting({ lockWaitS: 1 })
      const [x, y] = await Promise.all(['gv-x', 'gv-y'].map(async (n) => await packageOutcome(resource(n, 'present', `/debs/${n}.deb`), context(s.root, run)).catch((e: Error) => e)))
      const message = `gv-x, gv-y: ${lockFile} is held by process ${held.pid}; waited 1 s for it, then gave up. Nothing was changed; the next apply tries again`
      expect(x).toMatchObject({ name: 'PackageLockedError', lock: lockFile, seconds: 1, message })
      expect(y).toMatchObject({ name: 'PackageLockedError', message })
      // It tried again while waiting, rather than once.
      expect(calls.filter((c) => c[0] === 'dpkg').length).toBeGreaterThan(1)
    } finally {
      await held.release()
    }
    expect(await installedUnder(s.root)).toEqual({})
  })

  it('goes ahead once the lock is released within the bound', async () => {
    const s = sandbox()
    await buildDeb(join(s.root, 'debs/gv-x.deb'), { name: 'gv-x', version: '1' })
    const held = await holdDpkgLock(join(s.root, 'var/lib/dpkg/lock-frontend'))
    const calls: string[][] = []
    const settings: PackageSettings = {
      lockWaitS: 60,
      // Releases the lock after dpkg has been refused once.
      run: async (argv, opts) => {
        calls.push(argv)
        const r = await runTool(argv, opts)
        if (argv[0] === 'dpkg' && r.exitCode !== 0) await held.release()
        return r
      }
    }
    const run = new Map<string, unknown>([[PACKAGE_SETTINGS, settings]])
    try {
      const outcome = await packageOutcome(resource('gv-x', 'present', '/debs/gv-x.deb'), context(s.root, run))
      expect(outcome).toMatchObject({ action: 'create', status: 'ok' })
      expect(calls.filter((c) => c[0] === 'dpkg')).toHaveLength(2)
    } finally {
      await held.release()
    }
    expect(await installedUnder(s.root)).toEqual({ 'gv-x': '1' })
  })
  it('stops waiting for the lock when the apply is aborted', async () => {
    const s = sandbox()
    await buildDeb(join(s.root, 'debs/gv-x.deb'), { name: 'gv-x', version: '1' })
    const held = await holdDpkgLock(join(s.root, 'var/lib/dpkg/lock-frontend'))
    const stop = new AbortController()
    const settings: PackageSettings = {
      lockWaitS: 600,
      // Aborts once dpkg has been refused the lock.
      run: async (argv, opts) => {
        const r = await runTool(argv, opts)
        if (argv[0] === 'dpkg' && r.exitCode !== 0) stop.abort()
        return r
      }
    }
    try {
      const err = await packageOutcome(resource('gv-x', 'present', '/debs/gv-x.deb'), { ...context(s.root, new Map([[PACKAGE_SETTINGS, settings]])), signal: stop.signal }).catch((e: Error) => e)
      expect(err).toMatchObject({ name: 'PackageCommandFailedError', message: `dpkg --install gv-x: stopped while waiting for ${join(s.root, 'var/lib/dpkg/lock-frontend')}: the apply was aborted` })
    } finally {
      await held.release()
    }
    expect(await installedUnder(s.root)).toEqual({})
  })
})
