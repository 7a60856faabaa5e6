// What can go wrong enrolling a host over SSH: each a named error whose message says what to do.
// The CLI maps them to exit codes by name (src/cli/commands/enroll.ts).

/** The target's host key is not in known_hosts: ssh will not connect to an unknown host (StrictHostKeyChecking). */
export class HostKeyUnknownError extends Error {
  static override name = 'HostKeyUnknownError'
  override name = 'HostKeyUnknownError'
}

/** The target offered another host key than known_hosts holds for it: another machine, or someone in between. */
export class HostKeyMismatchError extends Error {
  static override name = 'HostKeyMismatchError'
  override name = 'HostKeyMismatchError'
}

/** The SSH server refused the login (Permission denied). */
export class LoginRefusedError extends Error {
  static override name = 'LoginRefusedError'
  override name = 'LoginRefusedError'
}

/** No SSH connection could be made: the name does not resolve, nothing listens, no route. */
export class HostUnreachableError extends Error {
  static override name = 'HostUnreachableError'
  override name = 'HostUnreachableError'
}

/** The SSH connection dropped during a step, before the install script ran: nothing was started. */
export class ConnectionLostError extends Error {
  static override name = 'ConnectionLostError'
  override name = 'ConnectionLostError'
  constructor (message: string, readonly step: string) {
    super(message)
  }
}

/** The target cannot run this binary (another architecture), or lacks a tool the steps need. */
export class UnsupportedTargetError extends Error {
  static override name = 'UnsupportedTargetError'
  override name = 'UnsupportedTargetError'
}

/** A step's remote command failed (exit status not 0): its output says why. */
export class RemoteStepError extends Error {
  static override name = 'RemoteStepError'
  override name = 'RemoteStepError'
  constructor (message: string, readonly step: string) {
    super(message)
  }
}

/** An `ssh://` argument that is not one. */
export class InvalidTargetError extends Error {
  static override name = 'InvalidTargetError'
  override name = 'InvalidTargetError'
}
