// `npm run bench:mesh`: N in-process agents on 127.0.0.1 TCP (N = 25, 50, 100 by default).
// Publishes one policy from node 0 and prints how fast it spread, how each node got it, and
// the traffic it cost. Figures, not assertions: this machine is shared and noisy.
import '../shim.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Agent } from '../node/agent.js'
import { policyTopic } from '../node/constants.js'
import { generateSigningKey, signPolicy } from '../envelope/index.js'
import { validatePolicyObject } from '../policy/index.js'

/** Each new node joins through this many random earlier nodes: a connected random graph. */
const BOOTSTRAP_PEERS = 3

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

async function waitUntil (check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function run (n: number): Promise<void> {
  // N agents share one disk here, so their fsyncs queue behind each other; GRAPEVINE_BENCH_DIR=/dev/shm
  // takes the disk out of the measurement (each real node has its own disk).
  const dir = await mkdtemp(join(process.env.GRAPEVINE_BENCH_DIR ?? tmpdir(), 'grapevine-bench-mesh-'))
  const root = generateSigningKey()
  const agents: Agent[] = []
  const rss0 = process.memoryUsage().rss
  const t0 = performance.now()
  try {
    for (let i = 0; i < n; i++) {
      const peers = [...agents].sort(() => Math.random() - 0.5).slice(0, BOOTSTRAP_PEERS)
      agents.push(await Agent.start({
        stateDir: join(dir, `n${i}`, 'state'),
        root: join(dir, `n${i}`, 'root'),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: peers.map((a) => a.multiaddrs[0] as string),
        trust: [root.id],
        name: `n${i}`,
        reapplyInterval: 0,
        // Every peer here is 127.0.0.1; libp2p's per-host inbound rate limit would throttle the joins.
        inboundLimits: { perHostPerSecond: 10_000, pending: 1000 }
      }))
    }
    const startMs = performance.now() - t0
    const topic = policyTopic('default')
    // Gossipsub builds its mesh on heartbeats; publish once every node has mesh peers.
    const pubsub = (a: Agent): { getMeshPeers: (t: string) => string[] } => a.libp2p.services.pubsub as unknown as { getMeshPeers: (t: string) => string[] }
    await waitUntil(() => agents.every((a) => pubsub(a).getMeshPeers(topic).length > 0), 'gossipsub meshes', 30_000).catch((err: Error) => {
      const lonely = agents.map((a, i) => ({ i, peers: a.libp2p.getPeers().length, mesh: pubsub(a).getMeshPeers(topic).length, subs: a.libp2p.services.pubsub.getSubscribers(topic).length })).filter((x) => x.mesh === 0)
      throw new Error(`${err.message}: ${JSON.stringify(lonely)}`)
    })
    // Joining nodes announce themselves three times over ~8 s; publish into a settled mesh.
    await new Promise((resolve) => setTimeout(resolve, 9000))
    const before = await Promise.all(agents.map(async (a) => await a.traffic()))

    const accepted = new Map<number, { ms: number, via: string }>()
    const applied = new Map<number, number>()
    let publishAt = 0
    agents.forEach((a, i) => {
      a.on('accepted', ({ envelope, via }) => { if (envelope.name === 'bench/motd') accepted.set(i, { ms: performance.now() - publishAt, via }) })
      a.on('applied', ({ envelope }) => { if (envelope.name === 'bench/motd') applied.set(i, performance.now() - publishAt) })
    })
    const policy = validatePolicyObject({
      kind: 'policy',
      name: 'bench/motd',
      resources: [{ id: 'etc', type: 'directory', path: '/etc' }, { id: 'motd', type: 'file', path: '/etc/motd', content: 'hello {{ node.name }}\n'.padEnd(4096, '.') }]
    })
    const bytes = signPolicy(policy, { version: 1, key: root })
    publishAt = performance.now()
    await agents[0]?.publish(bytes)
    await waitUntil(() => applied.size === n, 'every node to apply', 60_000)
    // Let relays and duplicates land before reading the counters.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const after = await Promise.all(agents.map(async (a) => await a.traffic()))

    const acc = [...accepted.values()].map((a) => a.ms).sort((x, y) => x - y)
    const app = [...applied.values()].sort((x, y) => x - y)
    const via = { gossip: 0, sync: 0, local: 0 }
    for (const a of accepted.values()) via[a.via as keyof typeof via]++
    const delta = after.map((t, i) => {
      const b = before[i] as typeof t
      return { sent: t.gossipBytesSent - b.gossipBytesSent + t.syncBytesSent - b.syncBytesSent, dup: t.policyDuplicates - b.policyDuplicates, msgs: t.policyMessages - b.policyMessages }
    })
    const others = delta.slice(1)
    const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length)
    const fmt = (ms: number): string => `${ms.toFixed(0)} ms`
    console.log(`\nN = ${n}  (state on ${dir.split('/').slice(0, -1).join('/')}; started in ${(startMs / 1000).toFixed(1)} s, ${((process.memoryUsage().rss - rss0) / n / 1024 / 1024).toFixed(1)} MB RSS per agent)`)
    console.log(`  accepted  T50 ${fmt(percentile(acc, 50))}  T90 ${fmt(percentile(acc, 90))}  T99 ${fmt(percentile(acc, 99))}  T100 ${fmt(percentile(acc, 100))}`)
    console.log(`  applied   T50 ${fmt(percentile(app, 50))}  T90 ${fmt(percentile(app, 90))}  T99 ${fmt(percentile(app, 99))}  T100 ${fmt(percentile(app, 100))}`)
    console.log(`  how nodes got it: ${via.gossip} by gossip, ${via.sync} by sync (publisher: ${via.local})`)
    console.log(`  envelope ${bytes.byteLength} B; publisher sent (gossip + sync, receipts included) ${(delta[0]?.sent ?? 0) / 1024 | 0} KiB; other nodes sent ${(mean(others.map((d) => d.sent)) / 1024).toFixed(1)} KiB each on average`)
    console.log(`  policy messages received per node ${mean(others.map((d) => d.msgs)).toFixed(2)}, duplicates per node ${mean(others.map((d) => d.dup)).toFixed(2)}`)
    console.log(`  all ${n} applied within 1 s of the publish: ${(percentile(app, 100) <= 1000) ? 'yes' : 'no'}`)
  } finally {
    await Promise.allSettled(agents.map(async (a) => { await a.stop() }))
    await rm(dir, { recursive: true, force: true })
  }
}

const sizes = process.argv.slice(2).map(Number).filter((x) => Number.isInteger(x) && x > 1)
for (const n of sizes.length > 0 ? sizes : [25, 50, 100]) await run(n)
