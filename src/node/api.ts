import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Agent } from './agent.js'
import { MAX_API_BODY_BYTES } from './constants.js'
import { ApiRequestError } from './errors.js'

export interface ApiServer {
  url: string
  close: () => Promise<void>
}

function send (res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 1)
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
  res.end(text)
}

async function readBody (req: IncomingMessage, limit: number): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw new ApiRequestError(413, `request body over ${limit} bytes`)
    chunks.push(chunk as Buffer)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

/**
 * The agent's local HTTP API. It binds to loopback by default: it is for `grapevine status`,
 * Prometheus and local publishing, not for the network. Publishing needs no extra
 * authentication here because an envelope is only accepted when a trusted key signed it.
 *
 *   GET  /health     liveness and a one-line summary
 *   GET  /status     peers, policies (version, hash, signer, last apply), conflicts, trust
 *   GET  /metrics    Prometheus text format
 *   GET  /fleet      every node this agent has heard from (receipts and beacons)
 *   GET  /envelope   an archived version: ?name=NAME&version=N (the raw envelope)
 *   GET  /history    the audit trail (?limit=N, newest last)
 *   POST /publish    a signed envelope as the body; it is taken locally and gossiped
 */
export async function startApi (agent: Agent, host: string, port: number): Promise<ApiServer> {
  const server: Server = createServer((req, res) => {
    handle(agent, req, res).catch((err: Error) => {
      send(res, err instanceof ApiRequestError ? err.status : 500, { error: err.message })
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const addr = server.address() as AddressInfo
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  return {
    url: `http://${shown}:${addr.port}`,
    close: async () => { await new Promise<void>((resolve) => { server.close(() => { resolve() }); server.closeAllConnections() }) }
  }
}

async function handle (agent: Agent, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const route = `${req.method ?? 'GET'} ${url.pathname}`
  switch (route) {
    case 'GET /health': {
      const s = agent.status()
      send(res, 200, { ok: true, peerId: s.node.id, name: s.node.name, peers: s.peers.length, policies: s.policies.length })
      return
    }
    case 'GET /status':
      send(res, 200, agent.status())
      return
    case 'GET /fleet':
      send(res, 200, agent.fleet.list())
      return
    case 'GET /metrics':
      send(res, 200, await agent.metrics.registry.metrics(), agent.metrics.registry.contentType)
      return
    case 'GET /history': {
      const limit = Number(url.searchParams.get('limit') ?? '200')
      if (!Number.isInteger(limit) || limit < 1) { send(res, 400, { error: `limit must be a positive integer: got ${url.searchParams.get('limit') ?? ''}` }); return }
      send(res, 200, await agent.readHistory(limit))
      return
    }
    case 'GET /envelope': {
      const name = url.searchParams.get('name') ?? ''
      const version = Number(url.searchParams.get('version'))
      const bytes = await agent.archivedEnvelope(name, version)
      if (bytes === undefined) { send(res, 404, { error: `no archived envelope for ${name} v${url.searchParams.get('version') ?? ''}` }); return }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(Buffer.from(bytes))
      return
    }
    case 'POST /publish': {
      const bytes = await readBody(req, MAX_API_BODY_BYTES)
      const result = await agent.publish(bytes, 'api')
      const env = result.envelope
      const current = env === undefined ? undefined : agent.envelope(env.name)
      send(res, result.outcome === 'rejected' ? 422 : 200, {
        outcome: result.outcome,
        recipients: result.recipients,
        ...(env !== undefined ? { name: env.name, version: env.version, hash: env.hash, id: env.id } : {}),
        ...(current !== undefined ? { current: { version: current.version, hash: current.hash, id: current.id } } : {})
      })
      return
    }
    default:
      send(res, 404, { error: `no route ${route}`, routes: ['GET /health', 'GET /status', 'GET /fleet', 'GET /envelope', 'GET /metrics', 'GET /history', 'POST /publish'] })
  }
}
