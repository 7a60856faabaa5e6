import { InvalidTargetError } from './errors.js'

/** Where to enrol: `ssh://[user@]host[:port]`. */
export interface SshTarget {
  user?: string
  /** A name or address; an IPv6 address without brackets. */
  host: string
  port?: number
}

/** Parses `ssh://[user@]host[:port]` (an IPv6 address in brackets, as in any URL). */
export function parseSshTarget (text: string): SshTarget {
  const example = 'ssh://root@web-1.example.com or ssh://admin@10.0.0.5:2222'
  if (!text.startsWith('ssh://')) throw new InvalidTargetError(`expected ssh://[user@]host[:port], like ${example}: got "${text}"`)
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new InvalidTargetError(`not a valid ssh:// address: "${text}" (like ${example})`)
  }
  if (url.hostname === '') throw new InvalidTargetError(`no host in "${text}" (like ${example})`)
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '' || url.password !== '') {
    throw new InvalidTargetError(`"${text}": only ssh://[user@]host[:port], no password, path or query (like ${example})`)
  }
  // Not decoded: a user name ssh takes needs no %-escapes, and one that has them is refused below.
  const user = url.username
  // A user name is handed to ssh -l: nothing that could read as an option or a second word.
  if (user !== '' && !/^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(user)) throw new InvalidTargetError(`"${user}" is not a user name ssh would take`)
  const host = url.hostname.replace(/^\[|\]$/g, '')
  // A host name, an IPv4 or an IPv6 address: nothing ssh could read as an option (ssh's own rule), no escapes.
  if (!/^[A-Za-z0-9_.:][A-Za-z0-9_.:-]*$/.test(host)) throw new InvalidTargetError(`"${host}" is not a host name or address`)
  return {
    ...(user !== '' ? { user } : {}),
    host,
    ...(url.port !== '' ? { port: Number(url.port) } : {})
  }
}

/** The host as known_hosts names it: `host`, or `[host]:port` off port 22. */
export function knownHostsName (t: SshTarget): string {
  return t.port === undefined || t.port === 22 ? t.host : `[${t.host}]:${t.port}`
}

/** `user@host:port` for messages. */
export function targetText (t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host
  return `${t.user !== undefined ? `${t.user}@` : ''}${host}${t.port !== undefined ? `:${t.port}` : ''}`
}

/** Whether the target is this machine's loopback: then the local agent's loopback addresses reach it. */
export function isLoopbackHost (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
