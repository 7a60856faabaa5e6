import { existsSync } from 'node:fs'
import { mkdir, readFile, readlink, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT, runCli, type CliResult } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'
import { agentProcesses } from '../helpers/agent-process.js'
import { buildDeb, installedUnder } from '../helpers/deb.js'
import { buildNginxDeb, DEMO_NGINX_VERSION, seedDebianRoot } from '../../src/sim/debian-root.js'
import { sandboxChange, readSandboxRecord } from '../../src/apply/services/sandbox.js'
import { policyOf, result, summary, useSandbox } from './helpers.js'
import type { ApplyOptions } from '../../src/apply/index.js'
import { generateSigningKey } from '../../src/envelope/index.js'

// policies/web-server.yaml as an operator rehearses it: `grapevine apply --root SANDBOX
// --sandbox-services` into a root seeded like a fresh Debian machine that downloaded nginx, with
// the real dpkg, useradd, groupadd and systemctl --root. Runs as root, as CI does.

const POLICY = join(REPO_ROOT, 'policies', 'web-server.yaml')

interface Report { resources: Array<{ id: string, name?: string, action: string, status: string, reason?: string, changes?: Array<{ field: string, from?: string, to?: string }>, error?: { name: string, message: string } }> }

const output = (r: CliResult): string => r.stdout + r.stderr
const report = (r: CliResult): Report => JSON.parse(r.stdout) as Report
const lineOf = (text: string, name: string): string[] => (text.split('\n').find((l) => l.startsWith(`${name}:`)) ?? '').split(':')

describe('policies/web-server.yaml in a sandbox root', () => {
  const dir = useTempDir('grapevine-web-server-')

  async function seeded (): Promise<{ root: string, args: (cmd: string, ...more: string[]) => string[] }> {
    const root = join(dir(), 'root')
    const facts = join(dir(), 'facts.d')
    await mkdir(facts, { recursive: true })
    await seedDebianRoot(root, await buildNginxDeb(join(dir(), 'debs')))
    const args = (cmd: string, ...more: string[]): string[] => [cmd, POLICY, '--root', root, '--state', join(dir(), 'state'), '--tag', 'role=web', '--facts-dir', facts, ...more]
    return { root, args }
  }

  it('installs nginx from the archive cache, makes the app account, enables and starts nginx (sandbox), writes the facts; again: nothing', async () => {
    const { root, args } = await seeded()
    const facts = JSON.parse((await runCli(['facts', '--json'])).stdout) as { fqdn: string, processors: { count: number } }

    // A plan reads the archive cache and changes nothing. (On a fresh root it cannot plan the site
    // or the runtime file: their directory and owner come from the package and user before them.)
    const plan = await runCli(args('plan', '--sandbox-services'))
    expect(plan.stdout, output(plan)).toContain(`install nginx ${DEMO_NGINX_VERSION}`)
    expect(await installedUnder(root)).toEqual({})

    const first = await runCli(args('apply', '--sandbox-services', '--json'))
    expect(first.code, output(first)).toBe(2)
    const r = report(first)
    expect(r.resources.map((x) => `${x.id}:${x.action}/${x.status}`).sort()).toEqual([
      'app-etc:create/ok', 'app-group:create/ok', 'app-user:create/ok', 'nginx-svc:modify/ok', 'nginx:create/ok', 'runtime:create/ok', 'site:create/ok'
    ])
    // Started in this apply, so the site's notification needs no reload; the transition says it was recorded, not made.
    const svc = r.resources.find((x) => x.id === 'nginx-svc')
    expect(svc?.changes).toEqual([{ field: 'enabled', from: 'false', to: 'true' }, { field: 'state', from: 'stopped', to: 'running (sandbox)' }])
    expect(svc?.reason).toContain(`sandbox service runtime: no process started; the state is recorded in ${join(root, 'run/grapevine/services/nginx.service')}`)

    // The package, from ROOT/var/cache/apt/archives, in the root's own dpkg database.
    expect(await installedUnder(root)).toEqual({ nginx: DEMO_NGINX_VERSION })
    expect(existsSync(join(root, 'usr/sbin/nginx'))).toBe(true)
    // The account: a system user with its own group, in www-data, home made.
    const group = lineOf(await readFile(join(root, 'etc/group'), 'utf8'), 'app')
    const user = lineOf(await readFile(join(root, 'etc/passwd'), 'utf8'), 'app')
    expect(Number(user[2])).toBeLessThan(1000)
    expect(user[3]).toBe(group[2])
    expect(user.slice(4)).toEqual(['Grapevine example app', '/srv/app', '/usr/sbin/nologin'])
    expect(lineOf(await readFile(join(root, 'etc/group'), 'utf8'), 'www-data')[3]).toBe('app')
    expect((await stat(join(root, 'srv/app'))).uid).toBe(Number(user[2]))
    // The site, templated from vars and facts.
    const site = await readFile(join(root, 'etc/nginx/sites-enabled/app.conf'), 'utf8')
    expect(site).toContain('listen 80;')
    expect(site).toContain(`server_name ${facts.fqdn};`)
    // The service: enabled for real (systemctl --root), running as recorded by the sandbox runtime.
    expect(await readlink(join(root, 'etc/systemd/system/multi-user.target.wants/nginx.service'))).toBe('/lib/systemd/system/nginx.service')
    expect(await readSandboxRecord(root, 'nginx.service')).toEqual({ unit: 'nginx.service', state: 'running', started: 1, stopped: 0, restarted: 0, reloaded: 0 })
    // The runtime file, from facts, owned by app.
    const env = await readFile(join(root, 'etc/app/runtime.env'), 'utf8')
    expect(env).toContain(`WORKERS=${facts.processors.count}\n`)
    expect(env).toContain(`HOST=${facts.fqdn}\n`)
    const info = await stat(join(root, 'etc/app/runtime.env'))
    expect([info.uid, info.gid, info.mode & 0o777]).toEqual([Number(user[2]), Number(group[2]), 0o640])

    // Again: every resource unchanged, no dpkg run, the record untouched.
    const dpkgLog = await readFile(join(root, 'var/log/dpkg.log'), 'utf8')
    const record = await readFile(join(root, 'run/grapevine/services/nginx.service'), 'utf8')
    const passwd = await readFile(join(root, 'etc/passwd'), 'utf8')
    const second = await runCli(args('apply', '--sandbox-services', '--json'))
    expect(second.code, output(second)).toBe(0)
    expect(report(second).resources.every((x) => x.action === 'none' && x.status === 'ok')).toBe(true)
    expect(await readFile(join(root, 'var/log/dpkg.log'), 'utf8')).toBe(dpkgLog)
    expect(await readFile(join(root, 'run/grapevine/services/nginx.service'), 'utf8')).toBe(record)
    expect(await readFile(join(root, 'etc/passwd'), 'utf8')).toBe(passwd)

    // A hand edit of the site: put back, and nginx reloaded (its unit has ExecReload=), not restarted.
    await writeFile(join(root, 'etc/nginx/sites-enabled/app.conf'), 'server { listen 8081; }\n')
    const repaired = await runCli(args('apply', '--sandbox-services'))
    expect(repaired.code, output(repaired)).toBe(2)
    expect(repaired.stdout).toMatch(/reload: notified by "site" \(sandbox\)/)
    expect(await readSandboxRecord(root, 'nginx.service')).toMatchObject({ state: 'running', started: 1, restarted: 0, reloaded: 1 })

    // nginx found stopped (as after a crash): plan says it would start it, from the record, and changes nothing; apply starts it.
    const stopped = JSON.stringify({ ...(await readSandboxRecord(root, 'nginx.service')), state: 'stopped' }) + '\n'
    await writeFile(join(root, 'run/grapevine/services/nginx.service'), stopped)
    const planned = await runCli(args('plan', '--sandbox-services'))
    expect(planned.code, output(planned)).toBe(2)
    expect(planned.stdout).toMatch(/~ modify\s+service\s+nginx-svc\s+nginx\n.*no process would start.*\n\s+state: stopped -> running \(sandbox\)\n/)
    expect(await readFile(join(root, 'run/grapevine/services/nginx.service'), 'utf8')).toBe(stopped)
    const restarted = await runCli(args('apply', '--sandbox-services'))
    expect(restarted.code, output(restarted)).toBe(2)
    expect(await readSandboxRecord(root, 'nginx.service')).toMatchObject({ state: 'running', started: 2, reloaded: 1 })
  }, 60_000)

  it('without --sandbox-services the service fails by name after its enablement, as before; with --root / the flag is refused', async () => {
    const { root, args } = await seeded()
    const r = await runCli(args('apply', '--json'))
    expect(r.code, output(r)).toBe(6)
    const svc = report(r).resources.find((x) => x.id === 'nginx-svc')
    expect(svc?.error?.name).toBe('ServiceRuntimeUnavailableError')
    expect(svc?.error?.message).toContain('enablement was applied (enabled)')
    expect(existsSync(join(root, 'run/grapevine'))).toBe(false)

    const refused = await runCli(['apply', POLICY, '--root', '/', '--sandbox-services', '--state', join(dir(), 'state2')])
    expect(refused.code).toBe(64)
    expect(refused.stderr).toContain('--sandbox-services is for rehearsals under a sandbox --root DIR')
    // The agent refuses it before it starts anything, as any option that cannot work.
    const agent = await runCli(['agent', '--trust', generateSigningKey().id, '--sandbox-services', '--state', join(dir(), 'agent'), '--no-api', '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(agent.code, output(agent)).toBe(64)
    expect(agent.stderr).toContain('--sandbox-services is for rehearsals under a sandbox --root DIR; on / services run through systemd')
  }, 60_000)
})

describe('grapevine agent --sandbox-services', () => {
  const dir = useTempDir('grapevine-web-server-agent-')
  const start = agentProcesses()

  it('applies a published web-server.yaml into its seeded root: nginx installed, enabled, and recorded running', async () => {
    const root = join(dir(), 'root')
    const state = join(dir(), 'state')
    await seedDebianRoot(root, await buildNginxDeb(join(dir(), 'debs')))
    const key = join(dir(), 'root.key')
    const keygen = await runCli(['keygen', '--out', key])
    expect(keygen.code, output(keygen)).toBe(0)
    const agent = await start(['--name', 'web-1', '--tag', 'role=web', '--state', state, '--root', root, '--trust', `${key}.pub`, '--sandbox-services'])
    expect(agent.lines.find((l) => l.msg === 'agent started')?.serviceRuntime).toMatch(/^sandbox/)
    const published = await runCli(['publish', POLICY, '--key', key, '--state', state, '--wait'], { timeoutMs: 60_000 })
    expect(published.code, output(published)).toBe(0)
    expect(await installedUnder(root)).toEqual({ nginx: DEMO_NGINX_VERSION })
    // The link points inside the root (systemctl --root writes it as the machine would see it).
    expect(await readlink(join(root, 'etc/systemd/system/multi-user.target.wants/nginx.service'))).toBe('/lib/systemd/system/nginx.service')
    expect(await readSandboxRecord(root, 'nginx.service')).toMatchObject({ state: 'running', started: 1 })
  }, 90_000)
})

describe('the dpkg provider and the archive cache of a sandbox root', () => {
  const sandbox = useSandbox()
  const debian: Partial<ApplyOptions> = { facts: { id: 'node-1', name: 'web1', tags: {}, facts: { os: { family: 'debian' } } } }
  const pkg = (ensure: string): Record<string, unknown> => ({ id: 'x', type: 'package', name: 'gv-x', ensure })

  it('takes the newest version there, or the exact one asked for, and names the directory when none is there', async () => {
    const s = sandbox()
    const archives = s.at('var/cache/apt/archives')
    const missing = await s.plan(policyOf([pkg('present')]), debian)
    expect(result(missing, 'x').error).toEqual({ name: 'PackageSourceError', message: `package gv-x: the dpkg provider installs only from a package file: give source (a .deb path under the root ${s.root}), or put gv-x_VERSION_ARCH.deb in ${archives} (none there)` })

    await buildDeb(join(archives, 'gv-x_1.0-1_all.deb'), { name: 'gv-x', version: '1.0-1' })
    await buildDeb(join(archives, 'gv-x_1.10-1_all.deb'), { name: 'gv-x', version: '1.10-1' })
    await buildDeb(join(archives, 'gv-x_1.9-1_all.deb'), { name: 'gv-x', version: '1.9-1' })
    // Another package's file, even when named like this one's, is not this package.
    await buildDeb(join(archives, 'gv-x_9.0-1_all.deb'), { name: 'gv-other', version: '9.0-1' })
    await writeFile(join(archives, 'gv-x_2.0-1_all.deb.partial'), 'not a package')

    const latest = await s.apply(policyOf([pkg('latest')]), debian)
    expect(summary(latest)).toEqual(['x:create/ok'])
    expect(result(latest, 'x').reason).toBe('install gv-x 1.10-1')
    expect(await installedUnder(s.root)).toEqual({ 'gv-x': '1.10-1' })

    const exact = await s.apply(policyOf([pkg('1.0-1')]), debian)
    expect(result(exact, 'x').reason).toBe('downgrade gv-x 1.10-1 → 1.0-1')
    expect(await installedUnder(s.root)).toEqual({ 'gv-x': '1.0-1' })

    const absentVersion = await s.plan(policyOf([pkg('3.0-1')]), debian)
    expect(result(absentVersion, 'x').error).toEqual({ name: 'PackageNotFoundError', message: 'package gv-x 3.0-1: not offered; offered: 1.10-1, 1.9-1, 1.0-1' })
  }, 60_000)
})

describe('the sandbox service runtime', () => {
  const dir = useTempDir('grapevine-sandbox-services-')

  it('counts each transition as systemctl would make it: try- verbs do nothing to a stopped unit; a unit without ExecReload= restarts', async () => {
    const root = dir()
    await mkdir(join(root, 'lib/systemd/system'), { recursive: true })
    await writeFile(join(root, 'lib/systemd/system/plain.service'), '[Service]\nExecStart=/bin/true\n')
    expect(await sandboxChange(root, 'try-restart', 'plain.service')).toMatchObject({ state: 'stopped', restarted: 0 })
    expect(await sandboxChange(root, 'start', 'plain.service')).toMatchObject({ state: 'running', started: 1 })
    expect(await sandboxChange(root, 'start', 'plain.service')).toMatchObject({ started: 1 })
    expect(await sandboxChange(root, 'try-reload-or-restart', 'plain.service')).toMatchObject({ restarted: 1, reloaded: 0 })
    expect(await sandboxChange(root, 'stop', 'plain.service')).toEqual({ unit: 'plain.service', state: 'stopped', started: 1, stopped: 1, restarted: 1, reloaded: 0 })
    await writeFile(join(root, 'run/grapevine/services/plain.service'), '{"state":"maybe"}')
    await expect(readSandboxRecord(root, 'plain.service')).rejects.toThrow(/SandboxServiceStateError|not a sandbox service record/)
  })

  const sandbox = useSandbox()
  it('plans a unit its package has not installed yet with the transition labelled (sandbox), and only under a sandbox root', async () => {
    const s = sandbox()
    const policy = policyOf([{ id: 'svc', type: 'service', name: 'nginx', enable: true, state: 'running' }])
    const planned = await s.plan(policy, { serviceRuntime: 'sandbox' })
    expect(result(planned, 'svc')).toMatchObject({ action: 'modify', status: 'unknown', changes: [{ field: 'enabled', to: 'true' }, { field: 'state', to: 'running (sandbox)' }] })
    const plain = await s.plan(policy)
    expect(result(plain, 'svc').changes).toEqual([{ field: 'enabled', to: 'true' }, { field: 'state', to: 'running' }])
  })
})
