import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { access, mkdir, readFile, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from './cli.js'

// The single binary for the tests that need one (sea, deb, enroll): built once per content of
// dist/ and the build scripts, then shared. Several test files run at once, so the first one
// builds under a lock and the others wait for it instead of each spending seconds of CPU.

const run = promisify(execFile)
const CACHE = join(tmpdir(), 'grapevine-test-sea')
const LOCK_STALE_MS = 5 * 60_000

async function hashTree (hash: ReturnType<typeof createHash>, dir: string): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))
  for (const e of entries) {
    const path = join(dir, e.name)
    if (e.isDirectory()) {
      // dist/release/ holds what `npm run release` built, not what the binary is built from.
      if (relative(REPO_ROOT, path) !== join('dist', 'release')) await hashTree(hash, path)
    } else if (e.name.endsWith('.js') || e.name.endsWith('.cjs')) {
      hash.update(relative(REPO_ROOT, path)).update(await readFile(path))
    }
  }
}

async function buildKey (): Promise<string> {
  const hash = createHash('sha256').update(process.version)
  for (const f of ['package.json', 'scripts/build-sea.mjs', 'scripts/bundle-source.mjs', 'docs/grapevine.service']) hash.update(await readFile(join(REPO_ROOT, f)))
  await hashTree(hash, join(REPO_ROOT, 'dist'))
  return hash.digest('hex').slice(0, 16)
}

async function exists (path: string): Promise<boolean> {
  return await access(path).then(() => true, () => false)
}

/** Takes a mkdir lock, breaking one left by a build that died more than LOCK_STALE_MS ago. */
async function lock (path: string): Promise<() => Promise<void>> {
  for (;;) {
    try {
      await mkdir(path)
      return async () => { await rm(path, { recursive: true, force: true }) }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const age = Date.now() - (await stat(path).then((s) => s.mtimeMs, () => Date.now()))
      if (age > LOCK_STALE_MS) await rm(path, { recursive: true, force: true })
      else await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
}

/** The path of a single binary built from today's dist/ (`node scripts/build-sea.mjs`). */
export async function seaBinary (): Promise<string> {
  await mkdir(CACHE, { recursive: true })
  const key = await buildKey()
  const binary = join(CACHE, key, 'grapevine-linux-x64')
  if (await exists(binary)) return binary
  const unlock = await lock(join(CACHE, `${key}.lock`))
  try {
    if (await exists(binary)) return binary
    const started = Date.now()
    // build-sea writes the binary under a temporary name and renames it: a reader never sees half of it.
    await run(process.execPath, [join(REPO_ROOT, 'scripts', 'build-sea.mjs'), binary], { cwd: REPO_ROOT })
    process.stderr.write(`built the single binary for the tests in ${Date.now() - started} ms: ${binary}\n`)
    // Builds of other dist/ contents left from earlier runs (an hour: a test still running may use one).
    for (const e of await readdir(CACHE)) {
      if (e === key || e.endsWith('.lock')) continue
      const old = await stat(join(CACHE, e)).then((s) => Date.now() - s.mtimeMs > 3_600_000, () => false)
      if (old) await rm(join(CACHE, e), { recursive: true, force: true })
    }
    return binary
  } finally {
    await unlock()
  }
}
