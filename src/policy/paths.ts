/**
 * The rules for a managed path (a resource's `path`, an exec's `cwd` and `creates`, an
 * absolute symlink target). One function serves validation (schema.ts) and the applier
 * (src/apply/paths.ts), so `validate` refuses exactly what `plan` and `apply` would.
 */
export type PathProblem =
  | { kind: 'relative', message: string }
  | { kind: 'dotdot', message: string }
  | { kind: 'nul', message: string }

export function managedPathProblem (path: string): PathProblem | undefined {
  // First: a NUL would also be cut out of any message that quoted the path raw.
  if (path.includes('\0')) return { kind: 'nul', message: `a NUL byte cannot be part of a file name, got ${JSON.stringify(path)}` }
  if (!path.startsWith('/')) return { kind: 'relative', message: `expected an absolute path starting with "/", got ${JSON.stringify(path)}` }
  // The kernel resolves `a/..` after following `a`, so no lexical rule can tell where `..` leads.
  if (path.split('/').includes('..')) return { kind: 'dotdot', message: `".." is not allowed in a managed path (it could climb out of the root); write the path without it, got ${JSON.stringify(path)}` }
  return undefined
}

/** Text handed to a system call (a relative symlink target, a command): only NUL is impossible there. */
export function nulProblem (text: string): string | undefined {
  return text.includes('\0') ? `a NUL byte cannot be passed to the system, got ${JSON.stringify(text)}` : undefined
}
