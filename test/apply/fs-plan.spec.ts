import { describe, expect, it } from 'vitest'
import { planPath, type Current, type Desired, type PlanContext } from '../../src/apply/fs-plan.js'

const ctx: PlanContext = { path: '/etc/x', enforceOwnership: true, self: { uid: 0, gid: 0 }, diffs: true }
const bytes = (s: string): Uint8Array => Buffer.from(s)
const file = (content: string, mode = 0o100644, uid = 0, gid = 0): Current => ({ kind: 'file', mode, uid, gid, size: content.length, content: bytes(content) })
const dir = (mode = 0o40755, entries?: number): Current => ({ kind: 'directory', mode, uid: 0, gid: 0, ...(entries !== undefined ? { entries } : {}) })
const missing: Current = { kind: 'missing' }

interface Row {
  name: string
  desired: Desired
  current: Current
  ctx?: Partial<PlanContext>
  action: string
  ops: string[]
  changes?: string[]
  warnings?: number
}

const rows: Row[] = [
  { name: 'file: create with default mode', desired: { kind: 'file', content: bytes('a') }, current: missing, action: 'create', ops: ['write:0644'] },
  { name: 'file: create with its mode and owner', desired: { kind: 'file', content: bytes('a'), mode: 0o600, owner: { label: 'www', id: 33 } }, current: missing, action: 'create', ops: ['write:0600:33'] },
  { name: 'file: identical is a no-op', desired: { kind: 'file', content: bytes('a'), mode: 0o644 }, current: file('a'), action: 'none', ops: [] },
  { name: 'file: content differs', desired: { kind: 'file', content: bytes('b') }, current: file('a'), action: 'modify', ops: ['write:0644:0'], changes: ['content'] },
  { name: 'file: replacement keeps the old mode', desired: { kind: 'file', content: bytes('b') }, current: file('a', 0o100600), action: 'modify', ops: ['write:0600:0'], changes: ['content'] },
  { name: 'file: only the mode differs', desired: { kind: 'file', content: bytes('a'), mode: 0o640 }, current: file('a'), action: 'modify', ops: ['chmod:0640'], changes: ['mode'] },
  { name: 'file: no content given manages only existence', desired: { kind: 'file' }, current: file('anything'), action: 'none', ops: [] },
  { name: 'file: no content given creates an empty file', desired: { kind: 'file' }, current: missing, action: 'create', ops: ['write:0644'] },
  { name: 'file: owner differs, as root', desired: { kind: 'file', content: bytes('a'), owner: { label: 'root', id: 0 } }, current: file('a', 0o100644, 1000), action: 'modify', ops: ['chown:0'], changes: ['owner'] },
  { name: 'file: owner differs, not root: a warning, no change', desired: { kind: 'file', content: bytes('a'), owner: { label: 'root', id: 0 } }, current: file('a', 0o100644, 1000), ctx: { enforceOwnership: false }, action: 'none', ops: [], warnings: 1 },
  { name: 'file: chown of a setuid file restores the mode', desired: { kind: 'file', content: bytes('a'), group: { label: '5', id: 5 } }, current: file('a', 0o104755), action: 'modify', ops: ['chown:-:5', 'chmod:4755'], changes: ['group'] },
  { name: 'file: a symlink in the way is replaced', desired: { kind: 'file', content: bytes('a') }, current: { kind: 'symlink', target: '/x' }, action: 'modify', ops: ['write:0644'], changes: ['type', 'content', 'mode'] },
  { name: 'file: same config data in another layout', desired: { kind: 'file', content: bytes('{"a":1}'), same: () => true }, current: file('{ "a": 1 }\n'), action: 'none', ops: [] },
  { name: 'directory: create', desired: { kind: 'directory' }, current: missing, action: 'create', ops: ['mkdir:0755'] },
  { name: 'directory: exists', desired: { kind: 'directory' }, current: dir(), action: 'none', ops: [] },
  { name: 'directory: mode differs', desired: { kind: 'directory', mode: 0o700 }, current: dir(), action: 'modify', ops: ['chmod:0700'], changes: ['mode'] },
  { name: 'directory: a symlink in the way is replaced', desired: { kind: 'directory' }, current: { kind: 'symlink', target: '/x' }, action: 'modify', ops: ['unlink', 'mkdir:0755'] },
  { name: 'directory: exists-only, a link to a directory inside the root serves', desired: { kind: 'directory', existsOnly: true }, current: { kind: 'symlink', target: '/data/srv', directory: true }, action: 'none', ops: [] },
  { name: 'directory: managed fully, a link to a directory is replaced', desired: { kind: 'directory', mode: 0o755 }, current: { kind: 'symlink', target: '/data/srv', directory: true }, action: 'modify', ops: ['unlink', 'mkdir:0755'], changes: ['type', 'mode'] },
  { name: 'symlink: create', desired: { kind: 'symlink', target: '/t', shown: '/t' }, current: missing, action: 'create', ops: ['symlink:/t'] },
  { name: 'symlink: right target', desired: { kind: 'symlink', target: '/t', shown: '/t' }, current: { kind: 'symlink', target: '/t' }, action: 'none', ops: [] },
  { name: 'symlink: wrong target', desired: { kind: 'symlink', target: '/t', shown: '/t' }, current: { kind: 'symlink', target: '/u' }, action: 'modify', ops: ['symlink:/t'], changes: ['target'] },
  { name: 'symlink: replaces a file', desired: { kind: 'symlink', target: '/t', shown: '/t' }, current: file('a'), action: 'modify', ops: ['symlink:/t'], changes: ['type', 'target'] },
  { name: 'absent: missing is a no-op', desired: { kind: 'absent', type: 'file' }, current: missing, action: 'none', ops: [] },
  { name: 'absent: file is removed', desired: { kind: 'absent', type: 'file' }, current: file('a'), action: 'delete', ops: ['unlink'], changes: ['ensure'] },
  { name: 'absent: empty directory is removed', desired: { kind: 'absent', type: 'directory' }, current: dir(0o40755, 0), action: 'delete', ops: ['rmdir'] },
  { name: 'absent: a directory emptied first by the plan', desired: { kind: 'absent', type: 'directory' }, current: dir(0o40755, 2), ctx: { removedFirst: 2 }, action: 'delete', ops: ['rmdir'] },
  { name: 'absent: symlink is removed', desired: { kind: 'absent', type: 'symlink' }, current: { kind: 'symlink', target: '/t' }, action: 'delete', ops: ['unlink'] }
]

const showOp = (op: ReturnType<typeof planPath>['ops'][number]): string => {
  const m = (n: number): string => n.toString(8).padStart(4, '0')
  switch (op.op) {
    case 'write': return ['write', m(op.mode), ...(op.uid !== undefined ? [String(op.uid)] : [])].join(':')
    case 'mkdir': return `mkdir:${m(op.mode)}`
    case 'chmod': return `chmod:${m(op.mode)}`
    case 'chown': return `chown:${op.uid ?? '-'}${op.gid !== undefined ? `:${op.gid}` : ''}`
    case 'symlink': return `symlink:${op.target}`
    default: return op.op
  }
}

describe('planPath', () => {
  it.each(rows)('$name', (row) => {
    const plan = planPath(row.desired, row.current, { ...ctx, ...row.ctx })
    expect(plan.action).toBe(row.action)
    expect(plan.ops.map(showOp)).toEqual(row.ops)
    if (row.changes !== undefined) expect(plan.changes.map((c) => c.field)).toEqual(row.changes)
    expect(plan.warnings).toHaveLength(row.warnings ?? 0)
  })

  it.each<[string, Desired, Current, string]>([
    ['a file where a directory is', { kind: 'file', content: bytes('a') }, dir(), 'WrongFileTypeError'],
    ['a directory where a file is', { kind: 'directory' }, file('a'), 'WrongFileTypeError'],
    ['a symlink where a directory is', { kind: 'symlink', target: '/t', shown: '/t' }, dir(), 'WrongFileTypeError'],
    ['a file where a fifo is', { kind: 'file' }, { kind: 'other', what: 'fifo' }, 'WrongFileTypeError'],
    ['removing a non-empty directory', { kind: 'absent', type: 'directory' }, dir(0o40755, 3), 'DirectoryNotEmptyError'],
    ['removing a file as a symlink', { kind: 'absent', type: 'symlink' }, file('a'), 'WrongFileTypeError'],
    ['an exists-only directory where a link leads to no directory inside the root (refused, never replaced)', { kind: 'directory', existsOnly: true }, { kind: 'symlink', target: '/x', directory: false }, 'WrongFileTypeError']
  ])('refuses %s', (_name, desired, current, error) => {
    expect(() => planPath(desired, current, ctx)).toThrow(expect.objectContaining({ name: error }))
  })

  it('keeps old and new content for a diff only when asked', () => {
    const desired: Desired = { kind: 'file', content: bytes('new\n') }
    expect(planPath(desired, file('old\n'), ctx).diff).toEqual({ before: bytes('old\n'), after: bytes('new\n') })
    expect(planPath(desired, file('old\n'), { ...ctx, diffs: false }).diff).toBeUndefined()
  })

  it('describes changes with octal modes and named owners', () => {
    const plan = planPath({ kind: 'file', mode: 0o600, owner: { label: 'www', id: 33 } }, file('a', 0o100644, 1000), ctx)
    expect(plan.changes).toEqual([{ field: 'mode', from: '0644', to: '0600' }, { field: 'owner', from: '1000', to: 'www (33)' }])
  })
})
