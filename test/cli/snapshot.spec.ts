import { describe, expect, it } from 'vitest'
import { chmod, cp, mkdir, readFile, readdir, symlink, utimes, writeFile } from 'node:fs/promises'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { CLI_LAUNCHER, REPO_ROOT, runCli, type CliEntry, type RunCliOptions } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'

// The `grapevine` command (bin/grapevine) runs apply, plan and validate from a V8 startup
// snapshot of the CLI (scripts/build-snapshot.mjs). These tests check that it does, that it
// behaves exactly as `node bin/grapevine.js`, and that it steps aside whenever the snapshot
// cannot be used: node aborts on a blob built by another node or run with V8 flags.

const BLOB = join(REPO_ROOT, 'dist', 'snapshot', 'grapevine.blob')

/** Whether the run started from the snapshot, as the CLI reports it with GRAPEVINE_RUSAGE=1. */
function fromSnapshot (stderr: string): boolean {
  return (JSON.parse(stderr.trim().split('\n').at(-1) as string) as { snapshot: boolean }).snapshot
}

const POLICY = `
name: t/everything
resources:
  - { id: etc, type: directory, path: /etc }
  - { id: motd, type: file, path: /etc/motd, content: "hi {{ node.name }}\\n", mode: "0640", notify: [reload] }
  - { id: json, type: config, path: /etc/app.json, format: json, data: { port: 8080 } }
  - { id: yaml, type: config, path: /etc/app.yaml, format: yaml, data: { port: 8080, hosts: [a, b] } }
  - { id: toml, type: config, path: /etc/app.toml, format: toml, data: { server: { port: 8080 } } }
  - { id: ini, type: config, path: /etc/app.ini, format: ini, data: { server: { port: "8080" } } }
  - { id: env, type: config, path: /etc/app.env, format: env, data: { PORT: "8080" } }
  - { id: link, type: symlink, path: /etc/motd.link, target: /etc/motd }
  - { id: reload, type: exec, command: 'echo reloaded >> "$GRAPEVINE_ROOT/reloaded"', refreshonly: true }
  - { id: fails, type: exec, command: "echo broken >&2; exit 3" }
`

describe('grapevine from its startup snapshot', () => {
  const dir = useTempDir('grapevine-cli-snapshot-')

  /** One scenario through one entry: plan, apply, drift, plan again, apply again, in a root of its own. */
  async function scenario (entry: CliEntry): Promise<{ outputs: string[], files: Record<string, string> }> {
    const base = join(dir(), entry)
    const root = join(base, 'root')
    await mkdir(root, { recursive: true })
    const file = join(base, 'policy.yaml')
    await writeFile(file, POLICY)
    const args = ['--root', root, '--state', join(base, 'state'), '--name', 'web1']
    const outputs: string[] = []
    const run = async (cmd: string[]): Promise<void> => {
      const r = await runCli(cmd, { entry })
      // Roots and timings differ between the two runs; nothing else may.
      outputs.push(`${String(r.code)}\n${r.stdout}\n${r.stderr}`.replaceAll(base, '<base>').replace(/in [\d.]+ s/g, 'in <t> s')
        .replace(/"startedAt": "[^"]+"/g, '"startedAt": "<t>"').replace(/"durationMs": \d+/g, '"durationMs": 0'))
    }
    await run(['validate', file])
    await run(['plan', file, ...args])
    await run(['apply', file, ...args])
    await writeFile(join(root, 'etc', 'app.toml'), '[server]\nport = 1\n')
    await run(['plan', file, ...args])
    await run(['apply', file, ...args, '--json'])
    const files: Record<string, string> = {}
    for (const name of await readdir(join(root, 'etc'))) files[name] = await readFile(join(root, 'etc', name), 'utf8')
    files.reloaded = await readFile(join(root, 'reloaded'), 'utf8')
    return { outputs, files }
  }

  it('runs apply, plan and validate from the snapshot', async () => {
    const policy = join(dir(), 'p.yaml')
    await writeFile(policy, 'name: t/one\nresources:\n  - { id: f, type: file, path: /f, content: x }\n')
    await mkdir(join(dir(), 'root'))
    for (const command of ['plan', 'apply']) {
      const r = await runCli([command, policy, '--root', join(dir(), 'root'), '--state', join(dir(), 'state')], { entry: 'launcher', env: { GRAPEVINE_RUSAGE: '1' } })
      expect(r.code).toBe(2)
      expect(fromSnapshot(r.stderr)).toBe(true)
    }
    const validate = await runCli(['validate', policy], { entry: 'launcher', env: { GRAPEVINE_RUSAGE: '1' } })
    expect(validate.code).toBe(0)
    expect(fromSnapshot(validate.stderr)).toBe(true)
  })

  it('behaves exactly as node bin/grapevine.js: same output, exit codes and files', async () => {
    const viaModule = await scenario('module')
    const viaSnapshot = await scenario('launcher')
    expect(viaSnapshot.outputs).toEqual(viaModule.outputs)
    expect(viaSnapshot.files).toEqual(viaModule.files)
    // The scenario did reach every kind of work: diffs, each config format, a command that fails.
    expect(viaModule.outputs.map((o) => o.split('\n')[0])).toEqual(['0', '2', '6', '2', '6'])
    expect(viaModule.outputs[3]).toContain('-port = 1')
    expect(viaModule.outputs[2]).toContain('exited 3: broken')
    expect(Object.keys(viaModule.files).sort()).toEqual(['app.env', 'app.ini', 'app.json', 'app.toml', 'app.yaml', 'motd', 'motd.link', 'reloaded'])
  })

  it('decides on colour when it prints, not when the snapshot was built', async () => {
    const policy = join(dir(), 'p.yaml')
    await writeFile(policy, 'name: t/one\nresources: []\n')
    // `script` gives the command a terminal; the snapshot was built with none.
    const onTerminal = (env: Record<string, string>): string => spawnSync('script', ['-qec', `${CLI_LAUNCHER} validate ${policy}`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '', TERM: 'xterm', ...env } }).stdout
    expect(onTerminal({})).toContain('\u001b[32mok\u001b[39m')
    expect(onTerminal({ NO_COLOR: '1' })).toMatch(/^ok /m)
    const piped = await runCli(['validate', policy], { entry: 'launcher', env: { NO_COLOR: undefined, FORCE_COLOR: '1' } })
    expect(piped.stdout).toMatch(/^ok /m)
  })

  describe('steps aside when the snapshot cannot be used', () => {
    const setup = async (): Promise<string[]> => {
      const policy = join(dir(), 'p.yaml')
      await writeFile(policy, 'name: t/one\nresources:\n  - { id: f, type: file, path: /f, content: x }\n')
      await mkdir(join(dir(), 'root'))
      return ['apply', policy, '--root', join(dir(), 'root'), '--state', join(dir(), 'state')]
    }
    const expectModuleRun = async (args: string[], opts: RunCliOptions & { command?: string } = {}): Promise<void> => {
      const r = await runCli(args, { ...opts, entry: 'launcher', env: { GRAPEVINE_RUSAGE: '1', ...opts.env } })
      // Nothing on stderr but the rusage line: no "Failed to load the startup snapshot" from node.
      expect(r.stderr.trim().split('\n').slice(0, -1)).toEqual([])
      expect(r.code).toBe(2)
      expect(fromSnapshot(r.stderr)).toBe(false)
    }

    it('when told to, with GRAPEVINE_NO_SNAPSHOT=1', async () => {
      await expectModuleRun(await setup(), { env: { GRAPEVINE_NO_SNAPSHOT: '1' } })
    })

    it('when NODE_OPTIONS is set, which would make node refuse the blob', async () => {
      await expectModuleRun(await setup(), { env: { NODE_OPTIONS: '--max-old-space-size=512' } })
    })

    it('when the node on PATH is not the one that built it', async () => {
      const bin = join(dir(), 'other-node')
      await mkdir(bin)
      await writeFile(join(bin, 'node'), `#!/bin/sh\nexec ${process.execPath} "$@"\n`)
      await chmod(join(bin, 'node'), 0o755)
      await expectModuleRun(await setup(), { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } })
    })

    it('when dist/ was compiled after the snapshot was built, and uses it again once rebuilt, even by a build run with NODE_OPTIONS', async () => {
      // A copy of the installed program, so that the shared dist/ stays as it is.
      const home = join(dir(), 'home')
      await mkdir(home)
      for (const part of ['bin', 'scripts']) await cp(join(REPO_ROOT, part), join(home, part), { recursive: true })
      await cp(join(REPO_ROOT, 'dist'), join(home, 'dist'), { recursive: true, preserveTimestamps: true })
      await cp(join(REPO_ROOT, 'package.json'), join(home, 'package.json'))
      await symlink(join(REPO_ROOT, 'node_modules'), join(home, 'node_modules'))
      const args = await setup()
      const launcher = join(home, 'bin', 'grapevine')
      const run = (): ReturnType<typeof spawnSync> => spawnSync(launcher, args, { encoding: 'utf8', env: { ...process.env, GRAPEVINE_RUSAGE: '1' } })
      const fresh = run()
      expect(fresh.status).toBe(2)
      expect(fromSnapshot(String(fresh.stderr))).toBe(true)
      const later = new Date(Date.now() + 60_000)
      await utimes(join(home, 'dist', '.tsbuildinfo'), later, later)
      const stale = run()
      expect(stale.status).toBe(0)
      expect(fromSnapshot(String(stale.stderr))).toBe(false)
      // V8 flags in NODE_OPTIONS at build time must not end up in the blob: the launcher runs
      // it without NODE_OPTIONS, and node refuses a blob built under other flags.
      await utimes(join(home, 'dist', '.tsbuildinfo'), new Date(), new Date(Date.now() - 60_000))
      const build = spawnSync(process.execPath, [join(home, 'scripts', 'build-snapshot.mjs')], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '--max-old-space-size=1024' } })
      expect(build.status, build.stderr).toBe(0)
      const rebuilt = run()
      expect(rebuilt.stderr).not.toContain('Failed to load the startup snapshot')
      expect(rebuilt.status).toBe(0)
      expect(fromSnapshot(String(rebuilt.stderr))).toBe(true)
    })
  })

  it('refuses, when started on its own, the commands it does not hold', () => {
    const r = spawnSync(process.execPath, ['--snapshot-blob', BLOB, 'status'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } })
    expect(r.status).toBe(64)
    expect(r.stderr).toContain('the snapshot runs only apply, plan, validate; run "status" through bin/grapevine')
  })
})
