import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile, spawn } from 'node:child_process'
import { appendFile, lstat, mkdir, readFile, readdir, readlink, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from '../helpers/cli.js'
import { seaBinary } from '../helpers/sea-binary.js'
import { makeTempDir, removeTempDir } from '../helpers/tmp.js'

// The Debian package (scripts/build-deb.mjs, `npm run release`), with the real tools: built from
// the single binary with dpkg-deb, read back with dpkg-deb, installed, upgraded, removed and
// purged in a sandbox root with `dpkg --root` (maintainer scripts run on the host with
// DPKG_ROOT set, so they change the sandbox's files), and checked by lintian. As root, as CI runs.

const run = promisify(execFile)
const UNIT = 'usr/lib/systemd/system/grapevine.service'
const CONFFILE = 'etc/grapevine/agent.yaml'
let dir: string
let deb: string
let version: string

beforeAll(async () => {
  dir = await makeTempDir('grapevine-deb-')
  version = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version
  const binary = await seaBinary()
  const started = Date.now()
  // xz at level 1 instead of dpkg-deb's 6: the same package, compressed in a third of the CPU time.
  await run(process.execPath, [join(REPO_ROOT, 'scripts', 'build-deb.mjs'), binary, join(dir, 'out')], { cwd: REPO_ROOT, env: { ...process.env, DPKG_DEB_COMPRESSOR_LEVEL: '1' } })
  deb = join(dir, 'out', `grapevine_${version}_amd64.deb`)
  process.stderr.write(`deb.spec: built ${deb} (${((await stat(deb)).size / 2 ** 20).toFixed(1)} MiB) in ${Date.now() - started} ms\n`)
}, 180_000)
afterAll(async () => { await removeTempDir(dir) })

/** A file of the package's control archive (control, conffiles, postinst, ...). */
async function controlFile (name: string): Promise<string> {
  const tree = join(dir, 'control')
  await rm(tree, { recursive: true, force: true })
  await run('dpkg-deb', ['--control', deb, tree])
  return await readFile(join(tree, name), 'utf8')
}

describe('the .deb', () => {
  it('holds the binary, the unit, the conffile, its docs and a man page, owned by root with their modes', async () => {
    const { stdout } = await run('dpkg-deb', ['--contents', deb])
    const files = Object.fromEntries(stdout.trim().split('\n')
      .map((l) => l.split(/\s+/))
      .filter((f) => f[0]?.startsWith('-') === true)
      .map((f) => [(f[5] as string).replace(/^\.\//, ''), `${f[0] ?? ''} ${f[1] ?? ''}`]))
    expect(files).toEqual({
      'usr/bin/grapevine': '-rwxr-xr-x root/root',
      [UNIT]: '-rw-r--r-- root/root',
      [CONFFILE]: '-rw-r--r-- root/root',
      'usr/share/doc/grapevine/copyright': '-rw-r--r-- root/root',
      'usr/share/doc/grapevine/changelog.gz': '-rw-r--r-- root/root',
      'usr/share/man/man1/grapevine.1.gz': '-rw-r--r-- root/root',
      'usr/share/lintian/overrides/grapevine': '-rw-r--r-- root/root'
    })
    expect(await controlFile('conffiles')).toBe(`/${CONFFILE}\n`)
  })

  it('installs docs/grapevine.service byte for byte: one unit, not two', async () => {
    const { stdout } = await run('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -xO ./${UNIT}`, 'sh', deb], { encoding: 'buffer', maxBuffer: 1 << 20 })
    expect(stdout.equals(await readFile(join(REPO_ROOT, 'docs', 'grapevine.service')))).toBe(true)
    expect(stdout.toString()).toMatch(/^ExecStart=\/usr\/bin\/grapevine agent --config \/etc\/grapevine\/agent\.yaml --state \/var\/lib\/grapevine$/m)
  })

  it('depends on the package of every shared library the binary links, and on passwd for useradd', async () => {
    const fields = Object.fromEntries((await run('dpkg-deb', ['--field', deb, 'Package', 'Version', 'Architecture', 'Depends'])).stdout
      .trim().split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]))
    expect(fields).toMatchObject({ Package: 'grapevine', Version: version, Architecture: 'amd64' })
    const depends = (fields.Depends as string).split(',').map((d) => d.trim().split(' ')[0])
    // The libraries the dynamic linker resolves for it, and the packages that ship them here.
    const { stdout: ldd } = await run('ldd', [await seaBinary()])
    const libs = [...ldd.matchAll(/=> (\/\S+)/g)].map((m) => m[1] as string)
    expect(libs.length).toBeGreaterThan(3)
    const owners = new Set<string>()
    for (const lib of libs) {
      // dpkg knows a library by the path its package ships: /lib/... or, behind the link, /usr/lib/...
      const search = async (path: string): Promise<string> => (await run('dpkg', ['-S', path])).stdout
      const found = await search(lib).catch(async () => await search(await realpath(lib)))
      owners.add((found.split(':')[0] as string).trim())
    }
    expect(depends).toEqual(expect.arrayContaining([...owners, 'passwd']))
  })

  it('has POSIX sh maintainer scripts that never start or enable the agent', async () => {
    // What each script may ask of systemd: stop it on removal, restart only a running agent on
    // upgrade, and deb-systemd-helper's bookkeeping. Never start, restart or enable it.
    const allowed = new Set(['daemon-reload', 'try-restart', 'stop', 'unmask', 'update-state', 'mask', 'purge'])
    for (const name of ['postinst', 'prerm', 'postrm']) {
      const script = await controlFile(name)
      expect(script.startsWith('#!/bin/sh\n'), name).toBe(true)
      expect(script).toMatch(/^set -e$/m)
      await run('sh', ['-n', join(dir, 'control', name)])
      // Not comments, nor the note that tells the admin what to run.
      const verbs = script.split('\n').filter((l) => !/^\s*(#|echo )/.test(l))
        .flatMap((l) => [...l.matchAll(/\b(?:systemctl|deb-systemd-invoke|deb-systemd-helper)((?:\s+-\S+)*)\s+([\w-]+)/g)].map((m) => m[2] as string))
      for (const verb of verbs) expect(allowed.has(verb), `${name}: ${verb}`).toBe(true)
    }
  })

  it('passes lintian without errors (warnings on stderr)', async () => {
    // lintian exits non-zero on errors: read its output either way.
    const out = await run('lintian', ['--display-info', '--show-overrides', deb], { maxBuffer: 16 << 20 }).then((r) => r.stdout, (err: { stdout?: string }) => err.stdout ?? '')
    process.stderr.write(`deb.spec: lintian:\n${out}`)
    expect(out.split('\n').filter((l) => l.startsWith('E:'))).toEqual([])
    // It did run, and read the package's overrides (packaging/debian/lintian-overrides).
    expect(out).toMatch(/^O: grapevine: unstripped-binary-or-object \[usr\/bin\/grapevine\]$/m)
  }, 180_000)
})

describe('installed into a sandbox root with dpkg --root', () => {
  let root: string
  const dpkg = async (...args: string[]): Promise<{ stdout: string, stderr: string }> =>
    await run('dpkg', [`--root=${root}`, `--log=${join(root, 'var/log/dpkg.log')}`, '--force-script-chrootless', '--force-not-root',
      // The sandbox's dpkg database knows no libc6 or passwd: the host's are what the scripts use.
      '--force-depends', ...args])
  /** `ii 0.1.0` and the like; '' once dpkg no longer knows the package (purged). */
  const status = async (): Promise<string> =>
    await run('dpkg-query', [`--admindir=${join(root, 'var/lib/dpkg')}`, '-W', '-f', '${db:Status-Abbrev}${Version}', 'grapevine'])
      .then((r) => r.stdout.trim(), () => '')
  const accounts = async (file: string): Promise<string[]> => (await readFile(join(root, 'etc', file), 'utf8')).split('\n').filter((l) => l.startsWith('grapevine:'))
  /** lstat: an enable link points at /usr/lib/..., which is the host's path, not the sandbox's. */
  const exists = async (path: string): Promise<boolean> => await lstat(join(root, path)).then(() => true, () => false)

  beforeAll(async () => {
    root = join(dir, 'sandbox')
    for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/log', 'etc']) await mkdir(join(root, d), { recursive: true })
    for (const f of ['status', 'available']) await writeFile(join(root, 'var/lib/dpkg', f), '')
    // What useradd --root and groupadd --root need: the account databases, with root only.
    await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
    await writeFile(join(root, 'etc/group'), 'root:x:0:\n')
    await writeFile(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 })
    await writeFile(join(root, 'etc/gshadow'), 'root:*::\n', { mode: 0o640 })
  })

  it('install: creates the grapevine user and group and the state directory, and starts nothing', async () => {
    const started = Date.now()
    const { stdout } = await dpkg('--install', deb)
    process.stderr.write(`deb.spec: dpkg --install took ${Date.now() - started} ms\n`)
    expect(await status()).toBe(`ii ${version}`)
    expect(stdout).toContain('grapevine: fill in /etc/grapevine/agent.yaml (trust roots, bootstrap peers), then: systemctl enable --now grapevine')

    const [user] = await accounts('passwd')
    const m = /^grapevine:x:(\d+):(\d+):Grapevine configuration agent:\/var\/lib\/grapevine:\/usr\/sbin\/nologin$/.exec(user ?? '')
    expect(m, user).not.toBeNull()
    expect(Number(m?.[1])).toBeLessThan(1000)
    expect(await accounts('group')).toEqual([`grapevine:x:${m?.[2] ?? ''}:`])

    const state = await stat(join(root, 'var/lib/grapevine'))
    expect({ dir: state.isDirectory(), mode: (state.mode & 0o7777).toString(8), uid: state.uid }).toEqual({ dir: true, mode: '700', uid: 0 })
    expect(await readFile(join(root, CONFFILE), 'utf8')).toBe(await readFile(join(REPO_ROOT, 'packaging/debian/agent.yaml'), 'utf8'))

    // No agent runs from the sandbox's binary: nothing started one.
    const agents: number[] = []
    for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
      const exe = await readlink(`/proc/${pid}/exe`).catch(() => '')
      if (exe.startsWith(root)) agents.push(Number(pid))
    }
    expect(agents).toEqual([])

    const { stdout: v } = await run(join(root, 'usr/bin/grapevine'), ['--version'], { env: { PATH: '/nonexistent' } })
    expect(v.trim()).toBe(`${version} (single binary, Node ${process.version})`)
  })

  it('the unit passes systemd-analyze verify, run against the installed binary, and its exposure score is 8.1 at most', async () => {
    const unit = (await readFile(join(root, UNIT), 'utf8')).replace('ExecStart=/usr/bin/grapevine', `ExecStart=${join(root, 'usr/bin/grapevine')}`)
    await mkdir(join(dir, 'verify'))
    await writeFile(join(dir, 'verify', 'grapevine.service'), unit)
    // Unknown or misspelt settings are warnings on stderr, not a failure: none expected.
    const r = await run('systemd-analyze', ['verify', '--man=no', join(dir, 'verify', 'grapevine.service')])
    expect(r.stderr).toBe('')
    // Its hardening stays: systemd's exposure score (0 safe … 10 unsafe) was 9.2 without it.
    const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', join(dir, 'verify', 'grapevine.service')])
    const score = Number(/Overall exposure level for grapevine\.service: ([\d.]+)/.exec(stdout)?.[1])
    expect(score).toBeLessThanOrEqual(8.1)
  })

  it('the unit\'s command with the shipped agent.yaml exits 64 asking for a trust root: an unconfigured agent never runs', async () => {
    const unit = await readFile(join(root, UNIT), 'utf8')
    const argv = (/^ExecStart=(.+)$/m.exec(unit)?.[1] as string).split(' ')
      .map((a) => a.startsWith('/etc/') || a.startsWith('/var/') || a.startsWith('/usr/') ? join(root, a) : a)
    const r = await new Promise<{ code: number | null, stderr: string }>((resolve, reject) => {
      const child = spawn(argv[0] as string, argv.slice(1), { env: { PATH: '/nonexistent' }, stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
      // An agent that did start would run until killed: fail, do not hang.
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      child.once('error', reject)
      child.once('close', (code) => { clearTimeout(timer); resolve({ code, stderr }) })
    })
    expect(r).toEqual({ code: 64, stderr: expect.stringMatching(/give at least one --trust root key/) as unknown })
  })

  it('upgrade: keeps the admin\'s agent.yaml (the new one beside it as .dpkg-dist), the state and the user', async () => {
    const edited = `${await readFile(join(root, CONFFILE), 'utf8')}trust: [/etc/grapevine/root.key.pub]\n`
    await writeFile(join(root, CONFFILE), edited)
    await writeFile(join(root, 'var/lib/grapevine/identity.key'), 'the node identity', { mode: 0o600 })
    await run('systemctl', [`--root=${root}`, 'enable', 'grapevine.service'])
    // The next version, whose agent.yaml changed too: dpkg must not overwrite the edit.
    const tree = join(dir, 'next')
    await run('dpkg-deb', ['--raw-extract', deb, tree])
    await appendFile(join(tree, CONFFILE), '# a new setting in the next version\n')
    const control = await readFile(join(tree, 'DEBIAN/control'), 'utf8')
    await writeFile(join(tree, 'DEBIAN/control'), control.replace(/^Version: .+$/m, `Version: ${version}+next`))
    const next = join(dir, 'next.deb')
    await run('dpkg-deb', ['--root-owner-group', '-Znone', '--build', tree, next])
    await rm(tree, { recursive: true })

    // CI has no terminal to ask on: --force-confold keeps the admin's file, as apt would be told.
    await dpkg('--force-confold', '--install', next)
    expect(await status()).toBe(`ii ${version}+next`)
    expect(await readFile(join(root, CONFFILE), 'utf8')).toBe(edited)
    expect(await readFile(join(root, `${CONFFILE}.dpkg-dist`), 'utf8')).toMatch(/# a new setting in the next version\n$/)
    expect(await readFile(join(root, 'var/lib/grapevine/identity.key'), 'utf8')).toBe('the node identity')
    expect(await accounts('passwd')).toHaveLength(1)
    expect(await accounts('group')).toHaveLength(1)
    // The admin enabled it: the upgrade left it so.
    expect(await exists('etc/systemd/system/multi-user.target.wants/grapevine.service')).toBe(true)
    await rm(join(root, `${CONFFILE}.dpkg-dist`))
  })

  it('remove: the binary and unit go; agent.yaml, the state and the admin\'s enable link stay (the unit masked)', async () => {
    await dpkg('--remove', 'grapevine')
    expect(await status()).toBe(`rc ${version}+next`)
    expect(await exists('usr/bin/grapevine')).toBe(false)
    expect(await exists(UNIT)).toBe(false)
    expect(await exists(CONFFILE)).toBe(true)
    expect(await readFile(join(root, 'var/lib/grapevine/identity.key'), 'utf8')).toBe('the node identity')
    expect(await readlink(join(root, 'etc/systemd/system/grapevine.service'))).toBe('/dev/null')
  })

  it('purge: agent.yaml, the state directory and the enable link go; the user and group stay', async () => {
    await dpkg('--purge', 'grapevine')
    expect(await status()).toBe('')
    for (const gone of [CONFFILE, 'var/lib/grapevine', 'etc/systemd/system/multi-user.target.wants/grapevine.service', 'etc/systemd/system/grapevine.service']) {
      expect(await exists(gone), gone).toBe(false)
    }
    expect(await accounts('passwd')).toHaveLength(1)
    expect(await accounts('group')).toHaveLength(1)
  })
})

describe('the maintainer scripts on the machine itself (no DPKG_ROOT)', () => {
  it('postinst creates the user and state with the host\'s getent and useradd, twice without error; purge removes the state', async () => {
    // In a private mount namespace over copies of /etc and /var/lib: the scripts take the path
    // a real install takes, and the machine's own accounts stay as they are.
    const host = join(dir, 'host')
    await mkdir(join(host, 'varlib'), { recursive: true })
    await run('cp', ['-a', '/etc', join(host, 'etc')])
    await controlFile('postinst')
    const passwd = await readFile('/etc/passwd', 'utf8')
    const script = 'mount --bind "$1/etc" /etc && mount --bind "$1/varlib" /var/lib && cd "$2" && ' +
      'sh postinst configure "" && sh postinst configure 0.1.0 && getent passwd grapevine && stat -c "state %a %U" /var/lib/grapevine && ' +
      'sh prerm remove && sh postrm remove && sh postrm purge'
    const env: Record<string, string | undefined> = { ...process.env, DPKG_MAINTSCRIPT_PACKAGE: 'grapevine', DPKG_ROOT: undefined }
    const { stdout, stderr } = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', host, join(dir, 'control')], { env })
    // One note, on the first install only; the account and the state directory as on a sandbox install.
    expect(stdout.match(/^grapevine: fill in/gm)).toHaveLength(1)
    expect(stdout).toMatch(/^grapevine:x:\d+:\d+:Grapevine configuration agent:\/var\/lib\/grapevine:\/usr\/sbin\/nologin$/m)
    expect(stdout).toMatch(/^state 700 root$/m)
    expect(stderr).not.toMatch(/useradd|groupadd|install:/)
    expect((await readFile(join(host, 'etc/passwd'), 'utf8')).match(/^grapevine:/gm)).toHaveLength(1)
    expect(await lstat(join(host, 'varlib/grapevine')).then(() => true, () => false)).toBe(false)
    expect(await readFile('/etc/passwd', 'utf8')).toBe(passwd)
  })

  it('with a trust root added to the shipped agent.yaml the agent starts, and the grapevine group may use its API (apiGroup)', async () => {
    const host = join(dir, 'host-agent')
    await mkdir(join(host, 'varlib'), { recursive: true })
    await run('cp', ['-a', '/etc', join(host, 'etc')])
    await controlFile('postinst')
    // $1 the copies, $2 the control files, $3 the shipped agent.yaml, $4 the binary. The agent
    // listens on 127.0.0.1 (a flag overrides the config's 0.0.0.0:7410); the loop waits for its
    // "api listening" line, for at most 60 s, and stops at once if the agent exits.
    const script = `set -e
mount --bind "$1/etc" /etc
mount --bind "$1/varlib" /var/lib
(cd "$2" && sh postinst configure "" >/dev/null)
"$4" keygen --out "$1/root.key" >/dev/null 2>&1
cp "$3" "$1/agent.yaml"
echo "trust: [$1/root.key.pub]" >> "$1/agent.yaml"
"$4" agent --config "$1/agent.yaml" --state /var/lib/grapevine --listen /ip4/127.0.0.1/tcp/0 > "$1/agent.log" 2>&1 &
pid=$!
i=0
until grep -q '"api listening"' "$1/agent.log"; do
  i=$((i+1))
  if [ $i -gt 600 ] || ! kill -0 $pid 2>/dev/null; then cat "$1/agent.log"; kill $pid 2>/dev/null || true; exit 1; fi
  sleep 0.1
done
stat -c 'dir %a %U %G' /var/lib/grapevine
stat -c 'socket %a %U %G' /var/lib/grapevine/api.sock
code=0; runuser -u grapevine -- env GRAPEVINE_STATE=/var/lib/grapevine "$4" status >/dev/null || code=$?; echo "status as grapevine: $code"
code=0; runuser -u nobody -- env GRAPEVINE_STATE=/var/lib/grapevine "$4" status >/dev/null 2>&1 || code=$?; echo "status as nobody: $code"
kill $pid
wait $pid || echo "agent exit: $?"`
    const env: Record<string, string | undefined> = { ...process.env, DPKG_MAINTSCRIPT_PACKAGE: 'grapevine', DPKG_ROOT: undefined }
    const { stdout } = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', host, join(dir, 'control'),
      join(REPO_ROOT, 'packaging/debian/agent.yaml'), await seaBinary()], { env })
    expect(stdout.trim().split('\n')).toEqual([
      'dir 710 root grapevine',
      'socket 660 root grapevine',
      'status as grapevine: 0',
      'status as nobody: 77'
    ])
  })
})

describe('build-deb.mjs', () => {
  it('builds the same bytes twice from one binary (times from the changelog, SOURCE_DATE_EPOCH)', async () => {
    // Uncompressed, to compare what dpkg-deb archives without spending seconds in xz.
    const env = { ...process.env, DPKG_DEB_COMPRESSOR_TYPE: 'none' }
    const binary = await seaBinary()
    const builds: Buffer[] = []
    for (const out of ['same-1', 'same-2']) {
      await run(process.execPath, [join(REPO_ROOT, 'scripts', 'build-deb.mjs'), binary, join(dir, out)], { env })
      builds.push(await readFile(join(dir, out, `grapevine_${version}_amd64.deb`)))
      await rm(join(dir, out), { recursive: true })
    }
    expect(builds[0]?.equals(builds[1] as Buffer)).toBe(true)
  })

  it('exits 69 in one line when dpkg-deb is not installed', async () => {
    const bin = join(dir, 'no-dpkg')
    await mkdir(bin)
    await symlink(process.execPath, join(bin, 'node'))
    const r = await run(process.execPath, [join(REPO_ROOT, 'scripts', 'build-deb.mjs'), join(dir, 'missing'), join(dir, 'never')], { env: { PATH: bin } })
      .then(() => ({ code: 0, stderr: '' }), (err: { code: number, stderr: string }) => ({ code: err.code, stderr: err.stderr }))
    expect(r).toEqual({ code: 69, stderr: 'build-deb: dpkg-deb not found: it is in Debian\'s dpkg package (apt-get install dpkg)\n' })
    await expect(stat(join(dir, 'never'))).rejects.toThrow()
  })

  it('refuses a missing binary (69), naming how to build it', async () => {
    const r = await run(process.execPath, [join(REPO_ROOT, 'scripts', 'build-deb.mjs'), join(dir, 'missing'), join(dir, 'never')])
      .then(() => ({ code: 0, stderr: '' }), (err: { code: number, stderr: string }) => ({ code: err.code, stderr: err.stderr }))
    expect(r).toEqual({ code: 69, stderr: `build-deb: no binary at ${join(dir, 'missing')}: build it first (node scripts/build-sea.mjs)\n` })
  })
})
