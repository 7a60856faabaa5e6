import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { request } from 'node:http'
import { chmod, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { filePolicy, startMesh } from './fixtures.js'
import { startApi } from '../../src/node/api.js'
import { meshWithApi } from '../helpers/mesh-api.js'
import { bearerMatches, hostAllowed } from '../../src/node/api-access.js'
import { generateSigningKey, signPolicy } from '../../src/envelope/index.js'
import type { Policy } from '../../src/policy/index.js'
import { decodeEnvelope, encodeEnvelope, trustPolicy } from '../helpers/envelope.js'

// The local API as an attacker on the same host would try it: as another user, from a web
// page (DNS rebinding), with names that walk the file system, and with envelopes the agent
// must refuse exactly as gossip does.

const rig = meshWithApi()

const NOBODY = 65534
const isRoot = process.getuid?.() === 0

interface Answer { status?: number, body?: string, error?: string }

/** One HTTP request over the socket or TCP, with any headers (fetch refuses to set Host). */
async function call (target: { socketPath: string } | { port: number }, path: string, opts: { method?: string, headers?: Record<string, string>, body?: Uint8Array } = {}): Promise<Answer> {
  return await new Promise((resolve) => {
    const req = request({ ...target, ...('port' in target ? { host: '127.0.0.1' } : {}), path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }) })
    })
    req.on('error', (err: NodeJS.ErrnoException) => { resolve({ error: err.code }) })
    req.end(opts.body)
  })
}

/** Runs `script` (CommonJS, printing one JSON line) in a fresh node process as uid/gid 65534, nobody. */
async function asNobody (script: string, gid = NOBODY): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, ['-e', script], { uid: NOBODY, gid, cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (b: Buffer) => { out += b.toString() })
  child.stderr.on('data', (b: Buffer) => { err += b.toString() })
  const code = await new Promise((resolve) => child.once('close', resolve))
  if (code !== 0) throw new Error(`the script as nobody exited ${String(code)}: ${err}`)
  return JSON.parse(out) as Record<string, unknown>
}

/** What nobody gets from the socket, from TCP without a token, and from the token file. */
function nobodyScript (socketPath: string, port: number, tokenFile: string, path: string): string {
  return `
const http = require('node:http'); const fs = require('node:fs')
const get = (o) => new Promise((resolve) => {
  const req = http.request({ ...o, path: ${JSON.stringify(path)} }, (res) => { let b = ''; res.on('data', (c) => { b += c }); res.on('end', () => resolve({ status: res.statusCode, body: b })) })
  req.on('error', (e) => resolve({ error: e.code })); req.end()
})
;(async () => {
  const socket = await get({ socketPath: ${JSON.stringify(socketPath)} })
  const tcp = await get({ host: '127.0.0.1', port: ${port} })
  let token; try { fs.readFileSync(${JSON.stringify(tokenFile)}); token = 'read' } catch (e) { token = e.code }
  console.log(JSON.stringify({ socket, tcp, token }))
})()`
}

describe.runIf(isRoot)('the local API as another local user', () => {
  it('lets nobody read a 0600 secret neither through the socket nor over TCP, and the operator still can', async () => {
    const mesh = rig.mesh = await startMesh(1)
    const a = mesh.agents[0]!
    const state = join(mesh.dir, 'node-0', 'state')
    const secret = filePolicy('site/secret', 'TOPSECRET\n', '/etc/secret', {}) as Extract<Policy, { kind: 'policy' }>
    ;(secret.resources.at(-1) as { mode?: string }).mode = '0600'
    expect((await a.publish(mesh.sign(secret, 1))).outcome).toBe('accepted')
    const api = rig.api = await startApi(a, { stateDir: state, tcp: { host: '127.0.0.1', port: 0 } })
    const port = Number(new URL(api.url!).port)
    // Let anyone walk down to the state directory (o+x, no listing), as /var/lib does: only
    // the socket's own mode and the token may keep nobody out.
    for (const d of [mesh.dir, join(mesh.dir, 'node-0'), state]) await chmod(d, 0o711)
    expect((await stat(api.socket!)).mode & 0o777).toBe(0o600)
    expect((await stat(api.tokenFile!)).mode & 0o777).toBe(0o600)

    const path = '/envelope?name=site/secret&version=1'
    const got = await asNobody(nobodyScript(api.socket!, port, api.tokenFile!, path))
    expect(got.socket).toEqual({ error: 'EACCES' })
    expect(got.tcp).toMatchObject({ status: 401 })
    expect(JSON.stringify(got)).not.toContain('TOPSECRET')
    expect(JSON.parse((got.tcp as Answer).body!)).toMatchObject({ reason: 'unauthorized' })
    expect(got.token).toBe('EACCES')

    // The operator (root here, or the agent's user) keeps the API: the socket, or TCP with the token.
    const own = await call({ socketPath: api.socket! }, path)
    expect(own.status).toBe(200)
    expect(own.body).toContain('TOPSECRET')
    expect((await call({ port }, path, { headers: { authorization: `Bearer ${api.token!}` } })).status).toBe(200)
    // Monitoring stays open on TCP, and shows no policy content.
    expect((await call({ port }, '/health')).status).toBe(200)
  })

  it('lets the --api-group in through a 0660 socket, giving it search permission on the state directory', async () => {
    const mesh = rig.mesh = await startMesh(1)
    const state = join(mesh.dir, 'node-0', 'state')
    for (const d of [mesh.dir, join(mesh.dir, 'node-0')]) await chmod(d, 0o711)
    await chmod(state, 0o700)
    const api = rig.api = await startApi(mesh.agents[0]!, { stateDir: state, group: NOBODY })
    expect(api.sharedStateDir).toBe(true)
    const socketInfo = await stat(api.socket!)
    expect([socketInfo.mode & 0o777, socketInfo.gid]).toEqual([0o660, NOBODY])
    expect((await stat(state)).mode & 0o777).toBe(0o710)
    const script = `require('node:http').request({ socketPath: ${JSON.stringify(api.socket!)}, path: '/status' }, (r) => { console.log(JSON.stringify({ status: r.statusCode })); r.resume() }).on('error', (e) => console.log(JSON.stringify({ error: e.code }))).end()`
    expect(await asNobody(script, NOBODY)).toEqual({ status: 200 })
    // nobody in another group: the socket's mode keeps it out.
    expect(await asNobody(script, 1)).toEqual({ error: 'EACCES' })
  })
})

describe('hostAllowed', () => {
  const rows: Array<[string | undefined, string, boolean]> = [
    ['127.0.0.1:7411', '127.0.0.1', true],
    ['localhost:7411', '127.0.0.1', true],
    ['LocalHost:7411', '127.0.0.1', true],
    ['[::1]:7411', '127.0.0.1', true],
    ['10.0.0.5:7411', '10.0.0.5', true],
    ['10.0.0.5:7411', '127.0.0.1', false],
    ['10.0.0.5:7411', '0.0.0.0', true],
    ['[fe80::1]:7411', '::', true],
    ['evil.example:7411', '0.0.0.0', false],
    ['evil.example:7411', '127.0.0.1', false],
    ['localhost.evil.example:7411', '127.0.0.1', false],
    ['localhost', '127.0.0.1', false],
    ['localhost:7412', '127.0.0.1', false],
    ['localhost:7411:7411', '127.0.0.1', false],
    ['::1:7411', '127.0.0.1', false],
    ['', '127.0.0.1', false],
    [undefined, '127.0.0.1', false]
  ]
  it.each(rows)('Host %s on %s: %s', (host, address, allowed) => {
    expect(hostAllowed(host, { address, port: 7411 })).toBe(allowed)
  })
})

describe('bearerMatches', () => {
  it.each<[string | undefined, boolean]>([
    ['Bearer s3cret', true],
    ['bearer s3cret', true],
    ['Bearer s3cret2', false],
    ['Bearer s3cre', false],
    ['Basic s3cret', false],
    ['s3cret', false],
    ['Bearer ', false],
    [undefined, false]
  ])('%s: %s', (header, ok) => {
    expect(bearerMatches(header, 's3cret')).toBe(ok)
  })
})

describe('the local API against a web page', () => {
  it('refuses, on TCP, any Host that does not name it, even with the token', async () => {
    const mesh = rig.mesh = await startMesh(1)
    const api = rig.api = await startApi(mesh.agents[0]!, { stateDir: join(mesh.dir, 'node-0', 'state'), tcp: { host: '127.0.0.1', port: 0 } })
    const port = Number(new URL(api.url!).port)
    const auth = { authorization: `Bearer ${api.token!}` }
    for (const host of ['evil.example:' + String(port), `127.0.0.1.nip.io:${port}`, `localhost:${port + 1}`, 'localhost', `[::2]:${port}`]) {
      for (const path of ['/status', '/health', '/metrics']) {
        const r = await call({ port }, path, { headers: { ...auth, host } })
        expect(r.status, `${host} ${path}`).toBe(421)
        expect(JSON.parse(r.body!)).toMatchObject({ reason: 'foreign-host' })
      }
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
      expect((await call({ port }, '/status', { headers: { ...auth, host } })).status, host).toBe(200)
    }
    expect((await call({ port }, '/status', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401)
  })
})

describe('the local API with names and numbers an attacker chooses', () => {
  it('refuses each bad parameter with 400 and a named reason, before touching the file system', async () => {
    const mesh = rig.mesh = await startMesh(1)
    const state = join(mesh.dir, 'node-0', 'state')
    // What `name=..` reached before: <state>/archive/../1.env.
    await writeFile(join(state, '1.env'), 'PLANTED')
    const api = rig.api = await startApi(mesh.agents[0]!, { stateDir: state })
    const sock = { socketPath: api.socket! }
    const cases: Array<[string, string]> = [
      ['/envelope?name=..&version=1', 'bad-name'],
      ['/envelope?name=.&version=1', 'bad-name'],
      ['/envelope?name=../x&version=1', 'bad-name'],
      ['/envelope?name=web/..&version=1', 'bad-name'],
      ['/envelope?name=%2Fetc%2Fpasswd&version=1', 'bad-name'],
      ['/envelope?name=/etc/passwd&version=1', 'bad-name'],
      ['/envelope?name=Web/Site&version=1', 'bad-name'],
      ['/envelope?version=1', 'missing-parameter'],
      ['/envelope?name=web/site', 'missing-parameter'],
      ['/envelope?name=web/site&version=0', 'bad-version'],
      ['/envelope?name=web/site&version=-1', 'bad-version'],
      ['/envelope?name=web/site&version=1e3', 'bad-version'],
      ['/envelope?name=web/site&version=0x10', 'bad-version'],
      ['/envelope?name=web/site&version=9007199254740993', 'bad-version'],
      ['/envelope?name=web/site&version=1&version=2', 'repeated-parameter'],
      ['/envelope?name=web/site&version=1&path=/etc', 'unknown-parameter'],
      ['/history?limit=0', 'bad-limit'],
      ['/history?limit=abc', 'bad-limit'],
      ['/history?limit=1000000', 'bad-limit'],
      ['/status?verbose=1', 'unknown-parameter']
    ]
    for (const [path, reason] of cases) {
      const r = await call(sock, path)
      expect([r.status, JSON.parse(r.body!).reason], path).toEqual([400, reason])
      expect(r.body).not.toContain('PLANTED')
    }
    expect((await call(sock, '/envelope?name=web/site&version=1')).status).toBe(404)
    expect((await call(sock, '/history?limit=5')).status).toBe(200)
    expect((await call(sock, '/status', { method: 'DELETE' })).status).toBe(405)
  })
})

describe('POST /publish, exactly as strict as gossip', () => {
  it('refuses untrusted, out-of-scope, revoked, bad-signature and malformed envelopes with a 4xx and the reason', async () => {
    const mesh = rig.mesh = await startMesh(1)
    const a = mesh.agents[0]!
    const web = generateSigningKey()
    const revoked = generateSigningKey()
    const stranger = generateSigningKey()
    expect((await a.publish(mesh.sign(trustPolicy([{ key: web.id, scopes: ['web/'] }, { key: revoked.id, scopes: ['*'] }], [revoked.id]), 1))).outcome).toBe('accepted')
    const api = rig.api = await startApi(a, { stateDir: join(mesh.dir, 'node-0', 'state') })
    const post = async (bytes: Uint8Array): Promise<{ status?: number, json: Record<string, unknown> }> => {
      const r = await call({ socketPath: api.socket! }, '/publish', { method: 'POST', body: bytes })
      return { status: r.status, json: JSON.parse(r.body!) as Record<string, unknown> }
    }
    const forged = decodeEnvelope(mesh.sign(filePolicy('web/site', 'x\n'), 1, web))
    forged.signature = Buffer.alloc(64).toString('base64url')
    const refused: Array<[string, Uint8Array, string]> = [
      ['untrusted', mesh.sign(filePolicy('web/site', 'x\n'), 1, stranger), 'untrusted'],
      ['out of scope', mesh.sign(filePolicy('db/main', 'x\n'), 1, web), 'out-of-scope'],
      ['revoked', mesh.sign(filePolicy('web/site', 'x\n'), 1, revoked), 'revoked'],
      ['trust policy not by a root', mesh.sign(trustPolicy([{ key: web.id, scopes: ['*'] }]), 2, web), 'not-root'],
      ['bad signature', encodeEnvelope(forged), 'bad-signature'],
      ['malformed', new TextEncoder().encode('{"not":"an envelope"'), 'malformed']
    ]
    for (const [what, bytes, reason] of refused) {
      const r = await post(bytes)
      expect(r.status, what).toBe(422)
      expect(r.json, what).toMatchObject({ reason, error: expect.any(String) })
    }
    expect(a.status().policies.map((p) => p.name)).toEqual(['grapevine/trust'])

    // Valid envelopes that are not taken: 409 with the version the agent holds.
    expect((await post(mesh.sign(filePolicy('web/site', 'v2\n'), 2, web))).status).toBe(200)
    const older = await post(mesh.sign(filePolicy('web/site', 'v1\n'), 1, web))
    expect(older).toMatchObject({ status: 409, json: { reason: 'older', current: { version: 2 } } })
    const again = mesh.sign(filePolicy('web/site', 'v3\n'), 3, web)
    expect((await post(again)).status).toBe(200)
    expect(await post(again)).toMatchObject({ status: 409, json: { reason: 'duplicate', current: { version: 3 } } })
    // Newer, but not on the held chain (no prev) or too far past it: a fork, held back.
    const unlinked = signPolicy(filePolicy('web/site', 'v4\n'), { version: 4, key: web })
    expect(await post(unlinked)).toMatchObject({ status: 409, json: { reason: 'unlinked', current: { version: 3 } } })
    const jump = signPolicy(filePolicy('web/site', 'v9999\n'), { version: 9999, key: web, prev: a.envelope('web/site')!.id })
    expect(await post(jump)).toMatchObject({ status: 409, json: { reason: 'jump', current: { version: 3 } } })
  })
})
