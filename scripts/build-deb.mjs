// `npm run release`, after build-sea: builds dist/release/grapevine_<version>_<arch>.deb from the
// single binary, with the real dpkg-deb (docs/release.md, "The Debian package").
//
//   /usr/bin/grapevine                           the binary, as built (strip would break it)
//   /usr/lib/systemd/system/grapevine.service    docs/grapevine.service, byte for byte
//   /etc/grapevine/agent.yaml                    a conffile with no trust roots: the agent waits for them
//   /usr/share/doc/grapevine/, man1/grapevine.1.gz, lintian/overrides/grapevine
//   DEBIAN/postinst, prerm, postrm               the grapevine user and state dir; never start the agent
//
// Its sources are packaging/debian/. `node scripts/build-deb.mjs [BINARY] [OUTDIR]` packages
// another binary, into another directory (tests). Exit 69 when a tool it needs is missing, 65
// when packaging/debian/changelog does not start with package.json's version.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import process from 'node:process'
import { URL, fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const root = fileURLToPath(new URL('../', import.meta.url))
const sources = resolve(root, 'packaging', 'debian')
const binary = resolve(process.argv[2] ?? resolve(root, 'dist', 'release', `grapevine-${process.platform}-${process.arch}`))
const outDir = resolve(process.argv[3] ?? resolve(root, 'dist', 'release'))

/** Debian's names for the architectures a SEA binary can be built on. */
const DEB_ARCH = { x64: 'amd64', arm64: 'arm64' }

function fail (message, code) {
  process.stderr.write(`build-deb: ${message}\n`)
  process.exit(code)
}

function need (tool, pkg) {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' })
  } catch (err) {
    if (err.code === 'ENOENT') fail(`${tool} not found: it is in Debian's ${pkg} package (apt-get install ${pkg})`, 69)
    throw err
  }
}

/** The version and date (seconds) of the changelog's top entry. */
function topEntry (changelog) {
  const version = /^grapevine \(([^)]+)\)/.exec(changelog)?.[1]
  const date = /^ -- .+? {2}(.+)$/m.exec(changelog)?.[1]
  const epoch = Math.floor(Date.parse(date ?? '') / 1000)
  if (version === undefined || !Number.isFinite(epoch)) fail('packaging/debian/changelog: no "grapevine (VERSION)" entry with a " -- NAME <MAIL>  DATE" line (an RFC 2822 date)', 65)
  return { version, epoch }
}

/** Gzip without a name or time in the header (lintian: package-contains-timestamped-gzip). */
const gzip = (bytes) => gzipSync(bytes, { level: 9 })

/**
 * The Depends the binary's shared libraries need, from dpkg-shlibdeps: the node it embeds links
 * libc, libstdc++ and libgcc_s, and a newer Node may need newer ones. dpkg-shlibdeps wants a
 * debian/control and the binary in debian/<package>/.
 */
function shlibsDepends (work) {
  const out = execFileSync('dpkg-shlibdeps', ['-O', '-edebian/grapevine/usr/bin/grapevine'], { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  const depends = /^shlibs:Depends=(.+)$/m.exec(out)?.[1]
  if (depends === undefined) fail(`dpkg-shlibdeps found no shared libraries in ${binary}: is it a dynamically linked node?`, 65)
  return depends
}

/** Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, and 1 per directory; not DEBIAN/. */
async function installedSize (dir, top = true) {
  let kib = 0
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (top && e.name === 'DEBIAN') continue
    const path = join(dir, e.name)
    if (e.isDirectory()) kib += 1 + await installedSize(path, false)
    else kib += Math.ceil((await lstat(path)).size / 1024)
  }
  return kib
}

/** Puts a file into the package tree with its mode: a copy of `from`, or `bytes`. */
async function put (tree, path, mode, { from, bytes }) {
  const target = join(tree, path)
  await mkdir(dirname(target), { recursive: true })
  if (from !== undefined) await copyFile(from, target)
  else await writeFile(target, bytes)
  await chmod(target, mode)
}

/** DEBIAN/md5sums, as dh_md5sums writes it: every file but DEBIAN/ and the conffiles, which dpkg tracks itself. */
async function md5sums (tree, conffiles, dir = tree) {
  let lines = ''
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, e.name)
    const rel = relative(tree, path)
    if (rel === 'DEBIAN' || conffiles.includes(`/${rel}`)) continue
    if (e.isDirectory()) lines += await md5sums(tree, conffiles, path)
    else lines += `${createHash('md5').update(await readFile(path)).digest('hex')}  ${rel}\n`
  }
  return lines
}

/** Every entry's mtime to the changelog's date, so that two builds of one binary are the same bytes. */
async function clamp (dir, epoch) {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      await chmod(join(dir, e.name), 0o755)
      await clamp(join(dir, e.name), epoch)
    }
    await utimes(join(dir, e.name), epoch, epoch)
  }
}

async function main () {
  need('dpkg-deb', 'dpkg')
  need('dpkg-shlibdeps', 'dpkg-dev')
  const arch = DEB_ARCH[process.arch] ?? fail(`no Debian architecture for ${process.arch}`, 69)
  await lstat(binary).catch(() => fail(`no binary at ${binary}: build it first (node scripts/build-sea.mjs)`, 69))
  const pkg = JSON.parse(await readFile(resolve(root, 'package.json'), 'utf8'))
  const changelog = await readFile(join(sources, 'changelog'), 'utf8')
  const top = topEntry(changelog)
  if (top.version !== pkg.version) fail(`packaging/debian/changelog starts with ${top.version}, package.json says ${pkg.version}: add a changelog entry for ${pkg.version}`, 65)
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? top.epoch)

  const work = await mkdtemp(join(tmpdir(), 'grapevine-deb-'))
  try {
    const tree = join(work, 'debian', 'grapevine')
    const src = (name) => join(sources, name)
    await put(tree, 'usr/bin/grapevine', 0o755, { from: binary })
    // One unit, not two: the file in docs/ is the one the package installs.
    await put(tree, 'usr/lib/systemd/system/grapevine.service', 0o644, { from: resolve(root, 'docs', 'grapevine.service') })
    await put(tree, 'etc/grapevine/agent.yaml', 0o644, { from: src('agent.yaml') })
    await put(tree, 'usr/share/doc/grapevine/copyright', 0o644, { from: src('copyright') })
    await put(tree, 'usr/share/doc/grapevine/changelog.gz', 0o644, { bytes: gzip(changelog) })
    await put(tree, 'usr/share/man/man1/grapevine.1.gz', 0o644, { bytes: gzip(await readFile(src('grapevine.1'))) })
    await put(tree, 'usr/share/lintian/overrides/grapevine', 0o644, { from: src('lintian-overrides') })
    for (const script of ['postinst', 'prerm', 'postrm']) await put(tree, `DEBIAN/${script}`, 0o755, { from: src(script) })
    await put(tree, 'DEBIAN/conffiles', 0o644, { from: src('conffiles') })
    const conffiles = (await readFile(src('conffiles'), 'utf8')).split('\n').filter((l) => l !== '')
    await put(tree, 'DEBIAN/md5sums', 0o644, { bytes: await md5sums(tree, conffiles) })

    // dpkg-shlibdeps reads debian/control for the package's name and architecture.
    await writeFile(join(work, 'debian', 'control'), `Source: grapevine\n\nPackage: grapevine\nArchitecture: ${arch}\n`)
    const control = (await readFile(src('control'), 'utf8'))
      .replace('@VERSION@', pkg.version)
      .replace('@ARCH@', arch)
      .replace('@SHLIBS_DEPENDS@', shlibsDepends(work))
      .replace('@INSTALLED_SIZE@', String(await installedSize(tree)))
    await put(tree, 'DEBIAN/control', 0o644, { bytes: control })
    await clamp(tree, epoch)
    await chmod(tree, 0o755)

    await mkdir(outDir, { recursive: true })
    const deb = join(outDir, `grapevine_${pkg.version}_${arch}.deb`)
    const temp = `${deb}.tmp-${process.pid}`
    execFileSync('dpkg-deb', ['--root-owner-group', '--build', tree, temp], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } })
    await rename(temp, deb)
    const size = (await lstat(deb)).size
    process.stdout.write(`${relative(process.cwd(), deb) || deb}: ${(size / 1024 / 1024).toFixed(1)} MiB\n`)
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

await main()
