// `grapevine sim` and `grapevine demo` as a user runs them: spawned, output read, files looked at.
import { existsSync } from 'node:fs'
import { execFile, spawn } from 'node:child_process'
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CLI_PATH, runCli, REPO_ROOT } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'
import { DEMO_NGINX_VERSION, rehearsalUnavailable } from '../../src/sim/debian-root.js'

const run = promisify(execFile)

describe('grapevine sim', () => {
  const dir = useTempDir('grapevine-sim-cli-')

  it('reports every problem in a scenario file with file, line and field (exit 1)', async () => {
    const file = join(dir(), 'bad.yaml')
    await writeFile(file, 'name: bad\nnodes: { count: 3 }\ntimeline:\n  - { at: 1, do: publish, policy: nope }\n')
    const r = await runCli(['sim', file])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('1 problem in')
    expect(r.stderr).toContain(`${file}:4:11: timeline[0].at: expected a duration with a unit, like "2s", "1.5s" or "500ms", got 1`)
  })

  it('says when no such scenario exists (exit 69)', async () => {
    const r = await runCli(['sim', 'no-such-scenario'])
    expect(r.code).toBe(69)
    expect(r.stderr).toMatch(/no scenario file "no-such-scenario"/)
  })

  it('runs a scenario, prints plain progress without a terminal, and writes JSON and the report', async () => {
    const file = join(dir(), 'tiny.yaml')
    await writeFile(file, [
      'name: tiny',
      'nodes: { count: 3, tags: [{ role: web }] }',
      `policies: { motd: ${join(REPO_ROOT, 'simulations', 'policies', 'motd.yaml')} }`,
      'timeline:',
      '  - { at: 200ms, do: publish, policy: motd, id: first }',
      'expect:',
      '  - { check: delivered, within: 5s }',
      '  - { check: no-failures }',
      ''
    ].join('\n'))
    const out = join(dir(), 'out')
    const r = await runCli(['sim', file, '--out', out, '--settle', '0', '--deadline-scale', '4', '--json', '--seed', '3'], { timeoutMs: 90_000, env: { CI: 'true' } })
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout) as { passed: boolean, scenario: { seed: number }, publishes: Array<{ id: string, applied: number, targeted: number, times: { t100?: number } }>, files: { report: string } }
    expect(result.passed).toBe(true)
    expect(result.scenario.seed).toBe(3)
    const first = result.publishes.find((p) => p.id === 'first')
    expect(first).toMatchObject({ applied: 3, targeted: 3 })
    expect(first?.times.t100).toBeGreaterThanOrEqual(0)
    // Progress went to stderr, as plain lines (no terminal control codes).
    expect(r.stderr).toMatch(/publish base\/motd v1 from node-0/)
    expect(r.stderr).not.toContain('\x1b[')
    const html = await readFile(result.files.report, 'utf8')
    expect(html).toContain('<svg')
    expect(existsSync(join(out, 'nodes', 'node-2', 'root', 'etc', 'motd'))).toBe(true)
  }, 100_000)

  it('Ctrl-C ends a run at once: INTERRUPTED, exit 130, results.json says interrupted and not passed', async () => {
    const file = join(dir(), 'long.yaml')
    await writeFile(file, [
      'name: long',
      'nodes: { count: 3, tags: [{ role: web }] }',
      `policies: { motd: ${join(REPO_ROOT, 'simulations', 'policies', 'motd.yaml')} }`,
      'timeline:',
      '  - { at: 200ms, do: publish, policy: motd, id: first }',
      '  - { at: 10m, do: publish, policy: motd, id: late }',
      'expect:',
      '  - { check: delivered, within: 5s }',
      ''
    ].join('\n'))
    const out = join(dir(), 'out')
    // In a group of its own, so that the interrupt reaches it and its workers, as Ctrl-C in a terminal does.
    const child = spawn(process.execPath, [CLI_PATH, 'sim', file, '--out', out, '--settle', '0'], { env: { ...process.env, CI: 'true', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let stdout = ''
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
    // Interrupt once the first publish has been applied everywhere, long before the 10-minute one.
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (b: Buffer) => {
        stdout += b.toString()
        if (/first \(base\/motd v1\): 100% of 3 targeted nodes applied/.test(stdout)) resolve()
      })
      void exited.then(() => { reject(new Error(`the run ended before it was interrupted: ${stdout}${stderr}`)) })
    })
    process.kill(-(child.pid as number), 'SIGINT')
    expect(await exited).toBe(130)
    expect(stdout).toMatch(/^INTERRUPTED \(live engine\)/m)
    expect(stdout).not.toMatch(/PASSED/)
    const result = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as { interrupted?: boolean, passed: boolean, failures: string[] }
    expect(result).toMatchObject({ interrupted: true, passed: false })
    // The workers outlived the interrupt, so the coordinator stopped them: no worker "exited unexpectedly".
    expect(result.failures).toEqual(['interrupted'])
  }, 100_000)
})

describe('grapevine demo', () => {
  const dir = useTempDir('grapevine-demo-cli-')

  it('runs the local mesh end to end without a terminal and exits 0', async () => {
    const out = join(dir(), 'demo')
    const r = await runCli(['demo', '--nodes', '4', '--out', out], { timeoutMs: 110_000, env: { CI: 'true' } })
    expect(r.code, r.stdout + r.stderr).toBe(0)
    for (const step of ['1. Keys and trust', '2. Starting 4 agents', '3. Publishing as an admin', '4. What the agents wrote', '5. The web role in full', '6. Stopping', '7. Summary']) {
      expect(r.stdout).toContain(step)
    }
    expect(r.stdout).toMatch(/all 2 web nodes applied it/)
    expect(r.stdout).toMatch(/applied v2 .* after its restart/)
    expect(r.stdout).toContain(`Report (open it in a browser): ${join(out, 'report.html')}`)
    expect(r.stdout).not.toContain('\x1b[')
    expect(await readFile(join(out, 'nodes', 'node-1', 'root', 'etc', 'myapp', 'config.toml'), 'utf8')).toContain('level = "debug"')
    // The sandbox roots start empty, as in the README: each holds only what its policies made
    // (app.yaml creates /etc, web.yaml /etc and /srv), and on a web node, where this machine can
    // rehearse it, the fresh Debian seed and what web-server.yaml installed.
    expect((await readdir(join(out, 'nodes', 'node-1', 'root'))).sort()).toEqual(['etc'])
    const cannot = await rehearsalUnavailable()
    if (cannot === undefined) {
      expect((await readdir(join(out, 'nodes', 'node-0', 'root'))).sort()).toEqual(['etc', 'lib', 'run', 'srv', 'usr', 'var'])
      for (const node of ['node-0', 'node-2']) {
        expect(r.stdout).toContain(`${node}: package nginx ${DEMO_NGINX_VERSION} installed (dpkg, from its apt cache)`)
        expect(r.stdout).toMatch(new RegExp(`${node}: user app created \\(uid \\d+, home /srv/app, shell /usr/sbin/nologin\\)`))
        expect(r.stdout).toContain(`${node}: service nginx enabled (systemctl --root), running (sandbox: started 1, reloaded 0)`)
      }
      expect(r.stdout).toMatch(/│ WORKERS=\d+\n/)
      expect(r.stdout).toMatch(/all 2 web nodes applied it[^\n]*\n(?:.*\n)*?\s+node-0: package nginx/)
    } else {
      expect(r.stdout).toContain(`skipped: ${cannot}`)
      expect((await readdir(join(out, 'nodes', 'node-0', 'root'))).sort()).toEqual(['etc', 'srv'])
    }
    expect(r.stdout).not.toMatch(/ParentMissing|failed/)
    expect(existsSync(join(out, 'report.html'))).toBe(true)
  }, 120_000)

  it('where it cannot rehearse the web-server role (not root here), says why in one line, skips that step and exits 0', async () => {
    // As root (CI), the demo runs as nobody; otherwise as this user, who is not root either.
    const out = join(dir(), 'unprivileged')
    await mkdir(out)
    await chmod(dir(), 0o711) // mkdtemp's 0700 would keep nobody out
    await chmod(out, 0o777)
    const asNobody = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : []
    const argv = [...asNobody, process.execPath, CLI_PATH, 'demo', '--nodes', '4', '--out', join(out, 'demo')]
    const r = await run(argv[0] as string, argv.slice(1), { cwd: REPO_ROOT, env: { ...process.env, CI: 'true', NO_COLOR: '1', HOME: out }, timeout: 110_000 })
    const step = /5\. The web role in full[^\n]*\n(.*)\n\n6\. Stopping/.exec(r.stdout)
    expect(step?.[1], r.stdout).toBe('   skipped: it needs root (useradd --root and dpkg --root chroot and chown); as root on Debian it installs nginx, adds a user, enables nginx and records it started in each web root')
    expect(r.stdout).toMatch(/all 2 web nodes applied it/)
    expect(r.stdout).toContain('7. Summary')
  }, 120_000)
})
