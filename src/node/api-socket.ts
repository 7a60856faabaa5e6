import { createConnection, type Server } from 'node:net'
import { chmod, chown, mkdtemp, readFile, rename, rm, stat, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'

/** Linux's sun_path holds 108 bytes with the closing NUL; libuv refuses longer paths. */
export const MAX_SOCKET_PATH_BYTES = 107

/** The socket could not be served: the message says why and what to change. */
export class ApiSocketError extends Error {
  static override name = 'ApiSocketError'
  override name = 'ApiSocketError'
}

export interface SocketOptions {
  /** A group whose members may use the socket too (mode 0660 instead of 0600). */
  gid?: number
}

/** A served socket. */
export interface ServedSocket {
  path: string
  /** The group was given search permission on the socket's directory. */
  sharedDir: boolean
  /** Removes the socket file, if it is still ours (once the server is closed). */
  remove: () => Promise<void>
}

/** A group's id from a number or a name in /etc/group (names only NSS knows need the number). */
export async function resolveGroup (group: string | number): Promise<number> {
  if (typeof group === 'number' || /^\d+$/.test(group)) return Number(group)
  const lines = (await readFile('/etc/group', 'utf8').catch(() => '')).split('\n')
  const line = lines.find((l) => l.split(':')[0] === group)
  const gid = line?.split(':')[2]
  if (gid === undefined || !/^\d+$/.test(gid)) throw new ApiSocketError(`no group "${group}" in /etc/group: give its name or its numeric id`)
  return Number(gid)
}

async function answers (path: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const probe = createConnection(path)
    probe.once('connect', () => { probe.destroy(); resolve(true) })
    probe.once('error', () => { resolve(false) })
  })
}

/**
 * Lets `gid` reach a socket in `dir` (search permission only: members can open what they
 * know the name of and its own mode allows, and cannot list the directory).
 */
async function letGroupThrough (dir: string, gid: number): Promise<boolean> {
  const info = await stat(dir)
  if ((info.mode & 0o001) !== 0 || (info.gid === gid && (info.mode & 0o010) !== 0)) return false
  if (info.gid !== gid) {
    // A new group gets search only, never the read or write the old group had.
    await chown(dir, -1, gid)
    await chmod(dir, ((info.mode & 0o7777) & ~0o070) | 0o010)
  } else {
    await chmod(dir, (info.mode & 0o7777) | 0o010)
  }
  return true
}

/**
 * Serves `server` on a Unix socket at `path`, mode 0600 (0660 with a group). The socket is
 * made in a private directory, given its mode there and only then renamed into place, so it
 * is never reachable with a wider mode, and no process-wide umask is changed for it. A live
 * socket at `path` (another agent on this state directory) is an error; a stale one is replaced.
 */
export async function serveSocket (server: Server, path: string, opts: SocketOptions = {}): Promise<ServedSocket> {
  const dir = dirname(path)
  const temp = await mkdtemp(join(dir, '.a'))
  const tempSocket = join(temp, 's')
  for (const p of [path, tempSocket]) {
    if (Buffer.byteLength(p) > MAX_SOCKET_PATH_BYTES) {
      await rm(temp, { recursive: true, force: true })
      throw new ApiSocketError(`the API socket path ${p} is ${Buffer.byteLength(p)} bytes, over the ${MAX_SOCKET_PATH_BYTES} a Unix socket allows: use a shorter --state`)
    }
  }
  try {
    if (await answers(path)) throw new ApiSocketError(`another process serves ${path}: is an agent already running on this state directory?`)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(tempSocket, () => { server.off('error', reject); resolve() })
    })
    await chmod(tempSocket, opts.gid === undefined ? 0o600 : 0o660)
    if (opts.gid !== undefined) await chown(tempSocket, -1, opts.gid)
    await rename(tempSocket, path)
  } catch (err) {
    if (server.listening) await new Promise((resolve) => server.close(resolve))
    throw err
  } finally {
    await rm(temp, { recursive: true, force: true })
  }
  const sharedDir = opts.gid !== undefined && await letGroupThrough(dir, opts.gid)
  const ino = (await stat(path)).ino
  return {
    path,
    sharedDir,
    remove: async () => {
      // Only our own socket: a newer agent may have replaced it.
      if ((await stat(path).catch(() => undefined))?.ino === ino) await unlink(path).catch(() => {})
    }
  }
}
