import { createHash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import { join } from 'node:path'

// Who may call the agent's local API. On the Unix socket, the file's owner and mode decide
// (the kernel checks them on connect). On TCP, anyone on the host can connect, and a web page
// can too, so a request must name this API in its Host header and carry the bearer token.

/** The API's Unix socket, in the state directory: where `grapevine status` looks first. */
export const API_SOCKET_FILE = 'api.sock'

/** The bearer token for the TCP API: mode 0600, written afresh at each start. */
export const API_TOKEN_FILE = 'api.token'

/** 256 bits: not guessable, and short enough to paste into a Prometheus or curl config. */
export const API_TOKEN_BYTES = 32

/** Routes served on TCP without the token: liveness and Prometheus, which reveal no policy content. */
export const OPEN_TCP_ROUTES: ReadonlySet<string> = new Set(['GET /health', 'GET /metrics'])

export function apiSocketPath (stateDir: string): string {
  return join(stateDir, API_SOCKET_FILE)
}

export function apiTokenPath (stateDir: string): string {
  return join(stateDir, API_TOKEN_FILE)
}

/** Compares in constant time (hashes first, so the lengths match and leak nothing either). */
export function bearerMatches (authorization: string | undefined, token: string): boolean {
  const m = /^Bearer +(\S+) *$/i.exec(authorization ?? '')
  if (m === null) return false
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(m[1] as string), digest(token))
}

function unbracket (host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1').toLowerCase()
}

/** The names a page must use to reach a TCP API bound to `address`: loopback names, and the bound address itself. */
function namesFor (address: string): Set<string> {
  return new Set(['localhost', '127.0.0.1', '::1', unbracket(address)])
}

/**
 * Whether a request's Host header names this API. A DNS-rebinding page reaches 127.0.0.1 under
 * its own host name, which is not one of these. On a wildcard address (0.0.0.0, ::) any IP
 * literal is allowed: an IP address cannot be rebound, only a name can.
 */
export function hostAllowed (host: string | undefined, bound: { address: string, port: number }): boolean {
  if (host === undefined) return false
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(host.trim())
  if (m === null || Number(m[2]) !== bound.port) return false
  const name = unbracket(m[1] as string)
  const wildcard = bound.address === '0.0.0.0' || bound.address === '::'
  return namesFor(bound.address).has(name) || (wildcard && isIP(name) !== 0)
}
