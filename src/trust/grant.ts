import { posix } from 'node:path'
import { isExistsOnlyDirectory, isPathResource, isSystemResource, type AdminLimits, type CommandLine, type Policy, type Resource } from '../policy/index.js'

/** One way a policy goes beyond its signer's limits. */
export interface Excess {
  /** Which list the entry is in: a resource, or a health check (an exec check is an exec). Absent means resources. */
  list?: 'resources' | 'checks'
  /** Index in that list. */
  index: number
  id: string
  /** The limit broken, as the trust policy spells it. */
  rule: 'types' | 'paths' | 'exec.commands' | 'exec.run_as' | 'checks.hosts'
  /** What the resource does that the limit forbids. */
  message: string
}

/** Setuid and setgid bits: a file carrying them runs with its owner's or group's powers, whoever starts it. */
const SET_ID_BITS = 0o6000

/** `/etc/nginx/` covers what is under it; `/etc/nginx` also covers the directory itself; `/` covers every path. */
export function pathWithin (prefix: string, path: string): boolean {
  if (prefix === '/') return true
  if (prefix.endsWith('/')) return path.startsWith(prefix)
  return path === prefix || path.startsWith(`${prefix}/`)
}

/**
 * `path` is a directory above what `prefix` covers: `/etc` and `/` for `/etc/nginx` or
 * `/etc/nginx/`. Not the prefix itself, which a trailing `/` keeps out on purpose.
 */
function pathAbove (prefix: string, path: string): boolean {
  const top = normalPath(prefix)
  return top !== '/' && top !== path && (path === '/' || top.startsWith(`${path}/`))
}

const hasDotDot = (p: string): boolean => p.split('/').includes('..')

/** A managed path as the applier reads it: `..` is refused there, `//`, `.` and a trailing `/` are not meaningful. */
function normalPath (p: string): string {
  const n = posix.normalize(p)
  return n.length > 1 ? n.replace(/\/+$/, '') : n
}

function sameCommand (a: CommandLine, b: CommandLine): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b
  return a.length === b.length && a.every((arg, i) => arg === b[i])
}

const show = (c: CommandLine): string => JSON.stringify(c)

function pathExcesses (r: Resource, paths: readonly string[], add: (message: string) => void): void {
  if (!isPathResource(r)) return
  const within = (p: string): boolean => paths.some((prefix) => pathWithin(prefix, p))
  // `..` is resolved by the kernel after following links, so no lexical rule says where it leads.
  if (hasDotDot(r.path)) add(`path ${r.path} has a ".." segment`)
  else if (!within(normalPath(r.path)) && !parentToShare(r, paths)) add(`path ${r.path} is outside the allowed paths`)
  if (r.type === 'symlink' && r.target !== undefined) {
    // A link inside the prefixes that points outside them would let anything written through it escape.
    const target = r.target
    if (hasDotDot(target)) add(`symlink target "${target}" has a ".." segment`)
    else {
      const resolved = normalPath(target.startsWith('/') ? target : posix.join(posix.dirname(r.path), target))
      if (!within(resolved)) add(`symlink target "${target}"${resolved !== target ? ` (${resolved})` : ''} is outside the allowed paths`)
    }
  }
  if ((r.type === 'file' || r.type === 'config') && r.mode !== undefined && (Number.parseInt(r.mode, 8) & SET_ID_BITS) !== 0) {
    add(`mode ${r.mode} sets the setuid or setgid bit, which would let the file run with more power than the paths grant`)
  }
}

/**
 * Making sure a directory above an allowed prefix is there grants nothing: a missing one is
 * created with the default mode, owned by the agent, and an existing one is left as it is.
 * So an admin of /etc/nginx may create /etc in a bare root without being given all of /etc.
 */
function parentToShare (r: Resource, paths: readonly string[]): boolean {
  if (!isExistsOnlyDirectory(r)) return false
  const path = normalPath(r.path)
  return paths.some((prefix) => pathAbove(prefix, path))
}

/** What the exec rules look at: an exec resource's command and guards, or an exec check's command. */
interface Runs {
  type: 'exec'
  command: CommandLine
  unless?: CommandLine
  onlyif?: CommandLine
  env?: Record<string, string>
  run_as?: string
}

function execExcesses (r: Runs | { type: Exclude<Resource['type'], 'exec'> }, exec: NonNullable<AdminLimits['exec']>, add: (rule: Excess['rule'], message: string) => void): void {
  if (r.type !== 'exec') return
  const { commands, run_as: runAs } = exec
  if (commands !== undefined) {
    const runs: Array<[string, CommandLine | undefined]> = [['command', r.command], ['unless', r.unless], ['onlyif', r.onlyif]]
    for (const [field, c] of runs) {
      if (c !== undefined && !commands.some((allowed) => sameCommand(allowed, c))) add('exec.commands', `${field} ${show(c)} is not an allowed command`)
    }
    // PATH, LD_PRELOAD, BASH_ENV and the like change what an allowed command does.
    if (r.env !== undefined && Object.keys(r.env).length > 0) add('exec.commands', 'env is not allowed with a list of allowed commands')
  }
  if (runAs !== undefined && r.run_as !== runAs) {
    add('exec.run_as', `${r.run_as === undefined ? 'runs as the agent\'s user' : `runs as "${r.run_as}"`}; it must declare run_as: ${runAs}`)
  }
}

/** Everything in `policy` that `limits` forbids: its resources in order, then its checks. Pure. */
export function grantExcesses (policy: Policy, limits: AdminLimits): Excess[] {
  if (policy.kind !== 'policy') return []
  const out: Excess[] = []
  policy.resources.forEach((r, index) => {
    const add = (rule: Excess['rule'], message: string): void => { out.push({ index, id: r.id, rule, message }) }
    if (limits.types !== undefined && !limits.types.includes(r.type)) {
      add('types', `type ${r.type} is not allowed`)
      return
    }
    if (limits.paths !== undefined) pathExcesses(r, limits.paths, (message) => add('paths', message))
    // A package, service, user or group changes the machine beyond any path prefix (a package's
    // maintainer scripts run as root; a user can get uid 0): an admin held to paths manages one
    // only when `types` names its type outright.
    if (limits.paths !== undefined && isSystemResource(r) && limits.types?.includes(r.type) !== true) {
      add('types', `type ${r.type} (${r.name}) reaches beyond paths; an admin limited to paths may manage it only when limits.types lists "${r.type}"`)
    }
    if (limits.exec !== undefined) execExcesses(r, limits.exec, add)
  })
  // A health check runs on every node after every apply: an exec check is an exec, bound by
  // the same limits, or a check would run what the admin may not. An http or tcp check of a
  // limited admin reaches this node only: its result and a body's tail come back in receipts,
  // so one to any host would let a file-only admin read what every node can reach (a cloud
  // metadata service's credentials, an internal API) from inside the fleet.
  policy.checks?.forEach((c, index) => {
    const add = (rule: Excess['rule'], message: string): void => { out.push({ list: 'checks', index, id: c.id, rule, message }) }
    if (c.type !== 'exec') {
      const host = c.type === 'http' ? new URL(c.url).hostname : c.host
      if (!isLoopback(host)) add('checks.hosts', `${c.type === 'http' ? 'an http' : 'a tcp'} check to ${host} reaches beyond this node`)
      return
    }
    if (limits.types !== undefined && !limits.types.includes('exec')) {
      add('types', 'an exec check runs a command, and type exec is not allowed')
      return
    }
    if (limits.exec !== undefined) execExcesses(c, limits.exec, add)
  })
  return out
}

/** This node by name or loopback address, as a URL's hostname or a tcp check's host gives it. */
function isLoopback (host: string): boolean {
  const h = host.toLowerCase()
  return h === 'localhost' || h === '[::1]' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

/** The limit a rule names, with its value, for messages: `types: file, directory`. */
export function describeLimit (limits: AdminLimits, rule: Excess['rule']): string {
  switch (rule) {
    case 'types': return `types: ${(limits.types ?? []).join(', ') || 'none'}`
    case 'paths': return `paths: ${(limits.paths ?? []).join(', ')}`
    case 'exec.commands': return `exec.commands: ${(limits.exec?.commands ?? []).map(show).join(', ')}`
    case 'exec.run_as': return `exec.run_as: ${limits.exec?.run_as ?? ''}`
    case 'checks.hosts': return 'http and tcp checks reach this node only (localhost, 127.0.0.0/8, ::1)'
  }
}
