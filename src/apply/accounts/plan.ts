import type { GroupResource, UserResource } from '../../policy/schema.js'
import type { Action, Change } from '../report.js'
import { ACCOUNT_TOOL_TIMEOUT_MS, HOME_MOVE_TIMEOUT_MS } from './constants.js'
import { memberOf, type AccountDb, type UserEntry } from './database.js'

/** One shadow tool to run, without `--root` (the runner adds it). `input` goes to its stdin. */
export interface ToolCall {
  tool: 'useradd' | 'usermod' | 'userdel' | 'chpasswd' | 'groupadd' | 'groupmod' | 'groupdel'
  args: string[]
  input?: string
  timeoutMs: number
}

export interface AccountPlan {
  action: Action
  /** What differs, for the report; a password shows as `(set)` or `(changed)`, never as the hash. */
  changes: Change[]
  calls: ToolCall[]
  /** Set when the plan moves a home directory (`usermod -d -m`): its new path, whose parent must exist. */
  movesHomeTo?: string
}

/** How a set of groups is shown: sorted, so that a change reads the same every time. */
const listed = (names: Iterable<string>): string => [...names].sort().join(', ') || '(none)'

/** The user's primary group as the policy writes it: a name when it names one, else the number. */
function gidShown (gid: number, wanted: number | string, db: AccountDb): string {
  if (typeof wanted === 'number') return String(gid)
  return [...db.groups.values()].find((g) => g.gid === gid)?.name ?? String(gid)
}

/** Whether the primary group differs: a name is compared by the gid it has in the root's /etc/group. */
function gidDiffers (cur: UserEntry, wanted: number | string, db: AccountDb): boolean {
  const want = typeof wanted === 'number' ? wanted : db.groups.get(wanted)?.gid
  return want !== cur.gid
}

/**
 * What to do for a user resource, given the root's accounts and the rendered, checked
 * password hash. Fields the policy leaves out are not managed. Pure.
 */
export function planUser (r: UserResource, hash: string | undefined, db: AccountDb): AccountPlan {
  const cur = db.users.get(r.name)
  if (r.ensure === 'absent') {
    if (cur === undefined) return { action: 'none', changes: [], calls: [] }
    return {
      action: 'delete',
      changes: [{ field: 'ensure', from: 'present', to: 'absent' }, ...(r.manage_home ? [{ field: 'home', from: cur.home, to: '(removed)' }] : [])],
      calls: [{ tool: 'userdel', args: [...(r.manage_home ? ['-r'] : []), r.name], timeoutMs: r.manage_home ? HOME_MOVE_TIMEOUT_MS : ACCOUNT_TOOL_TIMEOUT_MS }]
    }
  }
  if (cur === undefined) return createUser(r, hash, db)

  const changes: Change[] = []
  const args: string[] = []
  let movesHomeTo: string | undefined
  if (r.uid !== undefined && r.uid !== cur.uid) {
    changes.push({ field: 'uid', from: String(cur.uid), to: String(r.uid) })
    args.push('-u', String(r.uid))
  }
  if (r.gid !== undefined && gidDiffers(cur, r.gid, db)) {
    changes.push({ field: 'gid', from: gidShown(cur.gid, r.gid, db), to: String(r.gid) })
    args.push('-g', String(r.gid))
  }
  if (r.groups !== undefined) {
    const have = new Set(memberOf(db, r.name))
    const want = new Set(r.groups)
    if (r.membership === 'exact') {
      if (have.size !== want.size || [...want].some((g) => !have.has(g))) {
        changes.push({ field: 'groups', from: listed(have), to: listed(want) })
        args.push('-G', [...want].join(','))
      }
    } else {
      const missing = [...want].filter((g) => !have.has(g))
      if (missing.length > 0) {
        changes.push({ field: 'groups', from: listed(have), to: listed(new Set([...have, ...missing])) })
        args.push('-a', '-G', missing.join(','))
      }
    }
  }
  if (r.home !== undefined && r.home !== cur.home) {
    changes.push({ field: 'home', from: cur.home, to: r.home })
    args.push('-d', r.home)
    if (r.manage_home) {
      args.push('-m')
      movesHomeTo = r.home
    }
  }
  if (r.shell !== undefined && r.shell !== cur.shell) {
    changes.push({ field: 'shell', from: cur.shell, to: r.shell })
    args.push('-s', r.shell)
  }
  if (r.comment !== undefined && r.comment !== cur.comment) {
    changes.push({ field: 'comment', from: cur.comment, to: r.comment })
    args.push('-c', r.comment)
  }
  const calls: ToolCall[] = []
  if (args.length > 0) calls.push({ tool: 'usermod', args: [...args, r.name], timeoutMs: movesHomeTo !== undefined ? HOME_MOVE_TIMEOUT_MS : ACCOUNT_TOOL_TIMEOUT_MS })
  if (hash !== undefined && hash !== cur.hash) {
    changes.push({ field: 'password', to: '(changed)' })
    calls.push(setPassword(r.name, hash))
  }
  return { action: calls.length > 0 ? 'modify' : 'none', changes, calls, ...(movesHomeTo !== undefined ? { movesHomeTo } : {}) }
}

function createUser (r: UserResource, hash: string | undefined, db: AccountDb): AccountPlan {
  const changes: Change[] = []
  const args: string[] = []
  if (r.system) {
    changes.push({ field: 'system', to: 'yes' })
    args.push('-r')
  }
  if (r.uid !== undefined) {
    changes.push({ field: 'uid', to: String(r.uid) })
    args.push('-u', String(r.uid))
  }
  if (r.gid !== undefined) {
    changes.push({ field: 'gid', to: String(r.gid) })
    args.push('-g', String(r.gid))
  } else if (db.groups.has(r.name)) {
    // useradd would make a group of the user's name and refuses when one exists (a group
    // resource of the same name, or one left by an earlier user): that group is the one meant.
    changes.push({ field: 'gid', to: r.name })
    args.push('-g', r.name)
  }
  if (r.groups !== undefined && r.groups.length > 0) {
    changes.push({ field: 'groups', to: listed(new Set(r.groups)) })
    args.push('-G', [...new Set(r.groups)].join(','))
  }
  if (r.home !== undefined) {
    changes.push({ field: 'home', to: r.home })
    args.push('-d', r.home)
  }
  // -M as well as -m: a root's login.defs may say CREATE_HOME yes, and the policy decides.
  args.push(r.manage_home ? '-m' : '-M')
  if (r.shell !== undefined) {
    changes.push({ field: 'shell', to: r.shell })
    args.push('-s', r.shell)
  }
  if (r.comment !== undefined) {
    changes.push({ field: 'comment', to: r.comment })
    args.push('-c', r.comment)
  }
  const calls: ToolCall[] = [{ tool: 'useradd', args: [...args, r.name], timeoutMs: ACCOUNT_TOOL_TIMEOUT_MS }]
  if (hash !== undefined) {
    changes.push({ field: 'password', to: '(set)' })
    calls.push(setPassword(r.name, hash))
  }
  return { action: 'create', changes, calls }
}

/**
 * `chpasswd -e` reads `name:hash` on stdin, so the hash never shows in a process list
 * (`useradd -p` and `usermod -p` would put it in argv, readable by every local user).
 */
function setPassword (name: string, hash: string): ToolCall {
  return { tool: 'chpasswd', args: ['-e'], input: `${name}:${hash}\n`, timeoutMs: ACCOUNT_TOOL_TIMEOUT_MS }
}

/** What to do for a group resource. Pure. */
export function planGroup (r: GroupResource, db: AccountDb): AccountPlan {
  const cur = db.groups.get(r.name)
  if (r.ensure === 'absent') {
    if (cur === undefined) return { action: 'none', changes: [], calls: [] }
    return { action: 'delete', changes: [{ field: 'ensure', from: 'present', to: 'absent' }], calls: [{ tool: 'groupdel', args: [r.name], timeoutMs: ACCOUNT_TOOL_TIMEOUT_MS }] }
  }
  if (cur === undefined) {
    const changes: Change[] = []
    const args: string[] = []
    if (r.system) {
      changes.push({ field: 'system', to: 'yes' })
      args.push('-r')
    }
    if (r.gid !== undefined) {
      changes.push({ field: 'gid', to: String(r.gid) })
      args.push('-g', String(r.gid))
    }
    return { action: 'create', changes, calls: [{ tool: 'groupadd', args: [...args, r.name], timeoutMs: ACCOUNT_TOOL_TIMEOUT_MS }] }
  }
  if (r.gid !== undefined && r.gid !== cur.gid) {
    return { action: 'modify', changes: [{ field: 'gid', from: String(cur.gid), to: String(r.gid) }], calls: [{ tool: 'groupmod', args: ['-g', String(r.gid), r.name], timeoutMs: ACCOUNT_TOOL_TIMEOUT_MS }] }
  }
  return { action: 'none', changes: [], calls: [] }
}
