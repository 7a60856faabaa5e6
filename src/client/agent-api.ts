import { request } from 'node:http'
import { resolve } from 'node:path'
import { PublishError } from './errors.js'

/** An agent's answers (status, fleet, history) are read whole; past this the agent is not one of ours. */
export const MAX_AGENT_RESPONSE_BYTES = 64 * 1024 * 1024

const DEFAULT_TIMEOUT_MS = 30_000

/** Where an agent's local API is: its Unix socket, or `http://host:port` with the bearer token. */
export interface AgentEndpoint {
  /** How messages name it: `unix:/var/lib/grapevine/api.sock` or `http://127.0.0.1:7411`. */
  display: string
  socketPath?: string
  url?: URL
  token?: string
  /** Said when the agent asks for a token: where the command looked for it and why it has none. */
  tokenNote?: string
}

/** The agent could not be reached: no socket, nothing listening, a timeout. */
export class AgentUnreachableError extends PublishError {
  static override name = 'AgentUnreachableError'
  override name = 'AgentUnreachableError'
}

/** The agent would not let this user in: the socket's mode, a missing or wrong token, a foreign Host. */
export class AgentAccessError extends PublishError {
  static override name = 'AgentAccessError'
  override name = 'AgentAccessError'
}

/** The agent refused an envelope or a request; `reason` is its named reason (untrusted, out-of-scope, bad-name, …). */
export class AgentRefusedError extends PublishError {
  static override name = 'AgentRefusedError'
  override name = 'AgentRefusedError'
  constructor (message: string, readonly reason: string) {
    super(message)
  }
}

/**
 * Reads `--agent`: `unix:/path` or a path (the Unix socket), `http://host:port`, or
 * `host:port`. HTTPS is not served: the API is local, and off-host access goes over SSH.
 */
export function parseAgentAddress (value: string): AgentEndpoint {
  const socket = (path: string): AgentEndpoint => ({ display: `unix:${resolve(path)}`, socketPath: resolve(path) })
  if (value.startsWith('unix:')) return socket(value.slice('unix:'.length))
  if (/^https?:\/\//i.test(value)) {
    const url = new URL(value)
    if (url.protocol !== 'http:') throw new PublishError(`--agent ${value}: the agent's API speaks plain HTTP on loopback or a Unix socket, not ${url.protocol}`)
    return { display: url.origin, url: new URL(url.origin) }
  }
  if (/^(\[[^\]]+\]|[^/:]+):\d+$/.test(value)) return { display: `http://${value}`, url: new URL(`http://${value}`) }
  return socket(value)
}

export interface AgentResponse {
  status: number
  body: Buffer
}

export interface AgentRequest {
  method?: 'GET' | 'POST'
  body?: Uint8Array
  signal?: AbortSignal
}

/** Why a socket could not be used, in words a person can act on. */
function socketProblem (endpoint: AgentEndpoint, code: string | undefined, message: string): PublishError {
  const where = endpoint.socketPath ?? endpoint.display
  if (code === 'EACCES' || code === 'EPERM') {
    return new AgentAccessError(`permission denied on ${where}: the agent's API is for its own user, root and its --api-group; run this as one of them (e.g. with sudo)`)
  }
  if (code === 'ENOENT' || code === 'ECONNREFUSED') {
    return new AgentUnreachableError(`no agent answers at ${endpoint.display}${endpoint.socketPath !== undefined ? ` (${code === 'ENOENT' ? 'no such socket' : 'nothing listens on it'}): is the agent running with this state directory? see --state and --agent` : `: ${message} (is it running? see --agent)`}`)
  }
  return new AgentUnreachableError(`cannot reach the agent at ${endpoint.display}: ${message}`)
}

/**
 * One request to an agent's local API. Access refusals (401, 421) and transport failures are
 * thrown as named errors; every other answer is returned for the caller to read.
 */
export async function agentRequest (endpoint: AgentEndpoint, path: string, init: AgentRequest = {}): Promise<AgentResponse> {
  const headers: Record<string, string> = { host: endpoint.url?.host ?? 'localhost' }
  if (endpoint.token !== undefined) headers.authorization = `Bearer ${endpoint.token}`
  if (init.body !== undefined) headers['content-length'] = String(init.body.length)
  const res = await new Promise<AgentResponse>((resolvePromise, reject) => {
    const req = request({
      ...(endpoint.socketPath !== undefined ? { socketPath: endpoint.socketPath } : { hostname: endpoint.url?.hostname.replace(/^\[|\]$/g, ''), port: endpoint.url?.port }),
      path,
      method: init.method ?? 'GET',
      headers,
      signal: init.signal ?? AbortSignal.timeout(DEFAULT_TIMEOUT_MS)
    }, (incoming) => {
      const chunks: Buffer[] = []
      let size = 0
      incoming.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size > MAX_AGENT_RESPONSE_BYTES) { req.destroy(new Error(`answer over ${MAX_AGENT_RESPONSE_BYTES} bytes`)); return }
        chunks.push(chunk)
      })
      incoming.once('end', () => { resolvePromise({ status: incoming.statusCode ?? 0, body: Buffer.concat(chunks) }) })
      incoming.once('error', reject)
    })
    req.once('error', (err: NodeJS.ErrnoException) => { reject(socketProblem(endpoint, err.code, err.name === 'AbortError' ? 'no answer in time' : err.message)) })
    req.end(init.body)
  })
  if (res.status === 401 || res.status === 421) {
    const { error } = errorOf(res)
    throw new AgentAccessError(`${endpoint.display} refused access (HTTP ${res.status}): ${error}${res.status === 401 && endpoint.tokenNote !== undefined ? ` (${endpoint.tokenNote})` : ''}`)
  }
  return res
}

/** The `{ error, reason }` of an answer that is not a success. */
export function errorOf (res: AgentResponse): { error: string, reason: string } {
  try {
    const body = JSON.parse(res.body.toString('utf8')) as { error?: unknown, reason?: unknown }
    return { error: typeof body.error === 'string' ? body.error : `HTTP ${res.status}`, reason: typeof body.reason === 'string' ? body.reason : `http-${res.status}` }
  } catch {
    return { error: `HTTP ${res.status}`, reason: `http-${res.status}` }
  }
}

/** GETs a JSON answer; anything but 200 is the agent's refusal, with its reason. */
export async function agentJson<T> (endpoint: AgentEndpoint, path: string, signal?: AbortSignal): Promise<T> {
  const res = await agentRequest(endpoint, path, { signal })
  if (res.status !== 200) {
    const { error, reason } = errorOf(res)
    throw new AgentRefusedError(`${endpoint.display}${path.replace(/\?.*/, '')}: ${error}`, reason)
  }
  return JSON.parse(res.body.toString('utf8')) as T
}
