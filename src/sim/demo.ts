// `npm start`: a local mesh of real agents, the example policies published the way an admin
// publishes them (`grapevine publish --wait`), a crash and a catch-up, and a report. Output is
// for a person seeing Grapevine for the first time: say what happens, then show it.

import { lstat, readdir, readFile, readlink, writeFile, mkdir } from 'node:fs/promises'
import { availableParallelism, loadavg } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateSigningKey, type SigningKey, type VerifiedEnvelope } from '../envelope/index.js'
import { loadPolicyFile, TRUST_POLICY_NAME, validatePolicyObject, type Policy } from '../policy/index.js'
import { connectMesh, publishPolicy, waitForFleet, PublishError, type MeshClient, type Progress } from '../client/index.js'
import { LiveFleet, type FleetNode } from './fleet.js'
import { planTopology } from './topology.js'
import { prng, seedOf } from './random.js'
import { analyse } from './summary.js'
import { renderReport, formatMs, formatBytes } from './report.js'
import { onlineTargets } from './analysis.js'
import type { RunRecord, SimResult } from './result.js'
import { READY_HEARTBEATS } from './constants.js'
import { buildNginxDeb, rehearsalUnavailable, seedDebianRoot } from './debian-root.js'
import { readSandboxRecord } from '../apply/services/sandbox.js'

export interface DemoOptions {
  out: string
  nodes?: number
  seed?: number
  /** Write a line for a person. */
  print: (line?: string) => void
  /** Redraw a live status line (terminals only); undefined elsewhere. */
  live?: (line: string) => void
  colour: { bold: (s: string) => string, green: (s: string) => string, red: (s: string) => string, dim: (s: string) => string, cyan: (s: string) => string }
}

export interface DemoOutcome {
  ok: boolean
  result: SimResult
  report: string
  elapsedMs: number
  problems: string[]
}

const POLICIES = fileURLToPath(new URL('../../policies/', import.meta.url))
const NETWORK = { latency: { dist: 'uniform' as const, min: 2, max: 15 }, loss: 0, rto: 200 }
const WAIT_MS = 30_000

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

async function until (check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return true
}

/**
 * A publish right after connecting can find the client's own on-connect sync still in flight
 * with each agent; the sync service then answers the publisher's digest request with an empty
 * round ("no agent answered the sync request"). Retrying shortly after is enough.
 */
async function withRetry<T> (fn: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (i >= attempts || !(err instanceof PublishError) || !/no agent answered/.test(err.message)) throw err
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
}

/** A path as a person would type it from here: relative below the working directory, else absolute. */
export function shown (path: string): string {
  const rel = relative(process.cwd(), path)
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel
}

/** A short tree of a sandbox root: files with sizes, links with targets (as seen inside the sandbox). */
async function tree (root: string, dir = root, depth = 0): Promise<string[]> {
  const out: string[] = []
  const entries = (await readdir(dir).catch(() => [] as string[])).sort()
  for (const name of entries) {
    const path = join(dir, name)
    const info = await lstat(path)
    const indent = '    ' + '  '.repeat(depth)
    if (info.isSymbolicLink()) {
      const target = await readlink(path)
      out.push(`${indent}${name} -> ${target.startsWith(root + '/') ? target.slice(root.length) : target}`)
    }
    else if (info.isDirectory()) {
      const inner = await tree(root, path, depth + 1)
      out.push(`${indent}${name}/`, ...inner)
    } else out.push(`${indent}${name}  (${info.size} bytes, mode ${(info.mode & 0o777).toString(8).padStart(4, '0')})`)
  }
  return out
}

/** What web-server.yaml left in one web root, in words: read from the root's own package database, passwd, units and service record. */
async function rehearsal (root: string): Promise<string[]> {
  const status = await readFile(join(root, 'var/lib/dpkg/status'), 'utf8').catch(() => '')
  const nginx = status.split('\n\n').find((b) => /^Package: nginx$/m.test(b))
  const version = nginx !== undefined && /^Status: install ok installed$/m.test(nginx) ? /^Version: (.*)$/m.exec(nginx)?.[1] : undefined
  const user = (await readFile(join(root, 'etc/passwd'), 'utf8').catch(() => '')).split('\n').find((l) => l.startsWith('app:'))?.split(':')
  const enabled = await lstat(join(root, 'etc/systemd/system/multi-user.target.wants/nginx.service')).then(() => true, () => false)
  const record = await readSandboxRecord(root, 'nginx.service').catch(() => undefined)
  return [
    version !== undefined ? `package nginx ${version} installed (dpkg, from its apt cache)` : 'package nginx not installed',
    user !== undefined ? `user app created (uid ${user[2] ?? '?'}, home ${user[5] ?? '?'}, shell ${user[6] ?? '?'})` : 'user app missing',
    `service nginx ${enabled ? 'enabled' : 'not enabled'} (systemctl --root), ${record?.state ?? 'stopped'} (sandbox: started ${record?.started ?? 0}, reloaded ${record?.reloaded ?? 0})`
  ]
}

export async function runDemo (opts: DemoOptions): Promise<DemoOutcome> {
  const started = Date.now()
  const { print, colour: c } = opts
  const count = Math.max(4, opts.nodes ?? 12)
  const seed = opts.seed ?? 1
  const random = prng(seedOf(seed, 'demo'))
  const problems: string[] = []
  await mkdir(opts.out, { recursive: true })

  const step = (n: number, title: string): void => {
    print()
    print(c.bold(`${n}. ${title}`))
  }

  // ---- keys and trust ----------------------------------------------------------
  const root = generateSigningKey()
  const admin = generateSigningKey()
  step(1, 'Keys and trust')
  print(`   root key   ${root.id.slice(0, 24)}…  every agent starts trusting only this key (its --trust)`)
  print(`   admin key  ${admin.id.slice(0, 24)}…  allowed to publish web/ and app/ policies, by a trust policy the root signs`)

  // The web-server role needs real dpkg, useradd and systemctl --root, as root; the demo says
  // which is missing and skips that step rather than fail.
  const cannotRehearse = await rehearsalUnavailable()
  const nginxDeb = cannotRehearse === undefined ? await buildNginxDeb(join(opts.out, 'debs')) : undefined

  // ---- the mesh ------------------------------------------------------------------
  const workers = Math.min(2, availableParallelism())
  const fleet = await LiveFleet.open({
    out: opts.out,
    seed,
    trust: [root.id],
    // A sandbox root has no systemd: the agents record services' running state under it (opt-in, docs/apply.md).
    agent: nginxDeb !== undefined ? { serviceRuntime: 'sandbox' } : {},
    link: NETWORK,
    workers,
    agentsPerWorker: Math.ceil(count / workers)
  })
  let client: MeshClient | undefined
  try {
    const plan = planTopology({ kind: 'random', peers: 2 }, count, random)
    const nodes: FleetNode[] = []
    for (let i = 0; i < count; i++) {
      const role = i % 2 === 0 ? 'web' : 'app'
      const dc = i < count / 2 ? 'eu-1' : 'eu-2'
      // Each sandbox root starts empty, as in the README's walkthrough: the policies create
      // every directory they write into.
      nodes.push(fleet.add({ role, dc }, { neighbours: plan.edges.filter(([a]) => a === i).map(([, b]) => b) }))
    }
    const web = nodes.filter((n) => n.spec.tags.role === 'web')
    const app = nodes.filter((n) => n.spec.tags.role === 'app')
    step(2, `Starting ${count} agents on 127.0.0.1`)
    print(`   ${web.length} with --tag role=web, ${app.length} with --tag role=app; each is a real agent (libp2p, gossipsub, anti-entropy sync, applier)`)
    print(`   with its own identity, state directory and sandbox root under ${shown(join(opts.out, 'nodes'))}/, empty at first`)
    const t0 = Date.now()
    await Promise.all(nodes.map(async (n) => { await fleet.start(n, []) }))
    await Promise.all(nodes.map(async (n) => {
      if (n.neighbours.length === 0) return
      const failed = await fleet.cluster.connect(n.spec.index, n.neighbours.map((j) => nodes[j]?.addrs[0] as string))
      if (failed.length > 0) fleet.warnings.push(`${n.spec.name}: ${failed[0] as string}`)
    }))
    await fleet.cluster.ready(nodes.map((n) => n.spec.index), READY_HEARTBEATS, WAIT_MS)
    fleet.t0 = Date.now()
    print(`   ${c.green('✓')} ${count} agents up and meshed in ${secs(Date.now() - t0)} (each joined through 2 others; links delay 2–15 ms each way)`)

    // ---- publishing -----------------------------------------------------------
    step(3, 'Publishing as an admin, the way `grapevine publish --wait` does')
    const entry = [nodes[0], nodes[Math.floor(count / 2)]].flatMap((n) => n !== undefined ? [n.addrs[0] as string] : [])
    print(`   the admin's machine joins the mesh as a short-lived peer through ${entry.length} agents' addresses`)
    client = await connectMesh({ bootstrap: entry })
    const mesh = client
    // Agents announce themselves a few seconds after joining; the admin's fleet view needs them.
    const known = async (): Promise<number> => (await mesh.fleet().catch(() => [])).length
    const knowDeadline = Date.now() + WAIT_MS
    while ((await known()) < count && Date.now() < knowDeadline) await new Promise((resolve) => setTimeout(resolve, 250))

    const publish = async (id: string, policy: Policy, key: SigningKey, signer: string, expect: number, label: string): Promise<VerifiedEnvelope> => {
      const before = await fleet.traffic()
      const at = Date.now()
      const res = await withRetry(async () => await publishPolicy(mesh, { policy, key }))
      const env = res.envelope
      // Every agent here runs on this machine, so a target's facts hold for all of them or none
      // (and the wait below would say so): the record's nodes carry tags only, so it keeps those.
      const target = policy.kind === 'policy' && policy.target !== undefined ? (({ facts: _facts, ...rest }) => rest)(policy.target) : undefined
      fleet.recordPublish({ id, name: env.name, version: env.version, hash: env.hash, from: -1, signer, at, kind: policy.kind, ...(target !== undefined ? { target } : {}) }, before)
      fleet.mark(id, 'publish', `${env.name} v${env.version} by the ${signer} key, through the admin's peer`, at)
      print(`   ${c.cyan(`${env.name} v${env.version}`)} ${label}: signed, gossiped, confirmed by ${res.confirmedBy.length} peer${res.confirmedBy.length === 1 ? '' : 's'}`)
      if (policy.kind !== 'policy') return env
      let last = ''
      const line = (p: Progress): string => {
        const done = p.applied.length + p.unchanged.length + p.failed.length
        return `     ${done}/${expect} targeted nodes applied it${p.failed.length > 0 ? c.red(` (${p.failed.length} failed)`) : ''}, ${secs(Date.now() - at)} after publishing`
      }
      const waited = await waitForFleet(mesh, env, {
        timeoutMs: WAIT_MS,
        expect,
        pollMs: 200,
        onProgress: (p) => {
          const l = line(p)
          if (opts.live !== undefined) opts.live(l)
          else if (l.split(',')[0] !== last.split(',')[0] && (p.applied.length + p.unchanged.length + p.failed.length) > 0) print(l)
          last = l
        }
      })
      const done = waited.progress.applied.length + waited.progress.unchanged.length + waited.progress.failed.length
      if (opts.live !== undefined) opts.live('')
      const record = fleet.toRecord()
      const rp = record.publishes.find((p) => p.id === id)
      const t100 = rp !== undefined ? onlineTargets(record, rp).latencies.reduce((m, l) => Math.max(m, l), 0) : undefined
      if (waited.progress.failed.length > 0 || done < expect) {
        problems.push(`${env.name} v${env.version}: ${done}/${expect} applied, ${waited.progress.failed.length} failed`)
        print(`   ${c.red('✗')} ${done}/${expect} nodes applied it${waited.timedOut ? ' before the wait timed out' : ''}`)
        for (const f of waited.progress.failed) print(c.red(`     ${f.name}: ${(f.failures ?? []).map((x) => `${x.resource}: ${x.error}`).join('; ')}`))
      } else {
        print(`   ${c.green('✓')} all ${expect} ${policy.target?.tags?.role ?? ''} nodes applied it; the last one ${t100 !== undefined ? formatMs(t100) : '—'} after publishing (receipts routed back to the admin, hop by hop)`)
      }
      return env
    }

    const trust = validatePolicyObject({
      kind: 'trust',
      name: TRUST_POLICY_NAME,
      description: 'The demo admin may publish web/ and app/ policies',
      admins: [{ name: 'demo admin', key: admin.id, scopes: ['web/', 'app/'] }]
    })
    await publish('trust', trust, root, 'root', count, '(the trust policy, signed by the root)')
    const holdTrust = await until(() => new Set(fleet.toRecord().deliveries.filter((d) => d.name === TRUST_POLICY_NAME).map((d) => d.node)).size >= count, WAIT_MS)
    print(`   ${holdTrust ? c.green('✓') : c.red('✗')} every agent holds it: the admin key is now trusted for web/ and app/`)
    if (!holdTrust) problems.push('not every agent received the trust policy')

    const webPolicy = await loadPolicyFile(join(POLICIES, 'web.yaml'))
    const appPolicy = await loadPolicyFile(join(POLICIES, 'app.yaml'))
    await publish('web', webPolicy, admin, 'admin', web.length, `(policies/web.yaml, targets role=web)`)
    await publish('app', appPolicy, admin, 'admin', app.length, `(policies/app.yaml, targets role=app)`)

    // ---- what landed ---------------------------------------------------------------
    step(4, 'What the agents wrote (each into its own sandbox root, which started empty)')
    const w0 = web[0] as FleetNode
    const a0 = app[0] as FleetNode
    print(`   ${w0.spec.name} (role=web): ${shown(w0.spec.root)}/`)
    for (const l of await tree(w0.spec.root)) print(l)
    print(`   ${a0.spec.name} (role=app): ${shown(a0.spec.root)}/`)
    for (const l of await tree(a0.spec.root)) print(l)
    const show = async (n: FleetNode, path: string, note: string): Promise<void> => {
      const text = await readFile(join(n.spec.root, path), 'utf8').catch(() => '(missing)')
      print(`   ${n.spec.name}:${path}  ${c.dim(note)}`)
      for (const l of text.trimEnd().split('\n')) print(`     │ ${l}`)
    }
    await show(w0, '/srv/www/index.html', '(templated: node name and role filled in per node)')
    await show(a0, '/etc/myapp/config.toml', '(a config resource: data rendered as TOML, port kept a number)')
    print(`   ${c.dim('web.yaml\'s nginx reload was skipped: its onlyif "command -v nginx" fails where nginx is not installed')}`)

    // ---- the web-server role: packages, an account, a service ------------------------
    step(5, 'The web role in full: a package, an account, a service (policies/web-server.yaml)')
    if (nginxDeb === undefined) print(`   ${c.dim(`skipped: ${cannotRehearse ?? ''}; as root on Debian it installs nginx, adds a user, enables nginx and records it started in each web root`)}`)
    else {
      await Promise.all(web.map(async (n) => { await seedDebianRoot(n.spec.root, nginxDeb) }))
      print(`   each web node's root now looks like a fresh Debian machine: base accounts, an empty package database,`)
      print(`   and a tiny nginx .deb (built just now with dpkg-deb) in var/cache/apt/archives, as \`apt-get --download-only\` leaves it`)
      print(`   ${c.dim('the agents run with --sandbox-services: a sandbox has no systemd, so a service\'s running state is recorded, labelled (sandbox)')}`)
      const serverPolicy = await loadPolicyFile(join(POLICIES, 'web-server.yaml'))
      await publish('web-server', serverPolicy, admin, 'admin', web.length, '(policies/web-server.yaml: web/nginx grown into the full role)')
      for (const n of web) {
        for (const l of await rehearsal(n.spec.root)) print(`   ${n.spec.name}: ${l}`)
      }
      await show(w0, '/etc/app/runtime.env', '(a config resource templated from this node\'s facts: processors.count, fqdn)')
    }

    // ---- a crash and a catch-up ------------------------------------------------------
    const down = app.slice(0, Math.max(1, Math.floor(app.length / 2)))
    step(6, `Stopping ${down.map((n) => n.spec.name).join(', ')}, publishing app/settings v2, restarting them`)
    await Promise.all(down.map(async (n) => { await fleet.stop(n) }))
    fleet.mark('crash', 'kill', down.map((n) => n.spec.name).join(', '))
    print(`   ${down.length} app agents stopped (as a crash or a reboot would); ${app.length - down.length} app agents still run`)
    const v2 = validatePolicyObject({ ...appPolicy, vars: { ...(appPolicy.kind === 'policy' ? appPolicy.vars : {}), log_level: 'debug' } })
    await publish('app-v2', v2, admin, 'admin', app.length - down.length, '(log_level: info → debug)')
    const restartAt = Date.now()
    await Promise.all(down.map(async (n) => { await fleet.start(n, n.neighbours.length > 0 ? n.neighbours : [0]) }))
    fleet.mark('restart', 'restart', `${down.map((n) => n.spec.name).join(', ')}, same state directories`)
    print(`   restarted with the same state directories; they rejoin through their remembered peers and sync on connect`)
    const caughtUp = await until(() => {
      const r = fleet.toRecord()
      return down.every((n) => r.applies.some((a) => a.node === n.spec.index && a.name === 'app/settings' && a.version >= 2))
    }, WAIT_MS)
    const rec = fleet.toRecord()
    for (const n of down) {
      const got = rec.deliveries.find((d) => d.node === n.spec.index && d.name === 'app/settings' && d.version >= 2)
      const applied = rec.applies.find((a) => a.node === n.spec.index && a.name === 'app/settings' && a.version >= 2)
      const since = restartAt - fleet.t0
      print(`   ${applied !== undefined ? c.green('✓') : c.red('✗')} ${n.spec.name} ${applied !== undefined ? `applied v2 ${formatMs(applied.at - since)} after its restart` : 'did not catch up'}${got !== undefined ? ` (it arrived by ${got.via})` : ''}`)
    }
    if (!caughtUp) problems.push('a restarted agent did not catch up')
    await show(down[0] as FleetNode, '/etc/myapp/config.toml', '(now at v2)')

    // ---- the report ---------------------------------------------------------------
    await fleet.closeWindows(fleet.toRecord(), true)
    const memory = await fleet.finish()
    const record: RunRecord = fleet.toRecord()
    const rss = memory.reduce((s, m) => s + m.rss, 0)
    const result = analyse(record, {
      scenario: {
        name: 'demo',
        description: `npm start: ${count} agents on 127.0.0.1, the example policies published by a scoped admin key through the real publish path, ${down.length} agents stopped while v2 went out, then restarted.`,
        file: 'grapevine demo',
        engine: 'live',
        topology: { kind: 'random', peers: 2 },
        network: NETWORK
      },
      seed,
      nodes: count,
      startedAt: new Date(started).toISOString(),
      setupMs: fleet.t0 - started,
      checks: [
        { check: 'delivered', text: 'every targeted agent applied every publish', status: problems.some((p) => /applied/.test(p)) ? 'fail' : 'pass', detail: problems.filter((p) => /applied/.test(p)).join('; ') || 'yes' },
        { check: 'caught-up', text: 'the restarted agents caught up by themselves', status: caughtUp ? 'pass' : 'fail', detail: caughtUp ? 'yes' : 'no' }
      ],
      engine: { kind: 'live', workers, transport: 'tcp', node: process.version, cpus: availableParallelism(), load: [loadavg()[0] as number, loadavg()[0] as number] },
      memory: { rssBytes: rss, perAgentBytes: Math.round(rss / count) }
    })
    const report = join(opts.out, 'report.html')
    await writeFile(join(opts.out, 'results.json'), JSON.stringify(result, null, 2) + '\n')
    await writeFile(join(opts.out, 'record.json'), JSON.stringify(record) + '\n')
    await writeFile(report, renderReport(result))

    step(7, 'Summary')
    for (const p of result.publishes) {
      const via = Object.entries(p.via).map(([k, v]) => `${v} by ${k}`).join(', ')
      const verb = p.name === TRUST_POLICY_NAME ? 'hold it' : 'applied'
      print(`   ${p.name} v${p.version}: ${p.applied}/${p.targeted} ${verb}, the last ${formatMs(p.times.t100)} after publishing; it arrived ${via}${p.catchUp.length > 0 ? `; ${p.catchUp.length} caught up after their restart` : ''}`)
    }
    const sent = result.nodes.reduce((s, n) => s + n.traffic.gossipBytesSent + n.traffic.syncBytesSent, 0)
    print(`   traffic: ${formatBytes(sent)} sent by all agents in total (policies, receipts, presence, gossip control), ${formatBytes(sent / count)} per agent`)
    print(`   no master: the admin talked to 2 agents; gossip and sync carried everything else`)
    return { ok: problems.length === 0, result, report, elapsedMs: Date.now() - started, problems }
  } finally {
    await client?.close().catch(() => {})
    await fleet.close()
  }
}
