import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Agent } from './agent.js'
import type { Refusal } from './intake.js'
import type { ForkRecord } from './book.js'
import { MAX_API_BODY_BYTES } from './constants.js'
import { ApiRequestRefusedError, MAX_HISTORY_LIMIT, countParam, nameParam, queryOf } from './api-params.js'
import { OPEN_TCP_ROUTES, apiSocketPath, apiTokenPath, bearerMatches, hostAllowed } from './api-access.js'
import { createApiToken, removeApiToken } from './api-token.js'
import { resolveGroup, serveSocket } from './api-socket.js'
import { PeerlessWatch, nodeHealth } from './health.js'

export interface ApiOptions {
  /** The agent's state directory: the socket and the token file live there. */
  stateDir: string
  /** Serve on the Unix socket `<stateDir>/api.sock` (default true). */
  socket?: boolean
  /** A group (name or id) whose members may use the socket too: mode 0660 instead of 0600. */
  group?: string | number
  /** Also serve on TCP, where every route but /health and /metrics needs the bearer token. */
  tcp?: { host: string, port: number }
  /** How long the node may have no peer before /health says `degraded` (default DEFAULT_PEERLESS_GRACE_MS). */
  peerlessGraceMs?: number
}

export interface ApiServer {
  /** The Unix socket's path, when served. */
  socket?: string
  /** `http://host:port`, when served on TCP. */
  url?: string
  /** The TCP API's bearer token, and the file (mode 0600) that holds it. */
  token?: string
  tokenFile?: string
  /** The group was given search permission on the state directory to reach the socket. */
  sharedStateDir?: boolean
  close: () => Promise<void>
}

/** How a request came in: the socket's mode already admitted it; TCP needs the Host and the token. */
type Door = { kind: 'socket' } | { kind: 'tcp', address: string, port: number, token: string, tokenFile: string }

const ROUTES = ['GET /health', 'GET /status', 'GET /fleet', 'GET /envelope', 'GET /metrics', 'GET /history', 'POST /publish', 'POST /rekey']

/** HTTP status of each refusal reason of an envelope; any other reason is 422. */
const REFUSAL_STATUS: Readonly<Record<string, number>> = { 'too-large': 413, internal: 500 }

function send (res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 1)
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
  res.end(text)
}

async function readBody (req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const tooLarge = (): ApiRequestRefusedError => new ApiRequestRefusedError(413, 'too-large', `request body over ${limit} bytes`)
  if (Number(req.headers['content-length'] ?? 0) > limit) throw tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw tooLarge()
    chunks.push(chunk as Buffer)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

/**
 * The agent's local API, for its owner only (README, "The local API"):
 *  - on the Unix socket `<state>/api.sock`, mode 0600 (0660 with a group): the kernel lets in
 *    the agent's user, root and the group, nobody else;
 *  - optionally on TCP, where a request must name this API in its Host header (no DNS
 *    rebinding) and carry the bearer token of `<state>/api.token` (mode 0600), except for
 *    /health and /metrics.
 *
 *   GET  /health     liveness and a one-line summary; `degraded` after a while with no peer, or while a state write is retried
 *   GET  /status     peers, policies (version, hash, signer, last apply), conflicts, trust
 *   GET  /metrics    Prometheus text format
 *   GET  /fleet      every node this agent has heard from (receipts and beacons)
 *   GET  /envelope   an archived version: ?name=NAME&version=N (the raw envelope)
 *   GET  /history    the audit trail (?limit=N, newest last)
 *   POST /publish    a signed envelope as the body, taken exactly as from gossip: 200 taken,
 *                    409 valid but not taken (older, duplicate, conflict lost), 4xx refused
 *   POST /rekey      replaces the node's encryption key (`grapevine rekey`): { previous, recipient }
 */
export async function startApi (agent: Agent, opts: ApiOptions): Promise<ApiServer> {
  const servers: Server[] = []
  const cleanups: Array<() => Promise<void>> = []
  const close = async (): Promise<void> => {
    await Promise.all(servers.map(async (s) => { await new Promise<void>((resolve) => { s.close(() => { resolve() }); s.closeAllConnections() }) }))
    for (const cleanup of cleanups) await cleanup()
  }
  const publisher = new SerialPublisher(agent)
  const peerless = new PeerlessWatch(agent.libp2p, agent.clock.now, opts.peerlessGraceMs)
  cleanups.push(async () => { peerless.stop() })
  const serve = (door: Door): Server => {
    const server = createServer((req, res) => {
      handle(agent, publisher, peerless, door, req, res).catch((err: Error) => {
        const refused = err instanceof ApiRequestRefusedError
        send(res, refused ? err.status : 500, { error: err.message, reason: refused ? err.reason : 'internal' })
      })
    })
    server.requestTimeout = 30_000
    servers.push(server)
    return server
  }
  const api: ApiServer = { close }
  try {
    if (opts.socket !== false) {
      const gid = opts.group === undefined ? undefined : await resolveGroup(opts.group)
      const served = await serveSocket(serve({ kind: 'socket' }), apiSocketPath(opts.stateDir), { gid })
      cleanups.push(served.remove)
      api.socket = served.path
      api.sharedStateDir = served.sharedDir
    }
    if (opts.tcp !== undefined) {
      const token = await createApiToken(opts.stateDir)
      const tokenFile = apiTokenPath(opts.stateDir)
      const door = { kind: 'tcp' as const, address: opts.tcp.host, port: opts.tcp.port, token, tokenFile }
      const server = serve(door)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(opts.tcp?.port, opts.tcp?.host, () => { server.off('error', reject); resolve() })
      })
      const addr = server.address() as AddressInfo
      door.address = addr.address
      door.port = addr.port
      api.url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
      api.token = token
      api.tokenFile = tokenFile
    } else {
      await removeApiToken(opts.stateDir)
    }
  } catch (err) {
    await close()
    throw err
  }
  return api
}

/** Refuses a TCP request that names another host, or lacks the token on a route that needs it. */
function admit (door: Door, req: IncomingMessage, route: string): void {
  if (door.kind === 'socket') return
  const host = req.headers.host
  if (!hostAllowed(host, door)) {
    throw new ApiRequestRefusedError(421, 'foreign-host', `Host ${JSON.stringify(host ?? '')} does not name this API: use localhost, 127.0.0.1, [::1] or ${door.address}, with port ${door.port} (other names are refused against DNS rebinding)`)
  }
  if (!OPEN_TCP_ROUTES.has(route) && !bearerMatches(req.headers.authorization, door.token)) {
    throw new ApiRequestRefusedError(401, 'unauthorized', `${route} on TCP needs "Authorization: Bearer <token>", the token being in ${door.tokenFile} (readable by the agent's user only), or use the socket`)
  }
}

async function handle (agent: Agent, publisher: SerialPublisher, peerless: PeerlessWatch, door: Door, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const route = `${req.method ?? 'GET'} ${url.pathname}`
  admit(door, req, route)
  switch (route) {
    case 'GET /health': {
      queryOf(url, [])
      const s = agent.status()
      // Always 200 while the agent answers (restarting it would not help); a monitor reads `status`.
      const { status, problems } = nodeHealth(peerless.health(), s.stateWriteFailing)
      send(res, 200, { ok: status === 'ok', status, problems, peerId: s.node.id, name: s.node.name, peers: s.peers.length, policies: s.policies.length })
      return
    }
    case 'GET /status':
      queryOf(url, [])
      send(res, 200, agent.status())
      return
    case 'GET /fleet':
      queryOf(url, [])
      send(res, 200, agent.fleet.list())
      return
    case 'GET /metrics':
      queryOf(url, [])
      send(res, 200, await agent.metrics.registry.metrics(), agent.metrics.registry.contentType)
      return
    case 'GET /history': {
      const limit = countParam(queryOf(url, ['limit']), 'limit', { fallback: 200, max: MAX_HISTORY_LIMIT })
      send(res, 200, await agent.readHistory(limit))
      return
    }
    case 'GET /envelope': {
      const q = queryOf(url, ['name', 'version'])
      const name = nameParam(q)
      const version = countParam(q, 'version')
      const bytes = await agent.archivedEnvelope(name, version)
      if (bytes === undefined) { send(res, 404, { error: `no archived envelope for ${name} v${version}`, reason: 'not-found' }); return }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(Buffer.from(bytes))
      return
    }
    case 'POST /publish': {
      queryOf(url, [])
      const { status, body } = await publisher.publish(await readBody(req, MAX_API_BODY_BYTES))
      send(res, status, body)
      return
    }
    case 'POST /rekey': {
      queryOf(url, [])
      try {
        send(res, 200, await agent.rekey())
      } catch (err) {
        if ((err as Error).name === 'AgentStoppedError') throw new ApiRequestRefusedError(503, 'stopped', (err as Error).message)
        throw err
      }
      return
    }
    default: {
      const methods = ROUTES.filter((r) => r.endsWith(` ${url.pathname}`)).map((r) => r.split(' ')[0] as string)
      if (methods.length > 0) {
        res.setHeader('allow', methods.join(', '))
        send(res, 405, { error: `${url.pathname} takes ${methods.join(', ')}, not ${req.method ?? ''}`, reason: 'method-not-allowed' })
        return
      }
      send(res, 404, { error: `no route ${route}`, reason: 'no-route', routes: ROUTES })
    }
  }
}

/**
 * Publishes one envelope at a time, so that the refusal the agent announces (its `rejected`
 * event) is this request's: the intake answers `ignored`, not `rejected`, to trust refusals
 * that did not come by gossip, but the API owes its caller the reason either way.
 */
class SerialPublisher {
  private last: Promise<unknown> = Promise.resolve()

  constructor (private readonly agent: Agent) {}

  async publish (bytes: Uint8Array): Promise<{ status: number, body: Record<string, unknown> }> {
    const run = this.last.then(async () => await this.publishNow(bytes))
    this.last = run.catch(() => {})
    return await run
  }

  private async publishNow (bytes: Uint8Array): Promise<{ status: number, body: Record<string, unknown> }> {
    let refusal: Refusal | undefined
    let fork: ForkRecord | undefined
    const onRejected = (r: Refusal): void => { if (r.via === 'api') refusal ??= r }
    const onFork = (f: ForkRecord): void => { fork ??= f }
    this.agent.on('rejected', onRejected)
    this.agent.on('fork', onFork)
    let result: Awaited<ReturnType<Agent['publish']>>
    try {
      result = await this.agent.publish(bytes, 'api')
    } catch (err) {
      if ((err as Error).name === 'AgentStoppedError') throw new ApiRequestRefusedError(503, 'stopped', (err as Error).message)
      throw err
    } finally {
      this.agent.off('rejected', onRejected)
      this.agent.off('fork', onFork)
    }
    const env = result.envelope
    if (refusal !== undefined) {
      return { status: REFUSAL_STATUS[refusal.reason] ?? 422, body: { outcome: result.outcome, reason: refusal.reason, error: refusal.error } }
    }
    if (env === undefined && (result.reason === 'older' || result.reason === 'duplicate')) {
      // Ignored on its signed header, before its policy was read: valid as far as it was checked.
      const held = this.agent.envelope(headerName(bytes) ?? '')
      return { status: 409, body: { outcome: result.outcome, reason: result.reason, ...(held !== undefined ? { current: { version: held.version, hash: held.hash, id: held.id } } : {}), error: `not taken (${result.reason})${held !== undefined ? `: the agent holds v${held.version} ${held.hash.slice(0, 19)}` : ''}` } }
    }
    if (env === undefined) return { status: 422, body: { outcome: result.outcome, reason: 'refused', error: 'the envelope was not taken (the agent log says why)' } }
    const current = this.agent.envelope(env.name)
    const described = {
      outcome: result.outcome,
      recipients: result.recipients,
      name: env.name,
      version: env.version,
      hash: env.hash,
      id: env.id,
      ...(current !== undefined ? { current: { version: current.version, hash: current.hash, id: current.id } } : {})
    }
    if (result.outcome === 'accepted') return { status: 200, body: described }
    if (fork?.offered.id === env.id) {
      return { status: 409, body: { ...described, reason: fork.reason, error: `${env.name} v${env.version} does not ${fork.reason === 'jump' ? 'follow closely enough on' : 'extend'} the v${fork.held.version} this agent holds: it is held back as a fork (grapevine resolve, or publish with --force REASON)` } }
    }
    const reason = current === undefined
      ? 'not-taken'
      : current.id === env.id ? 'duplicate' : current.version > env.version ? 'older' : current.version === env.version ? 'conflict-lost' : 'not-taken'
    const why = current === undefined ? 'the agent did not take it (its log says why)' : `the agent holds v${current.version} ${current.hash.slice(0, 19)}`
    return { status: 409, body: { ...described, reason, error: `${env.name} v${env.version} was not taken (${reason}): ${why}` } }
  }
}

/** The policy name in an envelope whose signed header checked out, read without trusting the rest of it. */
function headerName (bytes: Uint8Array): string | undefined {
  try {
    const name = (JSON.parse(new TextDecoder().decode(bytes)) as { name?: unknown }).name
    return typeof name === 'string' ? name : undefined
  } catch {
    return undefined
  }
}
