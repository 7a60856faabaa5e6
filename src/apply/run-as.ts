import { readFile } from 'node:fs/promises'

/** Who an exec runs as (`run_as`): the ids the kernel is given, and the home its environment names. */
export interface RunAsUser {
  name: string
  uid: number
  gid: number
  home: string
}

/** The entries of passwd-format text (`name:x:uid:gid:gecos:home:shell`). Pure. */
export function parsePasswd (text: string): RunAsUser[] {
  const users: RunAsUser[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const [name, , uid, gid, , home] = line.split(':')
    if (name === undefined || uid === undefined || gid === undefined || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) continue
    users.push({ name, uid: Number(uid), gid: Number(gid), home: home !== undefined && home !== '' ? home : '/' })
  }
  return users
}

/**
 * Resolves `run_as` (a name or a numeric uid) through this machine's /etc/passwd, not the one
 * under `--root`: the command runs on this machine, and a policy that manages files under the
 * root could otherwise write the passwd file that names its own uid. Returns a reason instead
 * of a user when it cannot.
 */
export async function resolveRunAs (value: string, passwd = '/etc/passwd'): Promise<RunAsUser | string> {
  let text: string
  try {
    text = await readFile(passwd, 'utf8')
  } catch (err) {
    return `cannot read ${passwd} (${(err as NodeJS.ErrnoException).code ?? String(err)})`
  }
  const numeric = /^\d+$/.test(value)
  const user = parsePasswd(text).find((u) => numeric ? u.uid === Number(value) : u.name === value)
  return user ?? `no user ${numeric ? 'with uid ' : ''}"${value}" in ${passwd}`
}

/**
 * The ids to spawn with, or why the command cannot run as `user`. Only root can switch to
 * another user; an agent that is not root refuses rather than run the command with its own
 * powers, which may be more than the user's.
 */
export function spawnIdentity (user: RunAsUser, agentUid: number | undefined): { uid: number, gid: number } | undefined | string {
  if (agentUid === 0) return { uid: user.uid, gid: user.gid }
  if (agentUid === user.uid) return undefined
  return `run_as ${user.name} needs the agent to run as root; it runs as uid ${agentUid ?? 'unknown'}`
}
