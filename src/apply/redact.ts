// The secrets module's files, not its index: the applier loads no age library for this.
import { MIN_REDACTED_LENGTH, REDACTED } from '../secrets/constants.js'
import { redactDeep, redactor } from '../secrets/redact.js'
import type { RunResult } from './command.js'
import type { ResourceResult } from './report.js'

/** How an apply hides the secret values it was given in everything it reports. */
export interface ReportRedactor {
  /** Every value replaced by `(secret)`. */
  text: (text: string) => string
  /**
   * As `text`, for the tail of a longer output: also the end of a value that the cut left at
   * the very start (a command printed 70 KiB and the password's first half fell off the front).
   */
  tail: (text: string) => string
}

/** A redactor for one apply's secrets, or undefined when there is nothing to hide (no cost to an apply without secrets). */
export function reportRedactor (secrets: Readonly<Record<string, string>> | undefined): ReportRedactor | undefined {
  const text = redactor(secrets)
  if (text === undefined) return undefined
  const values = [...new Set(Object.values(secrets ?? {}))].filter((v) => v.length > MIN_REDACTED_LENGTH)
  return {
    text,
    tail: (t) => {
      const out = text(t)
      for (const v of values) {
        const cut = cutEnd(out, v)
        if (cut > 0) return REDACTED + out.slice(cut)
      }
      return out
    }
  }
}

/** The length of the longest proper suffix of `value`, at least MIN_REDACTED_LENGTH long, that `text` starts with; 0 when none. */
function cutEnd (text: string, value: string): number {
  if (text.length < MIN_REDACTED_LENGTH) return 0
  const probe = text.slice(0, MIN_REDACTED_LENGTH)
  // The first place the probe occurs (after the value's first character) starts the longest suffix.
  for (let i = value.indexOf(probe, 1); i !== -1; i = value.indexOf(probe, i + 1)) {
    if (text.startsWith(value.slice(i))) return value.length - i
  }
  return 0
}

/** A resource's result with every string redacted: errors, reasons, warnings, changes, diffs, command output. */
export function redactResult (result: ResourceResult, redact: ReportRedactor | undefined): ResourceResult {
  return redact === undefined ? result : redactDeep(result, redact.text)
}

/** A command's output tails and spawn error, redacted before anything (an error message, a shorter tail) is made of them. */
export function redactRun (res: RunResult, redact: ReportRedactor | undefined): RunResult {
  if (redact === undefined) return res
  const out = { ...res, stdout: (res.cut?.stdout === true ? redact.tail : redact.text)(res.stdout), stderr: (res.cut?.stderr === true ? redact.tail : redact.text)(res.stderr) }
  if (res.spawnError !== undefined) out.spawnError = redact.text(res.spawnError)
  return out
}
