import { access, constants, stat } from 'node:fs/promises'
import { CliError, EXIT } from './output.js'

/** What each system error a person can fix means, in words; the code follows in brackets. */
const ERRNO_TEXT: Readonly<Record<string, string>> = {
  EACCES: 'permission denied (run as a user who may, or choose another path)',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'is a directory',
  EROFS: 'read-only file system',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files in this process (raise its limit: ulimit -n)',
  ENFILE: 'too many open files on this system',
  EADDRINUSE: 'address already in use (another process listens there)',
  EADDRNOTAVAIL: 'address not available on this host'
}

/**
 * A system error whose cause is the machine, not Grapevine (a directory it may not write, a
 * port in use), as one line naming the path and the operation; undefined for anything else.
 */
export function environmentProblem (err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException | undefined
  const text = typeof e?.code === 'string' ? ERRNO_TEXT[e.code] : undefined
  if (text === undefined || e === undefined) return undefined
  const what = e.path !== undefined ? `${e.syscall ?? 'use'} ${e.path}` : e.message.split('\n')[0] ?? ''
  return `cannot ${what}: ${text} [${e.code as string}]`
}

/**
 * Commands that read policy files check each first: one that cannot be read is a resource the
 * command needs (69), a directory given as one a usage error (64); both in one line.
 */
export async function checkPolicyFiles (files: readonly string[]): Promise<void> {
  for (const file of files) {
    let isDir: boolean
    try {
      isDir = (await stat(file)).isDirectory()
      if (!isDir) await access(file, constants.R_OK)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new CliError(`cannot read the policy file ${file}: ${(code !== undefined ? ERRNO_TEXT[code] : undefined) ?? (err as Error).message}${code !== undefined ? ` [${code}]` : ''}`, EXIT.UNAVAILABLE)
    }
    if (isDir) throw new CliError(`${file} is a directory: give a policy file (YAML or JSON)`, EXIT.USAGE)
  }
}

/** Every command's --bootstrap is a peer's multiaddr with /p2p/<id>, by the agent's own rule (node/options.ts); anything else is a usage error, before any dial. */
export async function checkBootstrapFlags (addrs: readonly string[]): Promise<void> {
  const { checkBootstrap } = await import('../node/options.js')
  try {
    checkBootstrap(addrs)
  } catch (err) {
    if ((err as Error).name === 'AgentOptionsError') throw new CliError((err as Error).message, EXIT.USAGE)
    throw err
  }
}
