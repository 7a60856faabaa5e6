import pc from 'picocolors'

/** Exit codes shared by every command; apply and plan add Puppet's detailed codes (see README). */
export const EXIT = {
  OK: 0,
  /** The input was read but is wrong: an invalid policy, a tampered envelope, an untrusted key. */
  INVALID: 1,
  /** A command-line usage error (sysexits EX_USAGE). */
  USAGE: 64,
  /** A file or agent the command needs could not be reached (sysexits EX_UNAVAILABLE). */
  UNAVAILABLE: 69,
  /** A bug: an error nobody anticipated (sysexits EX_SOFTWARE). */
  INTERNAL: 70
} as const

/** Colour only on a terminal; picocolors also honours NO_COLOR and FORCE_COLOR. */
const useColour = process.stdout.isTTY === true && pc.isColorSupported
export const colour = pc.createColors(useColour)
const errColour = pc.createColors(process.stderr.isTTY === true && pc.isColorSupported)

export function printJson (value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}

export function print (line = ''): void {
  process.stdout.write(line + '\n')
}

export function printError (message: string): void {
  process.stderr.write(`${errColour.red('error')}: ${message}\n`)
}

export function printWarning (message: string): void {
  process.stderr.write(`${errColour.yellow('warning')}: ${message}\n`)
}

/** An error that ends the command with a given exit code and message. */
export class CliError extends Error {
  static override name = 'CliError'
  override name = 'CliError'
  constructor (message: string, readonly exitCode: number = EXIT.INVALID) {
    super(message)
  }
}
