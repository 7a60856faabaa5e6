import { readFile } from 'node:fs/promises'
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
 * Resolves owner and group names to numeric ids through this machine's /etc/passwd and
 * /etc/group (not the ones under `--root`: the kernel that stores the ids is this one's).
 * Each file is read at most once per apply.
 */
export class UserDb {
  private users: Promise<Map<string, number>> | undefined
  private groups: Promise<Map<string, number>> | undefined

  constructor (private readonly files = { passwd: '/etc/passwd', group: '/etc/group' }) {}

  async uid (value: string): Promise<number> {
    if (/^\d+$/.test(value)) return Number(value)
    this.users ??= load(this.files.passwd)
    const id = (await this.users).get(value)
    if (id === undefined) throw new UnknownUserError('user', value)
    return id
  }

  async gid (value: string): Promise<number> {
    if (/^\d+$/.test(value)) return Number(value)
    this.groups ??= load(this.files.group)
    const id = (await this.groups).get(value)
    if (id === undefined) throw new UnknownUserError('group', value)
    return id
  }
}

async function load (file: string): Promise<Map<string, number>> {
  try {
    return parseIdFile(await readFile(file, 'utf8'))
  } catch {
    return new Map()
  }
}
