import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface DebSpec {
  name: string
  version: string
  /** Files the package installs: path under the root → content. */
  files?: Record<string, string>
  depends?: string
}

/** Builds a tiny .deb with the real dpkg-deb at `out` (a host path) and returns it. */
export async function buildDeb (out: string, spec: DebSpec): Promise<string> {
  await mkdir(dirname(out), { recursive: true })
  const tree = await mkdtemp(join(dirname(out), '.deb-tree-'))
  try {
    await mkdir(join(tree, 'DEBIAN'))
    const control = [
      `Package: ${spec.name}`,
      `Version: ${spec.version}`,
      'Architecture: all',
      'Maintainer: Grapevine tests <tests@example.invalid>',
      ...(spec.depends !== undefined ? [`Depends: ${spec.depends}`] : []),
      'Description: a package built by the Grapevine tests'
    ]
    await writeFile(join(tree, 'DEBIAN/control'), control.join('\n') + '\n')
    for (const [path, content] of Object.entries(spec.files ?? {})) {
      await mkdir(join(tree, dirname(path)), { recursive: true })
      await writeFile(join(tree, path), content)
    }
    await run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', tree, out])
    return out
  } finally {
    await rm(tree, { recursive: true, force: true })
  }
}

/** `name → version` of what dpkg calls installed under `root`, read with the real dpkg-query. */
export async function installedUnder (root: string): Promise<Record<string, string>> {
  const { stdout } = await run('dpkg-query', [`--admindir=${join(root, 'var/lib/dpkg')}`, '-W', '-f', '${Package}\\t${db:Status-Status}\\t${Version}\\n'])
  return Object.fromEntries(stdout.split('\n').filter((l) => l.split('\t')[1] === 'installed').map((l) => [l.split('\t')[0], l.split('\t')[2]]))
}

export interface HeldLock {
  pid: number
  release: () => Promise<void>
}

/**
 * Holds a dpkg lock file the way dpkg and apt do (an fcntl write lock, which flock(1) cannot
 * take), from another process, until released. Resolves once the lock is held.
 */
export async function holdDpkgLock (file: string): Promise<HeldLock> {
  await mkdir(dirname(file), { recursive: true })
  // struct flock on Linux x86_64/arm64: short type, short whence, off_t start, off_t len, pid_t pid.
  const script = 'use Fcntl qw(:DEFAULT :seek); open(my $fh, "+>>", $ARGV[0]) or die "open: $!"; ' +
    'my $fl = pack("s s x4 q q i x4", F_WRLCK, SEEK_SET, 0, 0, 0); fcntl($fh, F_SETLKW, $fl) or die "lock: $!"; ' +
    '$| = 1; print "locked\\n"; my $x = <STDIN>;'
  const child: ChildProcess = spawn('perl', ['-e', script, file], { stdio: ['pipe', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('locked')) resolve() })
    child.on('exit', (code) => reject(new Error(`the lock holder exited ${String(code)} before holding ${file}`)))
  })
  return {
    pid: child.pid as number,
    release: async () => {
      if (child.exitCode !== null) return
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.stdin?.end()
      await gone
    }
  }
}
