/**
 * `npm run bench:flood`: what a hostile peer (or a trusted but compromised admin) costs an agent.
 *
 * Starts a target agent A with its API on TCP, and an honest agent B that A dialled. For each
 * flood it polls A's `/health` every 25 ms and times one honest publish from a short-lived
 * publisher joining through A (`grapevine publish --bootstrap A`, as an admin would), until A
 * and B both hold the new version:
 *
 * - `beacons`: two rogue peers gossip 3,000 presence beacons from made-up node identities;
 * - `announcements`: a rogue gossips 2,000 valid announcements (signed by a trusted key, the
 *   insider) of bodies nobody serves, and the honest publish is a large (announced) envelope;
 * - `sync`: four rogue sync streams deliver large envelopes signed by an untrusted key;
 * - `sybil`: rogue identities connect to A until it holds 64 connections, then the publisher joins.
 *
 * The attackers run in this process, their messages signed before each flood starts, so the
 * figures include their sending cost: an upper bound on what A pays. Figures, not assertions:
 * this machine is shared (see docs/capacity.md, "Floods").
 *
 * Flags: --only beacons,sync (floods to run), --out FILE (JSON; default out/flood-<time>.json).
 */
import '../shim.js'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { Agent } from '../node/agent.js'
import { startApi, type ApiServer } from '../node/api.js'
import { receiptTopic, announceTopic } from '../node/constants.js'
import { createNet, multiaddr, type GrapevineLibp2p } from '../net/libp2p.js'
import { generateIdentity, nodeSigningKey, peerIdOf } from '../net/identity.js'
import { encodeAnnouncement, generateSigningKey, signPolicy, validateEnvelope, type SigningKey } from '../envelope/index.js'
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
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const HEALTH_EVERY_MS = 25
const PUBLISH_DEADLINE_MS = 60_000

async function rogue (topics: string[], target: string): Promise<GrapevineLibp2p> {
  const net = await createNet({
    privateKey: await generateIdentity(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    scoredTopics: [],
    sync: { interval: 0, source: { digest: () => [], envelope: () => undefined, ingest: async () => 'ignored', wantsEnvelopes: false } }
  })
  for (const t of topics) net.services.pubsub.subscribe(t)
  try {
    await net.dial(multiaddr(target), { signal: AbortSignal.timeout(5000) })
  } catch (err) {
    await net.stop()
    throw err
  }
  const deadline = Date.now() + 10_000
  while (!topics.every((t) => net.services.pubsub.getSubscribers(t).length > 0) && Date.now() < deadline) await sleep(25)
  return net
}

/** Polls /health until stopped; each sample is one request's round trip. */
function healthPoller (url: string): { stop: () => Promise<number[]> } {
  const samples: number[] = []
  let running = true
  const loop = (async () => {
    while (running) {
      const t = performance.now()
      try {
        await fetch(`${url}/health`, { signal: AbortSignal.timeout(30_000) })
        samples.push(performance.now() - t)
      } catch {
        samples.push(performance.now() - t)
      }
      await sleep(HEALTH_EVERY_MS)
    }
  })()
  return { stop: async () => { running = false; await loop; return samples } }
}

function filePolicy (name: string, content: string): ReturnType<typeof validatePolicyObject> {
  return validatePolicyObject({ name, resources: [{ id: 'f', type: 'file', path: `/etc/flood/${name.replace('/', '-')}`, content }] })
}

async function main (): Promise<void> {
  const only = (arg('--only')?.split(',') ?? FLOODS) as Flood[]
  const out = arg('--out') ?? join('out', `flood-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  const dir = await mkdtemp(join(tmpdir(), 'grapevine-flood-'))
  const root = generateSigningKey()
  const outsider = generateSigningKey()
  const start = async (name: string, bootstrap: string[] = []): Promise<Agent> => await Agent.start({
    stateDir: join(dir, name, 'state'), root: join(dir, name, 'root'), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, trust: [root.id], name, reapplyInterval: 0
  })
  const b = await start('b')
  const a = await start('a', [b.multiaddrs[0] as string])
  const api: ApiServer = await startApi(a, { stateDir: join(dir, 'a', 'state'), socket: false, tcp: { host: '127.0.0.1', port: 0 } })
  const target = a.multiaddrs[0] as string
  const results: Result[] = []
  let version = 0
  const rogues: GrapevineLibp2p[] = []
  try {
    const deadline = Date.now() + 20_000
    while (a.libp2p.getPeers().length === 0 && Date.now() < deadline) await sleep(50)
    for (const flood of only) {
      process.stderr.write(`flood: ${flood}\n`)
      const honest = flood === 'announcements' ? 'x'.repeat(64 * 1024) : `honest ${version + 1}\n`
      const policy = filePolicy('bench/honest', honest)
      const bytes = signPolicy(policy, { version: ++version, key: root })
      const env = validateEnvelope(bytes, { authorize: () => {} })
      const send = await prepare(flood, { root, outsider, target, rogues, connections: () => a.libp2p.getConnections().length })
      const poller = healthPoller(api.url as string)
      await sleep(500)
      const floodStart = Date.now()
      const flooding = send()
      await sleep(300)
      const result: Result = { flood, health: { samples: 0 }, floodMs: 0 }
      const t = Date.now()
      try {
        const client = await connectMesh({ bootstrap: [target], signal: AbortSignal.timeout(PUBLISH_DEADLINE_MS) })
        try {
          await client.deliver(env)
        } finally {
          await client.close()
        }
        const until = Date.now() + PUBLISH_DEADLINE_MS
        while (![a, b].every((x) => x.envelope('bench/honest')?.version === version)) {
          if (Date.now() > until) throw new Error('not held by A and B within 60 s')
          await sleep(10)
        }
        result.publishMs = Date.now() - t
      } catch (err) {
        result.publishError = (err as Error).message
      }
      await flooding
      result.floodMs = Date.now() - floodStart
      const samples = await poller.stop()
      result.health = { samples: samples.length, p50: round(pct(samples, 0.5)), p99: round(pct(samples, 0.99)), max: round(Math.max(...samples)) }
      results.push(result)
      process.stderr.write(`  ${JSON.stringify(result)}\n`)
      await Promise.allSettled(rogues.splice(0).map(async (r) => { await r.stop() }))
      // A flood's rogues are blocked or gone; let A settle before the next.
      await sleep(2000)
    }
  } finally {
    await Promise.allSettled(rogues.map(async (r) => { await r.stop() }))
    await api.close()
    await a.stop()
    await b.stop()
    await rm(dir, { recursive: true, force: true })
  }
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify({ at: new Date().toISOString(), results }, null, 2) + '\n')
  for (const r of results) {
    process.stdout.write(`${r.flood.padEnd(14)} /health p50 ${r.health.p50 ?? '-'} ms p99 ${r.health.p99 ?? '-'} ms max ${r.health.max ?? '-'} ms; publish ${r.publishMs !== undefined ? `${r.publishMs} ms` : `failed: ${r.publishError ?? '?'}`}; flood ${r.floodMs} ms\n`)
  }
  process.stdout.write(`wrote ${out}\n`)
}

function pct (xs: number[], q: number): number | undefined {
  const sorted = [...xs].sort((x, y) => x - y)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

const round = (n: number | undefined): number | undefined => n === undefined ? undefined : Math.round(n * 10) / 10

interface Ctx { root: SigningKey, outsider: SigningKey, target: string, rogues: GrapevineLibp2p[], connections: () => number }

/** Builds a flood's attackers and signs its messages; returns what sends it. */
async function prepare (flood: Flood, c: Ctx): Promise<() => Promise<void>> {
  if (flood === 'none') return async () => {}
  if (flood === 'beacons') {
    const topic = receiptTopic('default')
    const senders = [await rogue([topic], c.target), await rogue([topic], c.target)]
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
    const sender = await rogue([topic], c.target)
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
    const sender = await rogue([], c.target)
    c.rogues.push(sender)
    const big = signPolicy(filePolicy('flood/big', 'z'.repeat(1024 * 1024)), { version: 1, key: c.outsider })
    const frames = [encodeFrame({ type: 'digest', entries: [] }), ...Array.from({ length: 60 }, () => encodeFrame({ type: 'envelope', bytes: big }))]
    return async () => {
      // Four streams at a time, each reopened until 15 s are up or the agent stops taking them.
      const until = Date.now() + 15_000
      await Promise.all([0, 1, 2, 3].map(async () => {
        while (Date.now() < until) {
          try {
            const stream = await sender.dialProtocol(multiaddr(c.target), SYNC_PROTOCOL, { signal: AbortSignal.timeout(5000) })
            await pipe(frames, (src) => lp.encode(src), stream.sink)
            stream.abort(new Error('done'))
          } catch {
            await sleep(200)
          }
        }
      }))
    }
  }
  // sybil: fresh identities fill A's 64 connections (A also holds B), as 61 did in the report.
  // libp2p lets 5 new connections a second in per host, so some dials are refused and retried.
  for (let i = 0, failures = 0; i < 64 && c.connections() < 64 && failures < 40; i++) {
    try {
      c.rogues.push(await rogue([], c.target))
    } catch {
      failures++
      i--
      await sleep(250)
    }
  }
  process.stderr.write(`  ${c.connections()} connections after the sybils\n`)
  return async () => {}
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 70
})
