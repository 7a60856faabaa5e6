import { describe, expect, it } from 'vitest'
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { cliCommand, runCli as run, type CliEntry, type RunCliOptions } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'
import type { ApplyReport } from '../../src/apply/index.js'

const exists = async (p: string): Promise<boolean> => await lstat(p).then(() => true, () => false)

const POLICY = `
name: web/motd
vars:
  greeting: hello
resources:
  - id: etc
    type: directory
    path: /etc
  - id: motd
    type: file
    path: /etc/motd
    content: "{{ vars.greeting }} from {{ node.name }} ({{ node.tags.role }})\\n"
    mode: "0644"
    notify: [announce]
  - id: app
    type: config
    path: /etc/app.json
    format: json
    data: { port: 8080 }
  - id: announce
    type: exec
    command: 'echo announced >> "$GRAPEVINE_ROOT/announced"'
    refreshonly: true
  - id: marker
    type: exec
    command: ["touch", "marker"]
    creates: /marker
`

// Both ways in: `node bin/grapevine.js`, and the `grapevine` command, which runs plan and
// apply from the CLI's startup snapshot (test/cli/snapshot.spec.ts checks that it does).
describe.each<CliEntry>(['module', 'launcher'])('grapevine plan / apply (%s)', (entry) => {
  const dir = useTempDir('grapevine-cli-apply-')
  const runCli = async (args: readonly string[], opts: RunCliOptions = {}): ReturnType<typeof run> => await run(args, { ...opts, entry })
  const setup = async (text = POLICY): Promise<{ file: string, root: string, args: string[] }> => {
    const file = join(dir(), 'policy.yaml')
    const root = join(dir(), 'root')
    await writeFile(file, text)
    await mkdir(root, { recursive: true })
    return { file, root, args: ['--root', root, '--state', join(dir(), 'state'), '--name', 'web1', '--tag', 'role=web'] }
  }

  it('plans without touching anything, applies, then has nothing to do', async () => {
    const { file, root, args } = await setup()

    const plan = await runCli(['plan', file, ...args])
    expect(plan.stderr).toBe('')
    expect(plan.code).toBe(2)
    expect(plan.stdout).toMatch(/^plan for "web\/motd" under .*: 3 to create, 2 to run, 0 unchanged \(nothing was changed\)$/m)
    expect(plan.stdout).toMatch(/\+ create +file +motd +\/etc\/motd/)
    expect(plan.stdout).toMatch(/> run +exec +announce +would run, notified by "motd"/)
    expect(await readdir(root)).toEqual([])
    expect(await exists(join(dir(), 'state'))).toBe(false)

    const apply = await runCli(['apply', file, ...args])
    expect(apply.code).toBe(2)
    expect(apply.stdout).toMatch(/^applied "web\/motd" under .*: 3 created, 2 ran, 0 unchanged in [\d.]+ s$/m)
    expect(await readFile(join(root, 'etc/motd'), 'utf8')).toBe('hello from web1 (web)\n')
    expect(await readFile(join(root, 'announced'), 'utf8')).toBe('announced\n')
    expect(await exists(join(root, 'marker'))).toBe(true)

    const again = await runCli(['apply', file, ...args])
    expect(again.code).toBe(0)
    expect(again.stdout.trim()).toMatch(/: 5 unchanged in [\d.]+ s$/)
    expect(await readFile(join(root, 'announced'), 'utf8')).toBe('announced\n')

    const quietPlan = await runCli(['plan', file, ...args])
    expect(quietPlan.code).toBe(0)
  })

  it('shows drift as a diff and repairs it', async () => {
    const { file, root, args } = await setup()
    await runCli(['apply', file, ...args])
    await writeFile(join(root, 'etc/motd'), 'defaced\n')

    const plan = await runCli(['plan', file, ...args])
    expect(plan.code).toBe(2)
    expect(plan.stdout).toContain('~ modify    file      motd')
    expect(plan.stdout).toContain('      -defaced\n      +hello from web1 (web)\n')
    expect(await readFile(join(root, 'etc/motd'), 'utf8')).toBe('defaced\n')

    const apply = await runCli(['apply', file, ...args])
    expect(apply.code).toBe(2)
    expect(await readFile(join(root, 'etc/motd'), 'utf8')).toBe('hello from web1 (web)\n')
    expect(await readFile(join(root, 'announced'), 'utf8')).toBe('announced\nannounced\n')
  })

  it('prints the report as JSON for scripts', async () => {
    const { file, args } = await setup()
    const out = await runCli(['apply', file, ...args, '--json'])
    expect(out.code).toBe(2)
    const report = JSON.parse(out.stdout) as ApplyReport
    expect(report).toMatchObject({ policy: 'web/motd', dryRun: false, outcome: 'changes', counts: { total: 5, changed: 5, failed: 0 } })
    expect(report.resources.map((r) => [r.id, r.action, r.status])).toEqual([
      ['etc', 'create', 'ok'], ['motd', 'create', 'ok'], ['app', 'create', 'ok'], ['announce', 'run', 'ok'], ['marker', 'run', 'ok']
    ])
  })

  it.each([
    ['4 for failures only', 'resources:\n  - { id: bad, type: exec, command: "echo nope >&2; exit 3" }\n', 4, /! failed +exec +bad[\s\S]*exited 3: nope/],
    ['6 for changes and failures', 'resources:\n  - { id: bad, type: exec, command: ["false"] }\n  - { id: ok, type: file, path: /ok, content: x }\n', 6, /1 created, 1 failed/]
  ])('exits %s', async (_name, body, code, output) => {
    const { file, args } = await setup(`name: t/failing\n${body}`)
    const out = await runCli(['apply', file, ...args])
    expect(out.code).toBe(code)
    expect(out.stdout).toMatch(output)
  })

  it('exits 1 for an invalid policy, naming a dependency cycle', async () => {
    const { file, args } = await setup('name: t/cycle\nresources:\n  - { id: a, type: exec, command: ["true"], requires: [b] }\n  - { id: b, type: exec, command: ["true"], requires: [a] }\n')
    for (const command of ['plan', 'apply']) {
      const out = await runCli([command, file, ...args])
      expect(out.code).toBe(1)
      expect(out.stderr).toContain('dependency cycle: a -> b -> a')
    }
  })

  it('exits 1 for a trust policy, which has nothing to apply', async () => {
    const { file, args } = await setup('kind: trust\nname: grapevine/trust\nadmins: []\n')
    const out = await runCli(['apply', file, ...args])
    expect(out.code).toBe(1)
    expect(out.stderr).toContain('a trust policy only tells agents whom to trust; there is nothing to apply')
  })

  it('does nothing for a node the policy does not target, unless told to', async () => {
    const { file, root, args } = await setup('name: t/db\ntarget: { tags: { role: db } }\nresources:\n  - { id: f, type: file, path: /f, content: x }\n')
    const skipped = await runCli(['apply', file, ...args])
    expect(skipped.code).toBe(0)
    expect(skipped.stdout).toContain('does not target this node')
    expect(await exists(join(root, 'f'))).toBe(false)
    const forced = await runCli(['apply', file, ...args, '--ignore-target'])
    expect(forced.code).toBe(2)
    expect(await exists(join(root, 'f'))).toBe(true)
  })

  it('runs guards in a plan only with --run-guards', async () => {
    const { file, root, args } = await setup('name: t/guards\nresources:\n  - { id: g, type: exec, command: "touch \\"$GRAPEVINE_ROOT/ran\\"", unless: "touch \\"$GRAPEVINE_ROOT/guard\\"; true" }\n')
    const plain = await runCli(['plan', file, ...args])
    expect(plain.code).toBe(2)
    expect(plain.stdout).toMatch(/\? maybe run exec +g +would run, guarded by unless/)
    expect(plain.stderr).toContain('--run-guards')
    expect(await readdir(root)).toEqual([])
    const guarded = await runCli(['plan', file, ...args, '--run-guards'])
    expect(guarded.code).toBe(0)
    expect(await readdir(root)).toEqual(['guard'])
  })

  it('exits 69 when the root does not exist and 64 for a bad --tag', async () => {
    const { file } = await setup()
    expect((await runCli(['apply', file, '--root', join(dir(), 'missing'), '--state', join(dir(), 'state')])).code).toBe(69)
    expect((await runCli(['apply', file, '--root', dir(), '--tag', 'novalue'])).code).toBe(64)
  })

  it('reports its own peak memory when asked, for the benchmark', async () => {
    const { file, args } = await setup()
    const out = await runCli(['plan', file, ...args], { env: { GRAPEVINE_RUSAGE: '1' } })
    expect(JSON.parse(out.stderr.trim().split('\n').at(-1) as string)).toEqual({
      maxRssKiB: expect.any(Number), snapshot: entry === 'launcher', startupMs: expect.any(Number), loadMs: expect.any(Number), applyMs: expect.any(Number), printMs: expect.any(Number)
    })
  })

  it('stops cleanly on SIGTERM: kills the running command, skips the rest, exits 4', async () => {
    const { file, root, args } = await setup('name: t/long\nresources:\n  - { id: long, type: exec, command: "touch \\"$GRAPEVINE_ROOT/started\\"; sleep 60" }\n  - { id: after, type: file, path: /after, content: x }\n')
    const [command, argv] = cliCommand(entry, ['apply', file, ...args])
    const child = spawn(command, argv, { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
    await expect.poll(async () => await exists(join(root, 'started')), { timeout: 30_000 }).toBe(true)
    child.kill('SIGTERM')
    expect(await exited).toBe(4)
    expect(stdout).toMatch(/1 failed, 1 skipped, 0 unchanged in [\d.]+ s \(aborted\)/)
    expect(stdout).toContain('stopped: the apply was aborted')
    expect(await exists(join(root, 'after'))).toBe(false)
  })
})
