import { DEFAULT_DIRECTORY_MODE, DEFAULT_FILE_MODE } from './constants.js'
import { REDACTED } from '../secrets/constants.js'
import { DirectoryNotEmptyError, WrongFileTypeError } from './errors.js'
import { describeContent } from './diff.js'
import type { Action, Change } from './report.js'

/** What is at a path now, as far as planning needs to know. */
export type Current =
  | { kind: 'missing' }
  /** `content` is present when it was read: always when its size could match what is wanted. */
  | { kind: 'file', mode: number, uid: number, gid: number, size: number, content?: Uint8Array }
  /** `entries` is present when it was counted (for removal). */
  | { kind: 'directory', mode: number, uid: number, gid: number, entries?: number }
  /** `directory` is present when it was looked at (for an exists-only directory): the link leads to a directory inside the root. */
  | { kind: 'symlink', target: string, directory?: boolean }
  | { kind: 'other', what: string }

/** Who should own a path: the policy's words and the ids they resolved to. */
export interface Ownership {
  owner?: { label: string, id: number }
  group?: { label: string, id: number }
}

export type Desired =
  /** `secret`: rendered from a secret, so its content is never shown, diffed or hashed in a report. */
  | ({ kind: 'file', mode?: number, content?: Uint8Array, same?: (existing: Uint8Array) => boolean, secret?: boolean } & Ownership)
  /** `existsOnly`: the policy asks only that it be there (isExistsOnlyDirectory), so a link to a directory serves. */
  | ({ kind: 'directory', mode?: number, existsOnly?: boolean } & Ownership)
  | { kind: 'symlink', target: string, shown: string }
  | { kind: 'absent', type: 'file' | 'directory' | 'symlink' }

export type Op =
  | { op: 'write', content: Uint8Array, mode: number, uid?: number, gid?: number }
  | { op: 'mkdir', mode: number }
  | { op: 'symlink', target: string }
  | { op: 'chmod', mode: number }
  | { op: 'chown', uid?: number, gid?: number }
  | { op: 'unlink' }
  | { op: 'rmdir' }

export interface FsPlan {
  action: Action
  changes: Change[]
  warnings: string[]
  /** Old and new content, when a diff should be shown; the shell renders it. */
  diff?: { before: Uint8Array, after: Uint8Array }
  /** Applied in order; the executor backs up what a write, symlink, unlink or rmdir replaces. */
  ops: Op[]
}

export interface PlanContext {
  /** The policy path, for messages and diff headers. */
  path: string
  /** Root may chown; anyone else only reports ownership differences. */
  enforceOwnership: boolean
  /** The applier's own ids: what a file it creates is owned by when it cannot chown. */
  self: { uid: number, gid: number }
  /** Include unified diffs for content changes. */
  diffs: boolean
  /** For `ensure: absent` directories in a plan: entries that other resources will remove first. */
  removedFirst?: number
  /** `--root`, so a link target under it is shown as the policy wrote it. */
  root?: string
}

/**
 * How a secret file's content change is reported: never a diff, and never a hash either, since
 * a hash of `password=hunter2` is found by trying passwords. Its old content is shown as REDACTED too:
 * it held the previous secret.
 */
export const SECRET_CHANGED = '(secret changed)'

export const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0')

export function parseMode (mode: string | undefined): number | undefined {
  return mode === undefined ? undefined : parseInt(mode, 8)
}

/** A link target under the root, as the policy would write it: the inverse of putting absolute targets under the root. */
export function unrooted (target: string, root: string | undefined): string {
  if (root === undefined || root === '/' || !target.startsWith(root + '/')) return target
  return target.slice(root.length)
}

const shown = (o: { label: string, id: number }): string => o.label === String(o.id) ? o.label : `${o.label} (${o.id})`

/**
 * Decides what to do to make `current` into `desired`. Pure: every decision about a path
 * is here, tested with tables; the shell only reads the current state and runs the ops.
 */
export function planPath (desired: Desired, current: Current, ctx: PlanContext): FsPlan {
  switch (desired.kind) {
    case 'file': return planFile(desired, current, ctx)
    case 'directory': return planDirectory(desired, current, ctx)
    case 'symlink': return planSymlink(desired, current, ctx)
    case 'absent': return planAbsent(desired, current, ctx)
  }
}

function ownershipChanges (desired: Ownership, cur: { uid: number, gid: number } | undefined, ctx: PlanContext, plan: FsPlan): { uid?: number, gid?: number } {
  const out: { uid?: number, gid?: number } = {}
  for (const [field, want, have] of [['owner', desired.owner, cur?.uid], ['group', desired.group, cur?.gid]] as const) {
    if (want === undefined) continue
    if (have === want.id) continue
    if (ctx.enforceOwnership) {
      if (have !== undefined) plan.changes.push({ field, from: String(have), to: shown(want) })
      else plan.changes.push({ field, to: shown(want) })
      if (field === 'owner') out.uid = want.id
      else out.gid = want.id
    } else if (have !== undefined) {
      plan.warnings.push(`${field} not enforced (not running as root): is ${have}, the policy wants ${shown(want)}`)
    } else if (want.id !== (field === 'owner' ? ctx.self.uid : ctx.self.gid)) {
      plan.warnings.push(`${field} not enforced (not running as root): the policy wants ${shown(want)}`)
    }
  }
  return out
}

function planFile (desired: Extract<Desired, { kind: 'file' }>, cur: Current, ctx: PlanContext): FsPlan {
  const plan: FsPlan = { action: 'none', changes: [], warnings: [], ops: [] }
  if (cur.kind === 'directory' || cur.kind === 'other') throw new WrongFileTypeError(ctx.path, cur.kind === 'other' ? cur.what : 'directory', 'file')
  if (cur.kind === 'missing' || cur.kind === 'symlink') {
    const content = desired.content ?? new Uint8Array()
    const mode = desired.mode ?? DEFAULT_FILE_MODE
    plan.action = cur.kind === 'missing' ? 'create' : 'modify'
    if (cur.kind === 'symlink') plan.changes.push({ field: 'type', from: `symlink to ${unrooted(cur.target, ctx.root)}`, to: 'file' })
    plan.changes.push({ field: 'content', to: desired.secret === true ? REDACTED : describeContent(content) }, { field: 'mode', to: octal(mode) })
    const ids = ownershipChanges(desired, undefined, ctx, plan)
    plan.ops.push({ op: 'write', content, mode, ...ids })
    return plan
  }
  const haveMode = cur.mode & 0o7777
  const contentDiffers = desired.content !== undefined && !sameContent(desired, cur)
  if (contentDiffers) {
    const content = desired.content as Uint8Array
    if (desired.secret === true) plan.changes.push({ field: 'content', from: REDACTED, to: SECRET_CHANGED })
    else {
      plan.changes.push({ field: 'content', from: cur.content !== undefined ? describeContent(cur.content) : `${cur.size} bytes`, to: describeContent(content) })
      if (ctx.diffs && cur.content !== undefined) plan.diff = { before: cur.content, after: content }
    }
  }
  const wantMode = desired.mode ?? haveMode
  if (wantMode !== haveMode) plan.changes.push({ field: 'mode', from: octal(haveMode), to: octal(wantMode) })
  const ids = ownershipChanges(desired, cur, ctx, plan)
  if (contentDiffers) {
    // The replacement keeps the old file's owner unless the policy names one.
    const keep = ctx.enforceOwnership ? { uid: ids.uid ?? cur.uid, gid: ids.gid ?? cur.gid } : {}
    plan.ops.push({ op: 'write', content: desired.content as Uint8Array, mode: wantMode, ...keep })
  } else {
    if (ids.uid !== undefined || ids.gid !== undefined) plan.ops.push({ op: 'chown', ...ids })
    // chmod after chown: chown clears set-id bits.
    if (wantMode !== haveMode || ((ids.uid !== undefined || ids.gid !== undefined) && (haveMode & 0o6000) !== 0)) plan.ops.push({ op: 'chmod', mode: wantMode })
  }
  if (plan.changes.length > 0) plan.action = 'modify'
  return plan
}

function sameContent (desired: Extract<Desired, { kind: 'file' }>, cur: Extract<Current, { kind: 'file' }>): boolean {
  const want = desired.content as Uint8Array
  if (cur.content === undefined) return false
  if (desired.same !== undefined) return desired.same(cur.content)
  return cur.content.length === want.length && Buffer.from(cur.content.buffer, cur.content.byteOffset, cur.content.length).equals(want)
}

function planDirectory (desired: Extract<Desired, { kind: 'directory' }>, cur: Current, ctx: PlanContext): FsPlan {
  const plan: FsPlan = { action: 'none', changes: [], warnings: [], ops: [] }
  if (cur.kind === 'file' || cur.kind === 'other') throw new WrongFileTypeError(ctx.path, cur.kind === 'other' ? cur.what : 'file', 'directory')
  // /srv linked to a data disk is a directory for whoever only needs one there; replacing it would
  // empty it. Any other link is refused, never replaced: a policy that only makes sure of a
  // directory (which a scoped admin may do above its grant, docs/trust.md) changes nothing there.
  if (cur.kind === 'symlink' && desired.existsOnly === true) {
    if (cur.directory === true) return plan
    throw new WrongFileTypeError(ctx.path, 'symlink that leads to no directory inside the root', 'directory')
  }
  if (cur.kind === 'missing' || cur.kind === 'symlink') {
    const mode = desired.mode ?? DEFAULT_DIRECTORY_MODE
    plan.action = cur.kind === 'missing' ? 'create' : 'modify'
    if (cur.kind === 'symlink') {
      plan.changes.push({ field: 'type', from: `symlink to ${unrooted(cur.target, ctx.root)}`, to: 'directory' })
      plan.ops.push({ op: 'unlink' })
    }
    plan.changes.push({ field: 'mode', to: octal(mode) })
    plan.ops.push({ op: 'mkdir', mode })
    const ids = ownershipChanges(desired, undefined, ctx, plan)
    if (ids.uid !== undefined || ids.gid !== undefined) plan.ops.push({ op: 'chown', ...ids })
    return plan
  }
  const haveMode = cur.mode & 0o7777
  const wantMode = desired.mode ?? haveMode
  if (wantMode !== haveMode) plan.changes.push({ field: 'mode', from: octal(haveMode), to: octal(wantMode) })
  const ids = ownershipChanges(desired, cur, ctx, plan)
  if (ids.uid !== undefined || ids.gid !== undefined) plan.ops.push({ op: 'chown', ...ids })
  if (wantMode !== haveMode || ((ids.uid !== undefined || ids.gid !== undefined) && (haveMode & 0o6000) !== 0)) plan.ops.push({ op: 'chmod', mode: wantMode })
  if (plan.changes.length > 0) plan.action = 'modify'
  return plan
}

function planSymlink (desired: Extract<Desired, { kind: 'symlink' }>, cur: Current, ctx: PlanContext): FsPlan {
  const plan: FsPlan = { action: 'none', changes: [], warnings: [], ops: [] }
  if (cur.kind === 'directory' || cur.kind === 'other') throw new WrongFileTypeError(ctx.path, cur.kind === 'other' ? cur.what : 'directory', 'symlink')
  if (cur.kind === 'symlink' && cur.target === desired.target) return plan
  plan.action = cur.kind === 'missing' ? 'create' : 'modify'
  if (cur.kind === 'file') plan.changes.push({ field: 'type', from: 'file', to: 'symlink' })
  plan.changes.push(cur.kind === 'symlink' ? { field: 'target', from: unrooted(cur.target, ctx.root), to: desired.shown } : { field: 'target', to: desired.shown })
  plan.ops.push({ op: 'symlink', target: desired.target })
  return plan
}

function planAbsent (desired: Extract<Desired, { kind: 'absent' }>, cur: Current, ctx: PlanContext): FsPlan {
  const plan: FsPlan = { action: 'none', changes: [], warnings: [], ops: [] }
  if (cur.kind === 'missing') return plan
  const found = cur.kind === 'other' ? cur.what : cur.kind
  if (desired.type === 'directory') {
    if (cur.kind !== 'directory') throw new WrongFileTypeError(ctx.path, found, 'directory to remove')
    const left = (cur.entries ?? 0) - (ctx.removedFirst ?? 0)
    if (left > 0) throw new DirectoryNotEmptyError(ctx.path, left)
    plan.ops.push({ op: 'rmdir' })
  } else if (desired.type === 'symlink') {
    if (cur.kind !== 'symlink') throw new WrongFileTypeError(ctx.path, found, 'symlink to remove')
    plan.ops.push({ op: 'unlink' })
  } else {
    if (cur.kind !== 'file' && cur.kind !== 'symlink') throw new WrongFileTypeError(ctx.path, found, 'file to remove')
    plan.ops.push({ op: 'unlink' })
  }
  plan.action = 'delete'
  plan.changes.push({ field: 'ensure', from: cur.kind === 'symlink' ? `symlink to ${unrooted(cur.target, ctx.root)}` : cur.kind, to: 'absent' })
  return plan
}
