import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT, type CliResult } from '../helpers/cli.js'
import { makeTempDir, removeTempDir } from '../helpers/tmp.js'

// The npm tarball as a user gets it: `npm pack` of the built dist/ (pretest builds it; the
// pack skips `prepare` so the test does not rebuild dist/ under other tests), then one
// `npm install -g --prefix` of it, which fetches the runtime dependencies from the registry.
const run = promisify(execFile)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const DEV_ONLY = ['tsx', 'esbuild', 'vitest', 'typescript']

let dir = ''
let tarball = ''
let packed: Array<{ path: string }> = []
let installed = ''

async function runInstalled (args: string[]): Promise<CliResult> {
  return await new Promise((resolve) => {
    execFile(join(dir, 'prefix', 'bin', 'grapevine'), args, { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      resolve({ code, signal: err?.signal as NodeJS.Signals | null ?? null, stdout, stderr })
    })
  })
}

/** Every package directory name under node_modules, nested ones included. */
async function packagesUnder (nodeModules: string): Promise<string[]> {
  if (!existsSync(nodeModules)) return []
  const names: string[] = []
  for (const entry of await readdir(nodeModules, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue
    const scoped = entry.name.startsWith('@') ? (await readdir(join(nodeModules, entry.name))).map((n) => `${entry.name}/${n}`) : [entry.name]
    for (const name of scoped) {
      names.push(name)
      names.push(...await packagesUnder(join(nodeModules, name, 'node_modules')))
    }
  }
  return names
}

describe('the npm tarball', () => {
  beforeAll(async () => {
    if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build` first')
    dir = await makeTempDir('grapevine-npm-')
    const pack = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 })
    const [info] = JSON.parse(pack.stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
    if (info === undefined) throw new Error(`npm pack printed no package: ${pack.stdout}`)
    tarball = join(dir, info.filename)
    packed = info.files
    await run(npm, ['install', '-g', '--no-audit', '--no-fund', '--prefix', join(dir, 'prefix'), tarball], { cwd: dir, timeout: 240_000 })
    installed = join(dir, 'prefix', 'lib', 'node_modules', 'grapevine')
  }, 300_000)
  afterAll(async () => { if (dir !== '') await removeTempDir(dir) })

  it('holds what runs, and no tests, sources, benchmarks, snapshot or built release artifacts and delayer', async () => {
    const paths = packed.map((f) => f.path)
    expect(paths).toContain('bin/grapevine')
    expect(paths).toContain('dist/cli/main.js')
    expect(paths).toContain('policies/web.yaml')
    expect(paths).toContain('docs/grapevine.service')
    expect(paths.filter((p) => /^(src|test|scripts|simulations|out|dist\/bench|dist\/snapshot|dist\/release|dist\/native)\//.test(p) || p === 'dist/.tsbuildinfo')).toEqual([])
    const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { private?: boolean, dependencies: Record<string, string> }
    expect(manifest.private).toBeUndefined()
    expect(Object.keys(manifest.dependencies).filter((d) => DEV_ONLY.includes(d))).toEqual([])
    expect((await stat(tarball)).size).toBeLessThan(2 * 1024 * 1024)
  })

  it('installs runtime dependencies only', async () => {
    const names = await packagesUnder(join(installed, 'node_modules'))
    expect(names).toContain('libp2p')
    expect(names.filter((n) => DEV_ONLY.includes(n) || n.startsWith('@esbuild/'))).toEqual([])
  })

  it('the installed grapevine runs --version, validate and apply', async () => {
    const version = await runInstalled(['--version'])
    expect(version.code, version.stderr).toBe(0)
    expect(version.stdout.trim()).toBe('0.1.0')
    const policy = join(installed, 'policies', 'web.yaml')
    const validate = await runInstalled(['validate', policy])
    expect(validate.code, validate.stderr).toBe(0)
    expect(validate.stdout).toContain('policy "web/nginx"')
    const root = join(dir, 'root')
    await mkdir(root)
    // Exit 2: changes made, none failed (Puppet's detailed codes).
    const apply = await runInstalled(['apply', policy, '--root', root, '--tag', 'role=web', '--name', 'web-1', '--sandbox-services'])
    expect(apply.code, apply.stdout + apply.stderr).toBe(2)
    expect(await readFile(join(root, 'srv', 'www', 'index.html'), 'utf8')).toContain('<h1>web-1</h1>')
    const again = await runInstalled(['apply', policy, '--root', root, '--tag', 'role=web', '--name', 'web-1', '--sandbox-services'])
    expect(again.code, again.stdout + again.stderr).toBe(0)
  })
})
