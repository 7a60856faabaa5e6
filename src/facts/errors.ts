/** A custom fact file that cannot be used: not a map, not valid JSON or YAML, too large or too deep. Never fatal: it becomes a warning. */
export class FactFileError extends Error {
  static override name = 'FactFileError'
  override name = 'FactFileError'
  constructor (readonly file: string, reason: string) {
    super(`${file}: ${reason}; its facts are skipped`)
  }
}
