import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { AccountDatabaseMissingError } from '../errors.js'
import { ACCOUNTS_RUN_KEY } from './constants.js'

export interface UserEntry {
  name: string
  uid: number
  gid: number
  comment: string
  home: string
  shell: string
  /** The hash from /etc/shadow, or the passwd field when the root keeps no shadow file. Never reported. */
  hash: string
}

export interface GroupEntry {
  name: string
  gid: number
  members: string[]
}

/** A root's accounts as its own /etc/passwd, /etc/group and /etc/shadow say. */
export interface AccountDb {
  users: Map<string, UserEntry>
  groups: Map<string, GroupEntry>
}

/** Lines of a colon-separated file: no blanks, no comments, no NIS `+`/`-` entries (not ours to judge). */
function records (text: string, fields: number): string[][] {
  const out: string[][] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue
    const f = line.split(':')
    if (f.length >= fields && f[0] !== '') out.push(f)
  }
  return out
}

const isId = (s: string | undefined): s is string => s !== undefined && /^\d{1,10}$/.test(s)

/** `/etc/passwd` → users by name; the first entry of a name wins, as getpwnam(3) finds it. Pure. */
export function parsePasswd (text: string): Map<string, Omit<UserEntry, 'hash'> & { passwd: string }> {
  const users = new Map<string, Omit<UserEntry, 'hash'> & { passwd: string }>()
  for (const [name, passwd, uid, gid, comment, home, shell] of records(text, 7)) {
    if (!isId(uid) || !isId(gid) || users.has(name as string)) continue
    users.set(name as string, { name: name as string, passwd: passwd as string, uid: Number(uid), gid: Number(gid), comment: comment as string, home: home as string, shell: shell as string })
  }
  return users
}

/** `/etc/group` → groups by name, with their listed members. Pure. */
export function parseGroup (text: string): Map<string, GroupEntry> {
  const groups = new Map<string, GroupEntry>()
  for (const [name, , gid, members] of records(text, 4)) {
    if (!isId(gid) || groups.has(name as string)) continue
    groups.set(name as string, { name: name as string, gid: Number(gid), members: (members as string).split(',').filter((m) => m !== '') })
  }
  return groups
}

/** `/etc/shadow` → hash by user name. Pure. */
export function parseShadow (text: string): Map<string, string> {
  const hashes = new Map<string, string>()
  for (const [name, hash] of records(text, 2)) if (!hashes.has(name as string)) hashes.set(name as string, hash as string)
  return hashes
}

/** Joins the three files: a user's hash is in shadow when the passwd field says `x`. Pure. */
export function accountDb (passwd: string, group: string, shadow: string | undefined): AccountDb {
  const hashes = shadow === undefined ? new Map<string, string>() : parseShadow(shadow)
  const users = new Map<string, UserEntry>()
  for (const [name, { passwd: field, ...u }] of parsePasswd(passwd)) {
    users.set(name, { ...u, hash: field === 'x' ? hashes.get(name) ?? '' : field })
  }
  return { users, groups: parseGroup(group) }
}

/** Reads a root's account files; a root without /etc/passwd or /etc/group has nothing the tools could edit. */
export async function loadAccountDb (root: string): Promise<AccountDb> {
  const read = async (name: string, required: boolean): Promise<string | undefined> => {
    try {
      return await readFile(join(root, 'etc', name), 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' && !required) return undefined
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new AccountDatabaseMissingError(root, `/etc/${name}`)
      throw err
    }
  }
  // Read together, but the error reported is the first file's that failed, in this order, not
  // whichever read happened to fail first: the same root always gets the same message.
  const settled = await Promise.allSettled([read('passwd', true), read('group', true), read('shadow', false)])
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  const [passwd, group, shadow] = settled.map((r) => (r as PromiseFulfilledResult<string | undefined>).value)
  return accountDb(passwd as string, group as string, shadow)
}

/** What a rewrite of the account files changes: the tools rename a new file into place. */
async function signature (root: string): Promise<string> {
  const parts = await Promise.all(['passwd', 'group', 'shadow'].map(async (name) => {
    try {
      const s = await stat(join(root, 'etc', name), { bigint: true })
      return `${s.ino}/${s.size}/${s.mtimeNs}/${s.ctimeNs}`
    } catch {
      return '-'
    }
  }))
  return parts.join(' ')
}

interface Cached { signature: string, db: Promise<AccountDb> }

/**
 * The root's accounts, parsed once per apply and shared by its user and group resources
 * (SystemContext.run). Three stats tell whether something else (an exec running adduser)
 * rewrote the files since, and they are read again then; `forgetAccounts` after our own tools.
 */
export async function cachedAccounts (run: Map<string, unknown>, root: string): Promise<AccountDb> {
  const sig = await signature(root)
  let cached = run.get(ACCOUNTS_RUN_KEY) as Cached | undefined
  if (cached === undefined || cached.signature !== sig) {
    const entry: Cached = { signature: sig, db: loadAccountDb(root) }
    cached = entry
    run.set(ACCOUNTS_RUN_KEY, entry)
    // A failed read is not kept: the next resource tries again.
    entry.db.catch(() => { if (run.get(ACCOUNTS_RUN_KEY) === entry) run.delete(ACCOUNTS_RUN_KEY) })
  }
  return await cached.db
}

export function forgetAccounts (run: Map<string, unknown>): void {
  run.delete(ACCOUNTS_RUN_KEY)
}

/** The groups that list `user` as a member (not its primary group, which passwd names). */
export function memberOf (db: AccountDb, user: string): string[] {
  return [...db.groups.values()].filter((g) => g.members.includes(user)).map((g) => g.name)
}
