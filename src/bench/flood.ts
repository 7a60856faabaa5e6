/**
 * `npm run bench:flood`: what a hostile peer (or a trusted but compromised admin) costs an agent.
 *
 * Three processes, so that each side's event loop is its own: a target process runs agent A
 * (its API on TCP) and an honest agent B that A dialled; an attacker process runs the rogue
 * peers; this process polls A's `/health` every 25 ms and times one honest publish from a
 * short-lived publisher joining through A (`grapevine publish --bootstrap A`, as an admin
 * would), until A and B both hold the new version. The floods:
 *
 * - `beacons`: two rogue peers gossip 3,000 presence beacons from made-up node identities;
 * - `announcements`: a rogue gossips 2,000 valid announcements (signed by a trusted key, the
 *   insider) of bodies nobody serves, and the honest publish is a large (announced) envelope;
 * - `sync`: four rogue sync streams deliver 1 MiB envelopes signed by an untrusted key, 15 s;
 * - `sybil`: made-up identities dial A until it holds 64 connections (or refuses them), then
 *   the publisher joins.
 *
 * Attackers' messages are signed before each flood starts. Figures, not assertions: this
 * machine is shared (see docs/capacity.md, "Floods").
 *
 * Flags: --only beacons,sync (floods to run), --out FILE (JSON; default out/flood-<time>.json).
 */
import '../shim.js'
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { Agent } from '../node/agent.js'
import { startApi } from '../node/api.js'
import { receiptTopic, announceTopic } from '../node/constants.js'
import { createNet, multiaddr, type GrapevineLibp2p } from '../net/libp2p.js'
import { generateIdentity, nodeSigningKey, peerIdOf } from '../net/identity.js'
import { encodeAnnouncement, generateSigningKey, signPolicy, signingKeyFromPem, validateEnvelope, type SigningKey } from '../envelope/index.js'
import { validatePolicyObject } from '../policy/index.js'
import { signReport, type NodeReport } from '../receipt/index.js'
import { SYNC_PROTOCOL, encodeFrame } from '../sync/index.js'
import { connectMesh } from '../client/index.js'

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const FLOODS = ['none', 'beacons', 'announcements', 'sync', 'sybil'] as const
type Flood = typeof FLOODS[number]

interface Result {
  flood: Flood
  health: { samples: number, p50?: number, p99?: number, max?: number }
  /** Honest publish: from dialling A to A and B holding it; undefined when it failed. */
  publishMs?: number
  publishError?: string
  floodMs: number
  /** A's connections when the publisher dialled. */
  connections?: number
  /** CPU the target process (A and B) spent from the flood's start to its end and the publish's. */
  targetCpuMs?: number
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const HEALTH_EVERY_MS = 25
const PUBLISH_DEADLINE_MS = 60_000

type Msg = Record<string, unknown> & { id?: number }

/** Request/reply over a child's IPC channel. */
function rpc (child: ChildProcess): (msg: Msg) => Promise<Msg> {
  let next = 0
  const waiting = new Map<number, (m: Msg) => void>()
  child.on('message', (m: Msg) => { waiting.get(m.id as number)?.(m); waiting.delete(m.id as number) })
  return async (msg) => await new Promise((resolve) => {
    const id = next++
    waiting.set(id, resolve)
    child.send({ ...msg, id })
  })
}

/** Serves requests from the parent with `handle`; each reply carries its request's id. */
function serve (handle: (msg: Msg) => Promise<Msg>): void {
  process.on('message', (m: Msg) => {
    handle(m).then((reply) => { process.send?.({ ...reply, id: m.id }) }, (err: Error) => { process.send?.({ error: err.message, id: m.id }) })
  })
}

function filePolicy (name: string, content: string): ReturnType<typeof validatePolicyObject> {
  return validatePolicyObject({ name, resources: [{ id: 'f', type: 'file', path: `/etc/flood/${name.replace('/', '-')}`, content }] })
}

/** The target process: agents A and B, A's API on TCP. */
async function target (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'grapevine-flood-'))
  let agents: Agent[] = []
  let close = async (): Promise<void> => {}
  serve(async (m) => {
    if (m.cmd === 'start') {
      const start = async (name: string, bootstrap: string[] = []): Promise<Agent> => await Agent.start({
        stateDir: join(dir, name, 'state'), root: join(dir, name, 'root'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, trust: m.trust as string[], name, reapplyInterval: 0
      })
      const b = await start('b')
      const a = await start('a', [b.multiaddrs[0] as string])
      agents = [a, b]
      const api = await startApi(a, { stateDir: join(dir, 'a', 'state'), socket: false, tcp: { host: '127.0.0.1', port: 0 } })
      close = async () => { await api.close() }
      const deadline = Date.now() + 20_000
      while (a.libp2p.getPeers().length === 0 && Date.now() < deadline) await sleep(50)
      return { addr: a.multiaddrs[0], api: api.url }
    }
    if (m.cmd === 'held') return { held: agents.every((x) => x.envelope(m.name as string)?.version === m.version) }
    if (m.cmd === 'connections') return { n: agents[0]?.libp2p.getConnections().length ?? 0 }
    if (m.cmd === 'cpu') { const u = process.cpuUsage(); return { ms: (u.user + u.system) / 1000 } }
    await close()
    await Promise.allSettled(agents.map(async (a) => { await a.stop() }))
    await rm(dir, { recursive: true, force: true })
    setImmediate(() => process.exit(0))
    return {}
  })
}

async function rogue (topics: string[], addr: string): Promise<GrapevineLibp2p> {
  const net = await createNet({
    privateKey: await generateIdentity(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    scoredTopics: [],
    sync: { interval: 0, source: { digest: () => [], envelope: () => undefined, ingest: async () => 'ignored', wantsEnvelopes: false } }
  })
  for (const t of topics) net.services.pubsub.subscribe(t)
  try {
    await net.dial(multiaddr(addr), { signal: AbortSignal.timeout(5000) })
  } catch (err) {
    await net.stop()
    throw err
  }
  const deadline = Date.now() + 10_000
  while (!topics.every((t) => net.services.pubsub.getSubscribers(t).length > 0) && Date.now() < deadline) await sleep(25)
  return net
}

/** The attacker process: builds a flood's rogues and signed messages, sends on request. */
async function attacker (): Promise<void> {
  const rogues: GrapevineLibp2p[] = []
  let send = async (): Promise<void> => {}
  serve(async (m) => {
    if (m.cmd === 'prepare') {
      send = await prepare(m.flood as Flood, { addr: m.addr as string, root: signingKeyFromPem(m.root as string), outsider: signingKeyFromPem(m.outsider as string), rogues })
      return { rogues: rogues.length }
    }
    if (m.cmd === 'send') {
      await send()
      return {}
    }
    await Promise.allSettled(rogues.splice(0).map(async (r) => { await r.stop() }))
    if (m.cmd === 'exit') setImmediate(() => process.exit(0))
    return {}
  })
}

interface Ctx { addr: string, root: SigningKey, outsider: SigningKey, rogues: GrapevineLibp2p[] }

async function prepare (flood: Flood, c: Ctx): Promise<() => Promise<void>> {
  if (flood === 'none') return async () => {}
  if (flood === 'beacons') {
    const topic = receiptTopic('default')
    const senders = [await rogue([topic], c.addr), await rogue([topic], c.addr)]
    c.rogues.push(...senders)
    const beacons: Uint8Array[] = []
    for (let i = 0; i < 3000; i++) {
      const key = await generateIdentity()
      const report: NodeReport = { format: 1, kind: 'presence', node: peerIdOf(key).toString(), key: nodeSigningKey(key).id, name: `fake-${i}`, tags: {}, at: new Date().toISOString(), policies: [] }
      beacons.push(signReport(report, nodeSigningKey(key)))
    }
    return async () => {
      await Promise.all(senders.map(async (s, j) => {
        for (let i = j; i < beacons.length; i += senders.length) await s.services.pubsub.publish(topic, beacons[i] as Uint8Array).catch(() => {})
      }))
    }
  }
  if (flood === 'announcements') {
    const topic = announceTopic('default')
    const sender = await rogue([topic], c.addr)
    c.rogues.push(sender)
    const anns: Uint8Array[] = []
    for (let i = 0; i < 2000; i++) {
      const bytes = signPolicy(filePolicy(`flood/a${i}`, 'y'.repeat(20 * 1024)), { version: 1, key: c.root })
      anns.push(encodeAnnouncement(validateEnvelope(bytes, { authorize: () => {} })))
    }
    return async () => {
      for (const ann of anns) await sender.services.pubsub.publish(topic, ann).catch(() => {})
    }
  }
  if (flood === 'sync') {
    const sender = await rogue([], c.addr)
    c.rogues.push(sender)
    const big = signPolicy(filePolicy('flood/big', 'z'.repeat(1024 * 1024)), { version: 1, key: c.outsider })
    const frames = [encodeFrame({ type: 'digest', entries: [] }), ...Array.from({ length: 60 }, () => encodeFrame({ type: 'envelope', bytes: big }))]
    return async () => {
      // Four streams at a time, each reopened until 15 s are up, whether the agent takes them or not.
      const until = Date.now() + 15_000
      await Promise.all([0, 1, 2, 3].map(async () => {
        while (Date.now() < until) {
          try {
            const stream = await sender.dialProtocol(multiaddr(c.addr), SYNC_PROTOCOL, { signal: AbortSignal.timeout(5000) })
            await pipe(frames, (src) => lp.encode(src), stream.sink)
            stream.abort(new Error('done'))
          } catch {
            await sleep(200)
          }
        }
      }))
    }
  }
  // sybil: libp2p lets 5 new connections a second in per host, so some dials are refused and retried.
  for (let i = 0, failures = 0; i < 64 && failures < 40;) {
    try {
      c.rogues.push(await rogue([], c.addr))
      i++
    } catch {
      failures++
      await sleep(250)
    }
  }
  return async () => {}
}

async function main (): Promise<void> {
  const only = (arg('--only')?.split(',') ?? FLOODS) as Flood[]
  const out = arg('--out') ?? join('out', `flood-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  const self = fileURLToPath(import.meta.url)
  const targetProc = fork(self, ['--role', 'target'], { stdio: 'inherit', execArgv: process.env.FLOOD_PROF !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${process.env.FLOOD_PROF}`] : [] })
  const attackerProc = fork(self, ['--role', 'attacker'], { stdio: 'inherit' })
  const toTarget = rpc(targetProc)
  const toAttacker = rpc(attackerProc)
  const root = generateSigningKey()
  const outsider = generateSigningKey()
  const pem = (k: SigningKey): string => k.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  const results: Result[] = []
  try {
    const { addr, api } = await toTarget({ cmd: 'start', trust: [root.id] }) as { addr: string, api: string }
    let version = 0
    for (const flood of only) {
      process.stderr.write(`flood: ${flood}\n`)
      const honest = flood === 'announcements' ? 'x'.repeat(64 * 1024) : `honest ${version + 1}\n`
      const env = validateEnvelope(signPolicy(filePolicy('bench/honest', honest), { version: ++version, key: root }), { authorize: () => {} })
      await toAttacker({ cmd: 'prepare', flood, addr, root: pem(root), outsider: pem(outsider) })
      const samples: number[] = []
      let polling = true
      const poller = (async () => {
        while (polling) {
          const t = performance.now()
          await fetch(`${api}/health`, { signal: AbortSignal.timeout(30_000) }).catch(() => {})
          samples.push(performance.now() - t)
          await sleep(HEALTH_EVERY_MS)
        }
      })()
      await sleep(500)
      const cpuBefore = (await toTarget({ cmd: 'cpu' })).ms as number
      const floodStart = Date.now()
      const flooding = toAttacker({ cmd: 'send' }).then(() => Date.now() - floodStart)
      await sleep(300)
      const result: Result = { flood, health: { samples: 0 }, floodMs: 0, connections: (await toTarget({ cmd: 'connections' })).n as number }
      const t = Date.now()
      try {
        const client = await connectMesh({ bootstrap: [addr], signal: AbortSignal.timeout(PUBLISH_DEADLINE_MS) })
        try {
          await client.deliver(env)
        } finally {
          await client.close()
        }
        while (!((await toTarget({ cmd: 'held', name: 'bench/honest', version })).held as boolean)) {
          if (Date.now() - t > PUBLISH_DEADLINE_MS) throw new Error('not held by A and B within 60 s')
          await sleep(10)
        }
        result.publishMs = Date.now() - t
      } catch (err) {
        result.publishError = (err as Error).message
      }
      result.floodMs = await flooding
      result.targetCpuMs = Math.round((await toTarget({ cmd: 'cpu' })).ms as number - cpuBefore)
      polling = false
      await poller
      result.health = { samples: samples.length, p50: round(pct(samples, 0.5)), p99: round(pct(samples, 0.99)), max: round(Math.max(...samples)) }
      results.push(result)
      process.stderr.write(`  ${JSON.stringify(result)}\n`)
      await toAttacker({ cmd: 'stop-rogues' })
      // Let A settle (blocks lift, connections close) before the next flood.
      await sleep(2000)
    }
  } finally {
    await toAttacker({ cmd: 'exit' }).catch(() => {})
    await toTarget({ cmd: 'stop' }).catch(() => {})
  }
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify({ at: new Date().toISOString(), results }, null, 2) + '\n')
  for (const r of results) {
    process.stdout.write(`${r.flood.padEnd(14)} /health p50 ${r.health.p50 ?? '-'} ms p99 ${r.health.p99 ?? '-'} ms max ${r.health.max ?? '-'} ms; publish ${r.publishMs !== undefined ? `${r.publishMs} ms` : `failed: ${r.publishError ?? '?'}`}; flood ${r.floodMs} ms; target CPU ${r.targetCpuMs ?? '-'} ms\n`)
  }
  process.stdout.write(`wrote ${out}\n`)
}

function pct (xs: number[], q: number): number | undefined {
  const sorted = [...xs].sort((x, y) => x - y)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

const round = (n: number | undefined): number | undefined => n === undefined ? undefined : Math.round(n * 10) / 10

const role = arg('--role')
const run = role === 'target' ? target : role === 'attacker' ? attacker : main
run().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 70
})
