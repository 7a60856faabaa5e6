/** A managed path would reach outside `--root`, through `..` or through a symlink. */
export class PathEscapesRootError extends Error {
  static override name = 'PathEscapesRootError'
  override name = 'PathEscapesRootError'
  constructor (readonly path: string, readonly root: string, readonly via: { dotdot: true } | { symlink: string, resolved: string }) {
    super('dotdot' in via
      ? `${path}: ".." is not allowed in a managed path (it could climb out of the root ${root}); write the path without it`
      : `${path}: refused, ${via.symlink} is a symlink to ${via.resolved}, outside the root ${root}`)
  }
}

/** `--root` does not exist or is not a directory. */
export class RootNotFoundError extends Error {
  static override name = 'RootNotFoundError'
  override name = 'RootNotFoundError'
  constructor (readonly root: string, reason: string) {
    super(`root ${root} ${reason}`)
  }
}

/** The directory a file, symlink or config would go in does not exist. */
export class ParentMissingError extends Error {
  static override name = 'ParentMissingError'
  override name = 'ParentMissingError'
  constructor (readonly path: string, readonly parent: string) {
    super(`${path}: the directory ${parent} does not exist; manage it with a directory resource (it is ordered first automatically)`)
  }
}

/** Something of another kind is in the way, and replacing it could lose data. */
export class WrongFileTypeError extends Error {
  static override name = 'WrongFileTypeError'
  override name = 'WrongFileTypeError'
  constructor (readonly path: string, readonly found: string, readonly wanted: string) {
    super(`${path}: is a ${found}, the policy wants a ${wanted}; refusing to replace it, remove it by hand if that is intended`)
  }
}

/** `ensure: absent` on a directory that still has entries. */
export class DirectoryNotEmptyError extends Error {
  static override name = 'DirectoryNotEmptyError'
  override name = 'DirectoryNotEmptyError'
  constructor (readonly path: string, readonly entries: number) {
    super(`${path}: cannot remove, the directory is not empty (${entries} entr${entries === 1 ? 'y' : 'ies'}); only empty directories are removed`)
  }
}

/** An owner or group name that this machine's /etc/passwd or /etc/group does not know. */
export class UnknownUserError extends Error {
  static override name = 'UnknownUserError'
  override name = 'UnknownUserError'
  constructor (readonly kind: 'user' | 'group', readonly value: string) {
    super(`unknown ${kind} "${value}": not in /etc/${kind === 'user' ? 'passwd' : 'group'} and not numeric`)
  }
}

/** Config data that the chosen format cannot represent, such as a nested object in an env file. */
export class ConfigFormatError extends Error {
  static override name = 'ConfigFormatError'
  override name = 'ConfigFormatError'
  constructor (readonly format: string, message: string) {
    super(`cannot write ${format}: ${message}`)
  }
}

/** An exec command (or a guard) could not start, exited non-zero or was killed. */
export class ExecFailedError extends Error {
  static override name = 'ExecFailedError'
  override name = 'ExecFailedError'
  constructor (readonly command: string, readonly exitCode: number | null, readonly signal: string | null, detail: string) {
    super(`${command}: ${detail}`)
  }
}

/** An exec ran past its timeout; its process group was killed. */
export class ExecTimeoutError extends Error {
  static override name = 'ExecTimeoutError'
  override name = 'ExecTimeoutError'
  constructor (readonly command: string, readonly seconds: number) {
    super(`${command}: timed out after ${seconds} s; its process group was killed`)
  }
}

/** After applying, the resource still differs from the policy (a file system that ignores chmod, a concurrent writer). */
export class VerifyFailedError extends Error {
  static override name = 'VerifyFailedError'
  override name = 'VerifyFailedError'
  constructor (readonly path: string, readonly fields: string[]) {
    super(`${path}: still differs after applying (${fields.join(', ')})`)
  }
}

/** An unexpected operating-system error while applying one resource; `cause` holds the original. */
export class ResourceFailedError extends Error {
  static override name = 'ResourceFailedError'
  override name = 'ResourceFailedError'
  constructor (readonly id: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** The resources' requires/notify edges form a cycle (the policy validator normally catches this first). */
export class DependencyCycleError extends Error {
  static override name = 'DependencyCycleError'
  override name = 'DependencyCycleError'
  constructor (readonly cycle: string[]) {
    super(`dependency cycle: ${cycle.join(' -> ')} (each waits for the next)`)
  }
}

/** What a full or failing disk's error codes mean, in words. */
const STATE_WRITE_CAUSES: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
  EFBIG: 'file too large'
}

/** Whether `err` is a disk that cannot take a write (full, over quota, failing): StateWriteError's codes. */
export function isStateWriteFailure (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' && code in STATE_WRITE_CAUSES
}

/** The state directory's disk could not take a write (full, over quota, failing): nothing was applied. */
export class StateWriteError extends Error {
  static override name = 'StateWriteError'
  override name = 'StateWriteError'
  readonly code?: string
  constructor (readonly file: string, options: { cause: unknown }) {
    const code = (options.cause as NodeJS.ErrnoException | undefined)?.code
    super(`cannot write ${file}: ${(code !== undefined ? STATE_WRITE_CAUSES[code] : undefined) ?? (options.cause as Error).message}${code !== undefined ? ` [${code}]` : ''}; nothing was applied. Free space there, or give --state another directory`, options)
    if (code !== undefined) this.code = code
  }
}

/** Another apply holds the state directory's lock. */
export class ApplyLockedError extends Error {
  static override name = 'ApplyLockedError'
  override name = 'ApplyLockedError'
  constructor (readonly lockFile: string, readonly pid: number) {
    super(`another apply (pid ${pid}) is running; it holds ${lockFile}`)
  }
}

/** Another policy manages the same path and keeps it; this resource is not applied (see ApplyOptions.skip). */
export class PathConflictError extends Error {
  static override name = 'PathConflictError'
  override name = 'PathConflictError'
  constructor (readonly id: string, reason: string) {
    super(reason)
  }
}

/**
 * A package, service, user or group cannot be managed here: no provider for this machine (its
 * facts name no package manager the agent knows), or the tool it needs is missing.
 */
export class ProviderUnavailableError extends Error {
  static override name = 'ProviderUnavailableError'
  override name = 'ProviderUnavailableError'
  constructor (readonly type: string, readonly resourceName: string, reason: string) {
    super(`${type} ${resourceName}: ${reason}`)
  }
}

/** Another apt or dpkg held the package database's lock for longer than the bound (src/apply/packages/). */
export class PackageLockedError extends Error {
  static override name = 'PackageLockedError'
  override name = 'PackageLockedError'
  constructor (readonly lock: string, readonly seconds: number, holder: string | undefined, readonly packages: string[]) {
    super(`${packages.join(', ')}: ${lock} is held by ${holder ?? 'another process'}; waited ${seconds} s for it, then gave up. Nothing was changed; the next apply tries again`)
  }
}

/** apt-get or dpkg exited non-zero, or was killed, while changing packages; the message ends with its error tail. */
export class PackageCommandFailedError extends Error {
  static override name = 'PackageCommandFailedError'
  override name = 'PackageCommandFailedError'
  constructor (readonly command: string, readonly exitCode: number | null, detail: string, readonly tail: string) {
    super(`${command}: ${detail}${tail !== '' ? `:\n${tail}` : ''}`)
  }
}

/** The package sources offer no such package, or not the version the policy names. */
export class PackageNotFoundError extends Error {
  static override name = 'PackageNotFoundError'
  override name = 'PackageNotFoundError'
  constructor (readonly packageName: string, readonly version: string | undefined, detail: string) {
    super(`package ${packageName}${version !== undefined ? ` ${version}` : ''}: ${detail}`)
  }
}

/** The package needs a `source` .deb (the dpkg provider has no package sources), or the source is not the package asked for. */
export class PackageSourceError extends Error {
  static override name = 'PackageSourceError'
  override name = 'PackageSourceError'
  constructor (readonly packageName: string, detail: string) {
    super(`package ${packageName}: ${detail}`)
  }
}

/** A service's unit file is not installed under the root: `systemctl --root is-enabled` does not know it. */
export class ServiceNotFoundError extends Error {
  static override name = 'ServiceNotFoundError'
  override name = 'ServiceNotFoundError'
  constructor (readonly unit: string, readonly root: string, said: string) {
    super(`${unit}: no such unit under ${root} (systemctl says: ${said}); install its package first (a package resource of the same name is ordered before the service) or write its unit file in /etc/systemd/system`)
  }
}

/**
 * A service's running state cannot be read or changed here: systemd is not PID 1 (a container),
 * or the root is a sandbox. Its enablement (unit files only) was still applied; `attempted` are
 * the commands that would have run.
 */
export class ServiceRuntimeUnavailableError extends Error {
  static override name = 'ServiceRuntimeUnavailableError'
  override name = 'ServiceRuntimeUnavailableError'
  constructor (readonly unit: string, readonly attempted: string[], why: string, what: string, enablement: string) {
    super(`${why}: cannot ${what} ${unit} (${attempted.map((c) => `\`${c}\``).join(', then ')})${enablement}`)
  }
}

/** A masked unit (linked to /dev/null) cannot be enabled or started until someone unmasks it. */
export class ServiceMaskedError extends Error {
  static override name = 'ServiceMaskedError'
  override name = 'ServiceMaskedError'
  constructor (readonly unit: string, wanted: string) {
    super(`${unit} is masked (linked to /dev/null), so it cannot be ${wanted}; if that is intended, unmask it (systemctl unmask ${unit})`)
  }
}

/** A systemctl command failed, timed out or answered something the provider does not know; the message carries its stderr tail. */
export class ServiceCommandFailedError extends Error {
  static override name = 'ServiceCommandFailedError'
  override name = 'ServiceCommandFailedError'
  constructor (readonly command: string, readonly exitCode: number | null, detail: string) {
    super(`${command}: ${detail}`)
  }
}

/**
 * A shadow tool (useradd, usermod, userdel, chpasswd, groupadd, groupmod, groupdel) failed:
 * its exit code and the tail of what it wrote to stderr, which says why.
 */
export class AccountCommandFailedError extends Error {
  static override name = 'AccountCommandFailedError'
  override name = 'AccountCommandFailedError'
  constructor (readonly command: string, readonly exitCode: number | null, readonly signal: string | null, readonly stderr: string, detail?: string) {
    const why = detail ?? (exitCode !== null ? `exit code ${exitCode}` : `killed by ${signal ?? 'a signal'}`)
    super(`${command}: ${why}${stderr !== '' ? `: ${stderr}` : ''}`)
  }
}

/** A user's password_hash, as rendered, is not a crypt(3) hash. The value is never quoted: it may be a password. */
export class NotAPasswordHashError extends Error {
  static override name = 'NotAPasswordHashError'
  override name = 'NotAPasswordHashError'
  constructor (readonly where: string) {
    super(`${where}: not a crypt(3) hash (the value is not shown); expected "$<id>$..." such as "$y$..." (yescrypt, from mkpasswd) or "$6$..." (SHA-512), or "!" or "*" for an account no password opens`)
  }
}

/** The root has no /etc/passwd or /etc/group for the shadow tools to edit (a sandbox root needs its own). */
export class AccountDatabaseMissingError extends Error {
  static override name = 'AccountDatabaseMissingError'
  override name = 'AccountDatabaseMissingError'
  constructor (readonly root: string, readonly file: string) {
    super(`root ${root} has no ${file}: users and groups are kept in the root's own /etc/passwd, /etc/group and /etc/shadow (and /etc/gshadow), which must exist`)
  }
}

/** A home directory would move (`manage_home`) into a directory that does not exist; usermod would change passwd and then fail to move it. */
export class HomeParentMissingError extends Error {
  static override name = 'HomeParentMissingError'
  override name = 'HomeParentMissingError'
  constructor (readonly user: string, readonly home: string, readonly parent: string) {
    super(`user ${user}: cannot move the home directory to ${home}: ${parent} does not exist; create it first (a directory resource the user requires)`)
  }
}

/** The sandbox service runtime's record of a unit (`ROOT/run/grapevine/services/UNIT`) is not one it wrote: it will not guess the state. */
export class SandboxServiceStateError extends Error {
  static override name = 'SandboxServiceStateError'
  override name = 'SandboxServiceStateError'
  constructor (readonly file: string, detail: string) {
    super(`${file}: not a sandbox service record (${detail}); remove it and the next apply records the service afresh`)
  }
}
