import { lstat, readlink, realpath } from 'node:fs/promises'
import { dirname, posix } from 'node:path'
import { PathEscapesRootError, RootNotFoundError } from './errors.js'
import { InvalidPathError } from '../policy/errors.js'
import { managedPathProblem } from '../policy/paths.js'

/** True when `p` is `root` or inside it; both absolute and normalised. */
export function isInside (root: string, p: string): boolean {
  return root === '/' || p === root || p.startsWith(root + '/')
}

/**
 * Maps a policy path (absolute) to the path on this machine under `root`. Pure: refuses
 * `..` outright, because the kernel resolves `a/..` after following `a`, so no lexical
 * rule can tell where it leads. The rules are validation's own (managedPathProblem), so a
 * policy that validates never fails here.
 */
export function hostPath (root: string, path: string): string {
  const problem = managedPathProblem(path)
  if (problem?.kind === 'nul') throw new InvalidPathError(path, 'a NUL byte cannot be part of a file name')
  if (problem !== undefined) throw new PathEscapesRootError(path, root, { dotdot: true })
  const normal = posix.normalize(path).replace(/\/+$/, '')
  return root === '/' ? (normal === '' ? '/' : normal) : root + normal
}

/** The absolute form of `--root`, without a trailing slash. */
export function normaliseRoot (root: string): string {
  const abs = posix.resolve(root)
  return abs === '/' ? '/' : abs.replace(/\/+$/, '')
}

/**
 * Checks that every existing component of a path stays inside the root once symlinks are
 * followed. Results per directory are cached for one apply, so a thousand files in one
 * directory cost one walk.
 */
export class RootGuard {
  private readonly dirs = new Map<string, Promise<boolean>>()

  private constructor (readonly root: string, private readonly realRoot: string) {}

  /** Resolves the root once; it must exist and be a directory. */
  static async open (root: string): Promise<RootGuard> {
    const abs = normaliseRoot(root)
    let real: string
    try {
      real = await realpath(abs)
      if (!(await lstat(real)).isDirectory()) throw new RootNotFoundError(abs, 'is not a directory')
    } catch (err) {
      if (err instanceof RootNotFoundError) throw err
      throw new RootNotFoundError(abs, `does not exist (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
    }
    return new RootGuard(abs, real)
  }

  /** The host path for a policy path; refuses `..`. */
  host (path: string): string {
    return hostPath(this.root, path)
  }

  /**
   * Checks the directories above `host` (which must come from `host()`); with `last`,
   * the path itself too (for paths that are followed, like an exec's cwd).
   * Returns whether that directory exists.
   */
  async check (policyPath: string, host: string, last = false): Promise<boolean> {
    return await this.checkDir(policyPath, last ? host : dirname(host))
  }

  private async checkDir (policyPath: string, dir: string): Promise<boolean> {
    if (dir === this.root) return true
    let cached = this.dirs.get(dir)
    if (cached === undefined) {
      cached = this.walk(policyPath, dir)
      this.dirs.set(dir, cached)
      // Only "exists and inside" is remembered: a directory resource may create a missing
      // directory later, and a refusal should name the path of the resource that hit it.
      cached.then((ok) => { if (!ok) this.dirs.delete(dir) }, () => this.dirs.delete(dir))
    }
    return await cached
  }

  private async walk (policyPath: string, dir: string): Promise<boolean> {
    const confined = !(this.root === '/' && this.realRoot === '/')
    // Under `/` nothing can escape, so only existence matters and the walk is one lstat.
    if (confined && !(await this.checkDir(policyPath, dirname(dir)))) return false
    let info
    try {
      info = await lstat(dir)
    } catch {
      return false
    }
    if (confined && info.isSymbolicLink()) {
      let resolved: string
      try {
        resolved = await realpath(dir)
      } catch {
        resolved = `${await readlink(dir).catch(() => '?')} (which does not exist)`
      }
      if (!isInside(this.realRoot, resolved)) throw new PathEscapesRootError(policyPath, this.root, { symlink: dir.slice(this.root.length) || '/', resolved })
    }
    return true
  }

  /** Forgets what is known about `dir`, after the apply creates or removes it. */
  forget (dir: string): void {
    this.dirs.delete(dir)
  }
}
