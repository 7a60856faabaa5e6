/** One problem in a policy, located as precisely as the input allows. */
export interface PolicyProblem {
  /** Field path like `resources[2].mode`, or '' for the whole document. */
  path: string
  /** 1-based line in the source file, when known. */
  line?: number
  column?: number
  message: string
}

export function formatProblem (file: string, p: PolicyProblem): string {
  const where = p.line !== undefined ? `${file}:${p.line}${p.column !== undefined ? `:${p.column}` : ''}` : file
  return p.path === '' ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`
}

/** The policy file is not valid; `problems` lists every problem found. */
export class InvalidPolicyError extends Error {
  static override name = 'InvalidPolicyError'
  override name = 'InvalidPolicyError'
  constructor (readonly file: string, readonly problems: PolicyProblem[]) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'))
  }
}

/** The policy nests objects and arrays deeper than MAX_POLICY_DEPTH; one problem says where. */
export class PolicyTooDeepError extends InvalidPolicyError {
  static override name = 'PolicyTooDeepError'
  override name = 'PolicyTooDeepError'
  constructor (file: string, where: Omit<PolicyProblem, 'message'>, readonly limit: number) {
    super(file, [{ ...where, message: `nested more than ${limit} levels deep (objects and arrays; the limit for a policy)` }])
  }
}

export class PolicyTooLargeError extends Error {
  static override name = 'PolicyTooLargeError'
  override name = 'PolicyTooLargeError'
  constructor (readonly file: string, readonly size: number, readonly limit: number) {
    super(`${file}: ${size} bytes is over the ${limit}-byte limit for a policy`)
  }
}

/** A `{{ ... }}` reference that names nothing, or a malformed template. */
export class TemplateError extends Error {
  static override name = 'TemplateError'
  override name = 'TemplateError'
  constructor (readonly path: string, message: string) {
    super(`${path}: ${message}`)
  }
}

/** A managed path no file can have (a NUL byte); validation refuses it first (src/policy/paths.ts). */
export class InvalidPathError extends Error {
  static override name = 'InvalidPathError'
  override name = 'InvalidPathError'
  constructor (readonly path: string, reason: string) {
    super(`${JSON.stringify(path)}: ${reason}`)
  }
}

/**
 * Templates expanded past MAX_TEMPLATE_OUTPUT over one render of a policy (all its resources
 * together), so a small policy cannot write many times its size by repeating a large var.
 */
export class TemplateOutputTooLargeError extends TemplateError {
  static override name = 'TemplateOutputTooLargeError'
  override name = 'TemplateOutputTooLargeError'
  constructor (path: string, readonly limit: number) {
    super(path, `templates expand to more than ${limit} bytes over the whole policy (the limit for one render of a policy on one node); reference large vars fewer times, or ship the data as a source file`)
  }
}

/**
 * A `source:` cannot be embedded: missing, not a regular file, too large, or outside the
 * policy file's directory (an absolute path, a `..` climbing out, a symlink resolving out)
 * without `allowSourceOutside`. Each problem names the resource and, for a file, the line.
 */
export class PolicySourceError extends InvalidPolicyError {
  static override name = 'PolicySourceError'
  override name = 'PolicySourceError'
}

/** The policy file is not UTF-8: read as text, its bad bytes would become U+FFFD, and what is signed would differ from the file. */
export class PolicyEncodingError extends InvalidPolicyError {
  static override name = 'PolicyEncodingError'
  override name = 'PolicyEncodingError'
}
