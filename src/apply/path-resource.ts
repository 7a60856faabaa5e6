import { readdir, realpath, stat } from 'node:fs/promises'
import { dirname, posix } from 'node:path'
import type { TemplateContext } from '../policy/index.js'
import { MAX_CONFIG_READ_BYTES, MAX_DIFF_INPUT_BYTES } from './constants.js'
import { ParentMissingError, VerifyFailedError } from './errors.js'
import type { ResourceResult } from './report.js'
import { isInside, type RootGuard } from './paths.js'
import { removeStaleTemps, type DirSync } from './atomic.js'
import type { BackupStore } from './backup.js'
import type { WriteBatch } from './durable.js'
import type { UserDb } from './owners.js'
import { desiredState, isSecretResource, type PathResource } from './desired.js'
import { planPath, type Current, type Desired, type PlanContext } from './fs-plan.js'
import { executeOps, readCurrent } from './fs-apply.js'
import { unifiedDiff } from './diff.js'

/** A resource's result before the engine adds id, type and duration. */
export type Outcome = Omit<ResourceResult, 'id' | 'type' | 'durationMs'>

/** What applying a file, directory, symlink or config needs from the run. */
export interface PathContext {
  policy: { name: string }
  guard: RootGuard
  template: TemplateContext
  users: UserDb
  dirs: DirSync
  /** Absent in a dry run. */
  batch?: WriteBatch
  backups: BackupStore
  dryRun: boolean
  diffs: boolean
  enforceOwnership: boolean
  self: { uid: number, gid: number }
  /** Resource id → index in the policy, for error paths like `resources[3].content`. */
  index: Map<string, number>
  /** Policy paths of directories (and symlinks) the policy creates: a plan treats them as there. */
  plannedDirs: Set<string>
  /** Users and groups the policy creates: a plan does not fail a file owned by one that is not there yet. */
  plannedAccounts: { users: ReadonlySet<string>, groups: ReadonlySet<string> }
  /** Policy paths the policy removes: a plan does not count them in a directory it also removes. */
  plannedRemovals: Set<string>
  /** Directories already cleaned of stale temporary files in this run. */
  temps: Map<string, Promise<unknown>>
  now: () => number
}

/**
 * Applies (or plans) one path resource: render what it should be, read what is there,
 * decide with `planPath`, make the changes with backups, and check the result. `onWait` is
 * called when a write starts waiting for its batch to be durable (it holds no file then).
 */
export async function pathOutcome (r: PathResource, shared: PathContext, onWait?: () => void): Promise<Outcome> {
  const host = shared.guard.host(r.path)
  // A secret file is never diffed, so its old content is read only to compare.
  const secret = isSecretResource(r)
  const diffs = shared.diffs && !secret
  const { desired, warnings } = await desiredState(r, {
    template: shared.template,
    where: `resources[${shared.index.get(r.id) ?? 0}]`,
    root: shared.guard.root,
    users: shared.users,
    enforceOwnership: shared.enforceOwnership,
    ...(shared.dryRun ? { planned: shared.plannedAccounts } : {})
  })
  const parentExists = await shared.guard.check(r.path, host)
  // Temporary files a killed apply left beside this path go first, whether or not it changes.
  if (!shared.dryRun && parentExists) await cleanTemps(dirname(host), shared)
  const read = readOptions(desired, diffs)
  let current: Current
  if (parentExists) current = await readCurrent(host, read)
  else if (desired.kind === 'absent' || (shared.dryRun && shared.plannedDirs.has(posix.dirname(posix.normalize(r.path))))) current = { kind: 'missing' }
  else throw new ParentMissingError(r.path, posix.dirname(r.path))
  if (current.kind === 'symlink' && desired.kind === 'directory' && desired.existsOnly === true) current.directory = await leadsToDirectoryInside(host, shared.guard.root)

  const ctx: PlanContext = { path: r.path, enforceOwnership: shared.enforceOwnership, self: shared.self, diffs, root: shared.guard.root }
  if (shared.dryRun && desired.kind === 'absent' && current.kind === 'directory') {
    // Entries that this plan removes before the directory do not keep it from being removed.
    const prefix = posix.normalize(r.path)
    ctx.removedFirst = (await readdir(host)).filter((n) => shared.plannedRemovals.has(posix.join(prefix, n))).length
  }
  const plan = planPath(desired, current, ctx)
  const outcome: Outcome = { action: plan.action, status: 'ok' }
  if (plan.changes.length > 0) outcome.changes = plan.changes
  if (plan.diff !== undefined) {
    const diff = await unifiedDiff(r.path, plan.diff.before, plan.diff.after)
    if (diff !== undefined) outcome.diff = diff
  }
  const allWarnings = [...warnings, ...plan.warnings]
  if (allWarnings.length > 0) outcome.warnings = allWarnings
  if (shared.dryRun || plan.ops.length === 0) return outcome

  await executeOps(host, plan.ops, current, {
    dirs: shared.dirs,
    batch: shared.batch,
    onWait,
    backups: shared.backups,
    backup: { at: new Date(shared.now()).toISOString(), policy: shared.policy.name, id: r.id, path: r.path, host },
    secret
  })
  if (desired.kind === 'directory' || desired.kind === 'symlink' || desired.kind === 'absent') shared.guard.forget(host)
  await verify(r.path, host, desired, ctx)
  return outcome
}

/** Whether the link at `host` resolves to a directory inside the root (which is then left as it is). */
async function leadsToDirectoryInside (host: string, root: string): Promise<boolean> {
  try {
    const [resolved, realRoot] = await Promise.all([realpath(host), realpath(root)])
    return isInside(realRoot, resolved) && (await stat(resolved)).isDirectory()
  } catch {
    return false // dangling, or a loop: not a directory
  }
}

/** Content is read when it could be equal (same size) or when a diff would show it. */
function readOptions (desired: Desired, diffs: boolean): { readContent?: (size: number) => boolean, countEntries?: boolean } {
  if (desired.kind === 'absent') return { countEntries: desired.type === 'directory' }
  if (desired.kind !== 'file' || desired.content === undefined) return {}
  const length = desired.content.length
  if (desired.same !== undefined) return { readContent: (size) => size <= MAX_CONFIG_READ_BYTES }
  return { readContent: (size) => size === length || (diffs && size <= MAX_DIFF_INPUT_BYTES) }
}

/**
 * Checks the result with a fresh lstat: type, mode, owner and size. Content is trusted when
 * the size matches, because it arrived by an atomic rename of a file we fsynced.
 */
async function verify (path: string, host: string, desired: Desired, ctx: PlanContext): Promise<void> {
  const after = await readCurrent(host, { countEntries: false })
  if (after.kind === 'file' && desired.kind === 'file' && desired.content !== undefined && after.size === desired.content.length) after.content = desired.content
  const check = planPath(desired, after, { ...ctx, diffs: false, removedFirst: 0 })
  if (check.ops.length > 0) throw new VerifyFailedError(path, check.changes.map((c) => c.field))
}

/** Once per directory and apply: temporary files a killed apply left behind. */
async function cleanTemps (dir: string, shared: PathContext): Promise<void> {
  let p = shared.temps.get(dir)
  if (p === undefined) {
    p = removeStaleTemps(dir)
    shared.temps.set(dir, p)
  }
  await p
}
