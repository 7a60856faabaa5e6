import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { UnknownUserError } from './errors.js'

/** `name → id` from passwd- or group-format text (`name:x:id:...`). Pure. */
export function parseIdFile (text: string): Map<string, number> {
  const ids = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const [name, , id] = line.split(':')
    if (name === undefined || id === undefined || !/^\d+$/.test(id)) continue
    if (!ids.has(name)) ids.set(name, Number(id))
  }
  return ids
}

/**
 * Resolves owner and group names to numeric ids through the managed machine's /etc/passwd and
 * /etc/group: the root's own when it has them (a sandbox root rehearsing a machine, whose users
 * a `user` resource creates there), else this machine's. A name not found is looked up once
 * more in a fresh read: a `user` or `group` resource earlier in the same apply, or an exec
 * running adduser, may have just created it.
 */
export class UserDb {
  private users: Promise<Map<string, number>> | undefined
  private groups: Promise<Map<string, number>> | undefined

  constructor (private readonly root = '/', private readonly files = { passwd: 'etc/passwd', group: 'etc/group' }) {}

  async uid (value: string): Promise<number> {
    if (/^\d+$/.test(value)) return Number(value)
    this.users ??= load(this.root, this.files.passwd)
    let id = (await this.users).get(value)
    if (id === undefined) {
      this.users = load(this.root, this.files.passwd)
      id = (await this.users).get(value)
    }
    if (id === undefined) throw new UnknownUserError('user', value)
    return id
  }

  async gid (value: string): Promise<number> {
    if (/^\d+$/.test(value)) return Number(value)
    this.groups ??= load(this.root, this.files.group)
    let id = (await this.groups).get(value)
    if (id === undefined) {
      this.groups = load(this.root, this.files.group)
      id = (await this.groups).get(value)
    }
    if (id === undefined) throw new UnknownUserError('group', value)
    return id
  }
}

/** The root's file (`<root>/etc/passwd`) when it has one, else this machine's. */
async function load (root: string, file: string): Promise<Map<string, number>> {
  for (const path of root === '/' ? [`/${file}`] : [join(root, file), `/${file}`]) {
    try {
      return parseIdFile(await readFile(path, 'utf8'))
    } catch {
      // Not there: the next place.
    }
  }
  return new Map()
}
