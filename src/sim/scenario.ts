import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { LineCounter, parseDocument, type Document } from 'yaml'
import { z } from '../vendor/zod.js'
import { describe, formatPath, lineOf, toProblems } from '../policy/parse.js'
import { embedSources, InvalidPolicyError, loadPolicyFile, validatePolicyObject, type Policy, type PolicyProblem } from '../policy/index.js'
import { InvalidScenarioError } from './errors.js'
import { DEFAULT_RTO_MS } from './constants.js'
import { MAX_FORCE_REASON_CHARS } from '../envelope/index.js'
import type { LatencyDist } from './random.js'
import { parseMaxFailures, parseStages, type MaxFailures, type StageSpec } from '../rollout/index.js'

// The scenario format, shared by the live engine (real agents) and the model engine (a
// discrete-event simulator): both read this schema, so one file describes one experiment.
// Times and durations are milliseconds once parsed.

type PathKey = PropertyKey

/** Scenario files are small; anything bigger is a mistake. */
const MAX_SCENARIO_BYTES = 1024 * 1024

/** More live agents than this do not fit one machine (docs/capacity.md); the model engine allows more. */
export const MAX_NODES = 100_000

/**
 * The model engine's bound: its state is typed arrays sized by N and its record holds an entry
 * per node and delivery, so memory grows linearly; ten times the scale sweep's largest fleet.
 * The file's schema allows this much; the live engine refuses more than MAX_NODES when it runs.
 */
export const MAX_MODEL_NODES = 1_000_000

// ---- scalars ---------------------------------------------------------------

const DURATION_HINT = 'expected a duration with a unit, like "2s", "1.5s" or "500ms"'

/** "2s", "500ms", "1.5s", "1m", or 0. */
export function parseDuration (v: string | number): number | undefined {
  if (v === 0 || (typeof v === 'string' && v.trim() === '0')) return 0
  if (typeof v !== 'string') return undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$/.exec(v)
  if (m === null) return undefined
  const n = Number(m[1])
  return Math.round(m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000)
}

const duration = z.union([z.number(), z.string()], { error: DURATION_HINT }).transform((v, ctx) => {
  const ms = parseDuration(v)
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `${DURATION_HINT}, got ${describe(v)}` })
    return z.NEVER
  }
  return ms
})

const LOSS_HINT = 'expected a loss probability like 0.2 or "20%"'
const loss = z.union([z.number(), z.string()], { error: LOSS_HINT }).transform((v, ctx) => {
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v) : null
  const p = typeof v === 'number' ? v : m !== null ? Number(m[1]) / 100 : NaN
  if (!(p >= 0 && p < 1)) {
    ctx.addIssue({ code: 'custom', message: `${LOSS_HINT} (at least 0, below 1), got ${describe(v)}` })
    return z.NEVER
  }
  return p
})

/** Which nodes an event or check is about. Fractions scale with `--nodes`. */
export type Selector =
  | { kind: 'all' }
  | { kind: 'node', index: number }
  | { kind: 'first' | 'last' | 'random', count: number, percent: boolean }
  | { kind: 'tag', key: string, value: string }
  | { kind: 'cluster', index: number }
  | { kind: 'rest' }
  | { kind: 'killed' }

const SELECTOR_HINT = 'expected a node selector: "node-3", "first 50%", "last 2", "random 20%", "tag role=web", "cluster 1", "killed", "rest" or "all"'

export function parseSelector (v: string | number): Selector | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? { kind: 'node', index: v } : undefined
  const s = v.trim()
  if (s === 'all' || s === 'rest' || s === 'killed') return { kind: s }
  let m = /^node-(\d+)$/.exec(s)
  if (m !== null) return { kind: 'node', index: Number(m[1]) }
  m = /^(first|last|random)\s+(\d+(?:\.\d+)?)(%?)$/.exec(s)
  if (m !== null) {
    const count = Number(m[2])
    const percent = m[3] === '%'
    if (percent ? count <= 0 || count > 100 : !Number.isInteger(count) || count < 1) return undefined
    return { kind: m[1] as 'first' | 'last' | 'random', count, percent }
  }
  m = /^tag\s+([A-Za-z0-9][A-Za-z0-9_.-]*)=(.*)$/.exec(s)
  if (m !== null) return { kind: 'tag', key: m[1] as string, value: m[2] as string }
  m = /^cluster\s+(\d+)$/.exec(s)
  if (m !== null) return { kind: 'cluster', index: Number(m[1]) }
  return undefined
}

export function selectorText (s: Selector): string {
  switch (s.kind) {
    case 'node': return `node-${s.index}`
    case 'first': case 'last': case 'random': return `${s.kind} ${s.count}${s.percent ? '%' : ''}`
    case 'tag': return `tag ${s.key}=${s.value}`
    case 'cluster': return `cluster ${s.index}`
    default: return s.kind
  }
}

const selector = z.union([z.number(), z.string()], { error: SELECTOR_HINT }).transform((v, ctx) => {
  const s = parseSelector(v)
  if (s === undefined) {
    ctx.addIssue({ code: 'custom', message: `${SELECTOR_HINT}, got ${describe(v)}` })
    return z.NEVER
  }
  return s
})

/** One selector or a list of them (their union). */
const nodeSet = z.preprocess((v) => Array.isArray(v) || v === undefined ? v : [v], z.array(selector).min(1))

const tagMap = z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: 'expected a tag key of letters, digits, "_", "." or "-"' }), z.string())

const absolutePath = z.string().regex(/^\/[^\0]*$/, { error: 'expected an absolute path like "/etc"' }).refine((p) => !p.split('/').includes('..'), { error: 'a skeleton path may not contain ".."' })

/** What a freshly installed server has: enough that policies need not create /etc. */
export const DEFAULT_SKELETON = ['/etc', '/srv', '/opt', '/var/lib', '/usr/local/bin']

const eventId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { error: 'expected an id of letters, digits, "_", "." or "-"' })

// ---- the file --------------------------------------------------------------

const latency = z.preprocess(
  (v) => typeof v === 'string' || typeof v === 'number' ? { dist: 'constant', ms: v } : v,
  z.discriminatedUnion('dist', [
    z.strictObject({ dist: z.literal('constant'), ms: duration }),
    z.strictObject({ dist: z.literal('uniform'), min: duration, max: duration }),
    z.strictObject({ dist: z.literal('normal'), mean: duration, stddev: duration }),
    z.strictObject({ dist: z.literal('lognormal'), median: duration, sigma: z.number().nonnegative().max(5) })
  ])
)

const topology = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('random'),
    /** Each node first connects to this many random nodes started before it. */
    peers: z.number().int().min(1).max(64).default(3)
  }),
  z.strictObject({ kind: z.literal('ring') }),
  z.strictObject({
    kind: z.literal('clusters'),
    clusters: z.number().int().min(2).max(1000),
    /** Random peers inside the node's own cluster. */
    peers: z.number().int().min(1).max(64).default(2),
    /** Links between each pair of neighbouring clusters (a ring of clusters); all other cross-cluster traffic is firewalled. */
    bridges: z.number().int().min(1).max(64).default(1)
  })
])

const at = { at: duration, id: eventId.optional() }

/** `grapevine publish`'s defaults for the rollout flags (docs/rollout.md): no bake, no failure allowed, 10 min per stage, no rollback. */
export const ROLLOUT_DEFAULTS = { bakeMs: 0, maxFailures: '0', stageTimeoutMs: 10 * 60_000, autoRollback: false } as const

const MAX_FAILURES_HINT = 'expected 0, a number of nodes (3) or a percentage of the stage\'s nodes up to 100% ("10%")'

/**
 * A publish's `rollout:`, as `publish --rollout … --bake … --max-failures … --stage-timeout …
 * --auto-rollback`. Stages and max-failures are read by the production parsers here, so a bad
 * value is a located scenario error, not a failure in the middle of a run.
 */
const rolloutSpec = z.strictObject({
  stages: z.string().transform((v, ctx): { text: string, specs: StageSpec[] } => {
    try {
      return { text: v, specs: parseStages(v) }
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message })
      return z.NEVER
    }
  }),
  bake: duration.default(ROLLOUT_DEFAULTS.bakeMs),
  maxFailures: z.union([z.number(), z.string()], { error: MAX_FAILURES_HINT }).default(ROLLOUT_DEFAULTS.maxFailures).transform((v, ctx): MaxFailures => {
    try {
      return parseMaxFailures(String(v))
    } catch {
      ctx.addIssue({ code: 'custom', message: MAX_FAILURES_HINT })
      return z.NEVER
    }
  }),
  stageTimeout: duration.default(ROLLOUT_DEFAULTS.stageTimeoutMs).refine((ms) => ms > 0, { error: 'expected a positive stage timeout' }),
  autoRollback: z.boolean().default(ROLLOUT_DEFAULTS.autoRollback)
})

export type RolloutSpec = z.output<typeof rolloutSpec>

/** Who acts on a published rollout: the publish event's id, the node the admin signs from, and the admin. */
const rolloutAction = { publish: eventId, from: selector, admin: z.string().default('root') }

const event = z.discriminatedUnion('do', [
  z.strictObject({
    ...at,
    do: z.literal('publish'),
    policy: z.string(),
    from: selector.default({ kind: 'node', index: 0 }),
    admin: z.string().default('root'),
    version: z.number().int().min(1).optional(),
    vars: z.record(z.string(), z.unknown()).optional(),
    /** A signed reason to replace whatever nodes hold, chain or not (`grapevine publish --force`). */
    force: z.string().min(1).max(MAX_FORCE_REASON_CHARS).optional(),
    /** Staged: the publishing node evaluates each stage's gate and signs the next rollout record. */
    rollout: rolloutSpec.optional(),
    /** Nodes on which this version's health check fails: they report `unhealthy` after applying it. */
    unhealthyOn: nodeSet.optional()
  }),
  /** Another admin takes over a rollout (its evaluator died, or it was paused) and evaluates it from `from`. */
  z.strictObject({ ...at, do: z.literal('resume'), ...rolloutAction }),
  z.strictObject({ ...at, do: z.literal('pause'), ...rolloutAction }),
  z.strictObject({ ...at, do: z.literal('abort'), ...rolloutAction, rollback: z.boolean().default(false) }),
  z.strictObject({
    ...at,
    do: z.literal('partition'),
    groups: z.array(nodeSet).min(1),
    /**
     * netns engine: drop (a silent cut; connections across hang until TCP gives up) or reset
     * (connections across are killed and new ones refused with a TCP reset). The live and model
     * engines cut by block lists, which close connections at once, as reset does.
     */
    mode: z.enum(['drop', 'reset']).default('drop')
  }),
  z.strictObject({ ...at, do: z.literal('heal') }),
  z.strictObject({ ...at, do: z.literal('kill'), nodes: nodeSet }),
  z.strictObject({ ...at, do: z.literal('restart'), nodes: nodeSet.default([{ kind: 'killed' }]) }),
  z.strictObject({ ...at, do: z.literal('add'), count: z.number().int().min(1), tags: tagMap.optional(), peers: z.number().int().min(1).max(64).optional() })
])

const BLAST_HINT = 'expected a node count like 1 or a percentage of the targeted nodes like "5%"'

const check = z.discriminatedUnion('check', [
  z.strictObject({
    check: z.literal('delivered'),
    /** A publish event's id; every publish when omitted. */
    publish: z.string().optional(),
    percent: z.number().gt(0).max(100).default(100),
    within: duration
  }),
  z.strictObject({ check: z.literal('converged'), after: z.string().optional(), within: duration }),
  z.strictObject({ check: z.literal('caught-up'), within: duration }),
  z.strictObject({ check: z.literal('no-failures') }),
  z.strictObject({ check: z.literal('conflict-recorded'), within: duration }),
  /** Nodes that ever applied the publish's version (a bad change's reach): at most N, or P% of the targeted nodes. */
  z.strictObject({
    check: z.literal('blast-radius'),
    publish: eventId,
    max: z.union([z.number(), z.string()], { error: BLAST_HINT }).refine((v) => typeof v === 'number' ? Number.isSafeInteger(v) && v >= 0 : /^\d{1,3}(?:\.\d+)?%$/.test(v) && Number(v.slice(0, -1)) <= 100, { error: BLAST_HINT })
  }),
  /** The publish's rollout reached this final state within the time. */
  z.strictObject({ check: z.literal('rollout'), publish: eventId, state: z.enum(['done', 'halted', 'aborted']), within: duration })
])

export const scenarioSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, { error: 'expected a lower-case name like "partition-heal"' }),
  description: z.string().optional(),
  /** live: real agents on this machine; model: the discrete-event simulator; netns: real agents, one network namespace per simulated host (root). */
  engine: z.enum(['live', 'model', 'netns']).default('live'),
  seed: z.number().int().nonnegative().optional(),
  /** Hard cap on the run; by default the last event plus the longest check deadline, plus grace. */
  duration: duration.optional(),
  nodes: z.strictObject({
    count: z.number().int().min(1).max(MAX_MODEL_NODES),
    /**
     * Agents per simulated host: the netns engine puts node i on host i mod ceil(count / perHost),
     * each host a network namespace with one address, and a random topology's peers on other
     * hosts. Default 1. The live engine has one host (this machine) whatever it says. The model
     * engine places node i the same way: a host's agents talk over loopback (no delay, no loss)
     * and run in one process on the host's disk (docs/sim.md, the model engine's host models).
     */
    perHost: z.number().int().min(1).max(1000).optional(),
    /** Tag sets dealt round-robin: node i gets tags[i % length]. */
    tags: z.array(tagMap).default([]),
    /**
     * Directories every sandbox root has before its agent starts, as a bare server has /etc;
     * an entry with tags only on matching nodes (say /etc/nginx where nginx is installed).
     */
    skeleton: z.array(z.union([
      absolutePath,
      z.strictObject({ path: absolutePath, tags: tagMap })
    ], { error: 'expected an absolute path like "/etc", or { path, tags }' })).default(DEFAULT_SKELETON)
  }),
  topology: topology.default({ kind: 'random', peers: 3 }),
  network: z.strictObject({
    latency: latency.default({ dist: 'constant', ms: 0 }),
    loss: loss.default(0),
    rto: duration.default(DEFAULT_RTO_MS)
  }).default({ latency: { dist: 'constant', ms: 0 }, loss: 0, rto: DEFAULT_RTO_MS }),
  /** Agent settings; unset ones keep the production defaults. */
  agent: z.strictObject({
    syncInterval: duration.optional(),
    reapplyInterval: duration.optional(),
    beaconInterval: duration.optional(),
    targetPeers: z.number().int().min(1).max(256).optional(),
    /** Envelopes over this many bytes are announced and fetched (announce-and-fetch); 0 gossips them whole. */
    announceThreshold: z.number().int().nonnegative().optional()
  }).default({}),
  /** Admin keys the root lists in a trust policy, with their scopes; `root` signs directly. */
  admins: z.record(eventId, z.strictObject({ scopes: z.array(z.string().min(1)).min(1) })).default({}),
  /** Policies to publish: a file (relative to the scenario) or an inline policy. */
  policies: z.record(eventId, z.union([z.string(), z.record(z.string(), z.unknown())], { error: 'expected a policy file path or an inline policy' })).default({}),
  timeline: z.array(event).default([]),
  expect: z.array(check).default([])
})

export type ScenarioFile = z.output<typeof scenarioSchema>
export type ScenarioEvent = ScenarioFile['timeline'][number]
export type ScenarioCheck = ScenarioFile['expect'][number]
export type Topology = ScenarioFile['topology']
export type PublishEvent = Extract<ScenarioEvent, { do: 'publish' }>
/** resume, pause or abort of a publish's rollout. */
export type RolloutEvent = Extract<ScenarioEvent, { do: 'resume' | 'pause' | 'abort' }>

/** A parsed, cross-checked scenario with its policies loaded. */
export interface Scenario extends ScenarioFile {
  file: string
  network: { latency: LatencyDist, loss: number, rto: number }
  /** Timeline sorted by time (stable), each event with an id. */
  timeline: Array<ScenarioEvent & { id: string }>
  loaded: Record<string, Policy>
}

// ---- parsing -----------------------------------------------------------------

interface Located {
  problems: PolicyProblem[]
  at: (path: PathKey[], message: string) => void
}

function locator (doc: Document | undefined, counter: LineCounter): Located {
  const problems: PolicyProblem[] = []
  return {
    problems,
    at: (path, message) => { problems.push({ path: formatPath(path), message, ...(doc !== undefined ? lineOf(doc, counter, path) : {}) }) }
  }
}

/** zod's discriminated-union message names the options in its own syntax; say it like the rest. */
function unionProblem (issue: z.core.$ZodIssue, data: unknown): { path: PathKey[], message: string } | undefined {
  if (issue.code !== 'invalid_union') return undefined
  const { discriminator, options } = issue as { discriminator?: string, options?: unknown[] }
  if (discriminator === undefined || options === undefined) return undefined
  const path = issue.path[issue.path.length - 1] === discriminator ? issue.path.slice() : [...issue.path, discriminator]
  let found: unknown = data
  for (const k of path) found = found !== null && typeof found === 'object' ? (found as Record<PropertyKey, unknown>)[k] : undefined
  const list = options.map(String)
  const text = list.length > 1 ? `${list.slice(0, -1).join(', ')} or ${list[list.length - 1] as string}` : list.join('')
  return { path, message: `expected ${discriminator} to be ${text}, got ${describe(found)}` }
}

/**
 * Parses and checks scenario text (YAML or JSON). Every problem is reported at once as
 * `file:line:column: path: message`. Policies are not loaded here (see loadScenario).
 */
export function parseScenario (text: string, file = '<scenario>'): { scenario: Omit<Scenario, 'loaded'>, locate: (path: PathKey[]) => { line?: number, column?: number } } {
  if (Buffer.byteLength(text) > MAX_SCENARIO_BYTES) throw new InvalidScenarioError(file, [{ path: '', message: `over the ${MAX_SCENARIO_BYTES}-byte limit for a scenario` }])
  const counter = new LineCounter()
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true })
  if (doc.errors.length > 0) {
    throw new InvalidScenarioError(file, doc.errors.map((e) => {
      const pos = counter.linePos(e.pos[0])
      return { path: '', line: pos.line, column: pos.col, message: e.message.split('\n')[0] ?? e.message }
    }))
  }
  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: 100 })
  } catch (err) {
    throw new InvalidScenarioError(file, [{ path: '', message: (err as Error).message }])
  }
  const loc = locator(doc, counter)
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new InvalidScenarioError(file, [{ path: '', line: 1, message: `expected a mapping with name, nodes and timeline, got ${describe(data)}` }])
  }
  const result = scenarioSchema.safeParse(data)
  if (!result.success) {
    for (const issue of result.error.issues) {
      const u = unionProblem(issue, data)
      if (u !== undefined) loc.at(u.path, u.message)
      else for (const p of toProblems([issue], data)) loc.at(p.path, p.message)
    }
    throw new InvalidScenarioError(file, loc.problems)
  }
  const s = result.data
  const withIds = assignIds(s.timeline)
  crossCheck(s, withIds, loc)
  if (loc.problems.length > 0) throw new InvalidScenarioError(file, loc.problems)
  // Sorting keeps same-time events in file order.
  const timeline = withIds.map((e, i) => ({ e, i })).sort((a, b) => a.e.at - b.e.at || a.i - b.i).map(({ e }) => e)
  return {
    scenario: { ...s, file, timeline, network: s.network as Scenario['network'] },
    locate: (path) => lineOf(doc, counter, path)
  }
}

/** Every event gets an id, so checks and reports can name it: its own, else the policy key or action, numbered on repeats. */
function assignIds (timeline: ScenarioEvent[]): Array<ScenarioEvent & { id: string }> {
  const taken = new Set(timeline.flatMap((e) => e.id !== undefined ? [e.id] : []))
  const counts = new Map<string, number>()
  return timeline.map((e) => {
    if (e.id !== undefined) return { ...e, id: e.id }
    const base = e.do === 'publish' ? e.policy : e.do === 'resume' || e.do === 'pause' || e.do === 'abort' ? `${e.do}-${e.publish}` : e.do
    let id: string
    do {
      const n = (counts.get(base) ?? 0) + 1
      counts.set(base, n)
      id = n === 1 ? base : `${base}-${n}`
    } while (taken.has(id))
    taken.add(id)
    return { ...e, id }
  })
}

/** What the schema cannot see: references between sections, and node indexes that exist. */
function crossCheck (s: ScenarioFile, timeline: Array<ScenarioEvent & { id: string }>, loc: Located): void {
  const ids = new Map<string, number>()
  timeline.forEach((e, i) => { if (s.timeline[i]?.id === undefined) ids.set(e.id, i) })
  const maxNodes = s.nodes.count + s.timeline.reduce((n, e) => n + (e.do === 'add' ? e.count : 0), 0)
  const checkIndex = (sel: Selector, path: PathKey[]): void => {
    if (sel.kind === 'node' && sel.index >= maxNodes) loc.at(path, `node-${sel.index} does not exist: the scenario has ${maxNodes} nodes (node-0 to node-${maxNodes - 1})`)
    if (sel.kind === 'cluster' && (s.topology.kind !== 'clusters' || sel.index >= s.topology.clusters)) {
      loc.at(path, s.topology.kind !== 'clusters' ? 'a cluster selector needs topology kind "clusters"' : `cluster ${sel.index} does not exist: the topology has ${s.topology.clusters} clusters (0 to ${s.topology.clusters - 1})`)
    }
  }
  s.timeline.forEach((e, i) => {
    const path = ['timeline', i]
    if (e.id !== undefined) {
      if (ids.has(e.id)) loc.at([...path, 'id'], `duplicate id "${e.id}" (also timeline[${ids.get(e.id) as number}])`)
      ids.set(e.id, i)
    }
    if (s.duration !== undefined && e.at > s.duration) loc.at([...path, 'at'], `the event is after the end of the run (duration ${s.duration} ms)`)
    switch (e.do) {
      case 'publish':
        if (!(e.policy in s.policies)) loc.at([...path, 'policy'], `no policy "${e.policy}" in policies (have: ${Object.keys(s.policies).join(', ') || 'none'})`)
        if (e.admin !== 'root' && !(e.admin in s.admins)) loc.at([...path, 'admin'], `no admin "${e.admin}" in admins (have: root${Object.keys(s.admins).map((a) => `, ${a}`).join('')})`)
        if (e.from.kind === 'rest' || e.from.kind === 'killed') loc.at([...path, 'from'], `a publish needs a running node, not "${e.from.kind}"`)
        checkIndex(e.from, [...path, 'from'])
        e.unhealthyOn?.forEach((sel, k) => {
          if (sel.kind === 'rest' || sel.kind === 'killed') loc.at([...path, 'unhealthyOn', k], `"${sel.kind}" cannot say where a check fails`)
          checkIndex(sel, [...path, 'unhealthyOn', k])
        })
        break
      case 'resume': case 'pause': case 'abort': {
        const target = timeline.find((t) => t.do === 'publish' && t.id === e.publish)
        if (target === undefined) loc.at([...path, 'publish'], `no publish event with id "${e.publish}" in the timeline`)
        else if (target.do === 'publish' && target.rollout === undefined) loc.at([...path, 'publish'], `publish "${e.publish}" has no rollout to ${e.do}`)
        else if (target.at > e.at) loc.at([...path, 'at'], `publish "${e.publish}" happens later (at ${target.at} ms)`)
        if (e.admin !== 'root' && !(e.admin in s.admins)) loc.at([...path, 'admin'], `no admin "${e.admin}" in admins (have: root${Object.keys(s.admins).map((a) => `, ${a}`).join('')})`)
        if (e.from.kind === 'rest' || e.from.kind === 'killed') loc.at([...path, 'from'], `a ${e.do} needs a running node, not "${e.from.kind}"`)
        checkIndex(e.from, [...path, 'from'])
        break
      }
      case 'partition':
        e.groups.forEach((g, j) => g.forEach((sel, k) => {
          if (sel.kind === 'killed') loc.at([...path, 'groups', j, k], '"killed" cannot be a partition group')
          checkIndex(sel, [...path, 'groups', j, k])
        }))
        break
      case 'kill': case 'restart':
        e.nodes.forEach((sel, k) => {
          if (sel.kind === 'rest') loc.at([...path, 'nodes', k], '"rest" is only for partition groups')
          checkIndex(sel, [...path, 'nodes', k])
        })
        break
    }
  })
  const publishIds = new Set(timeline.flatMap((e) => e.do === 'publish' ? [e.id] : []))
  s.expect.forEach((c, i) => {
    if (c.check === 'delivered' && c.publish !== undefined && !publishIds.has(c.publish)) {
      loc.at(['expect', i, 'publish'], `no publish event with id "${c.publish}" in the timeline`)
    }
    if (c.check === 'converged' && c.after !== undefined && !ids.has(c.after)) loc.at(['expect', i, 'after'], `no event with id "${c.after}" in the timeline`)
    if ((c.check === 'blast-radius' || c.check === 'rollout') && !publishIds.has(c.publish)) loc.at(['expect', i, 'publish'], `no publish event with id "${c.publish}" in the timeline`)
    if (c.check === 'rollout' && publishIds.has(c.publish) && timeline.some((e) => e.do === 'publish' && e.id === c.publish && e.rollout === undefined)) {
      loc.at(['expect', i, 'publish'], `publish "${c.publish}" has no rollout`)
    }
  })
  if (s.topology.kind === 'clusters' && s.topology.clusters > s.nodes.count) loc.at(['topology', 'clusters'], `${s.topology.clusters} clusters need at least as many nodes (have ${s.nodes.count})`)
  if (s.network.latency.dist === 'uniform' && s.network.latency.min > s.network.latency.max) loc.at(['network', 'latency', 'max'], 'max is below min')
}

/**
 * Reads a scenario file and loads the policies it names (files relative to the scenario,
 * sources embedded as `grapevine publish` would). A policy problem is reported at its place
 * in the scenario, with the policy's own message.
 */
export async function loadScenario (file: string): Promise<Scenario> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new InvalidScenarioError(file, [{ path: '', message: `cannot read the scenario: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }])
  }
  const { scenario, locate } = parseScenario(text, file)
  const base = dirname(resolve(file))
  const loaded: Record<string, Policy> = {}
  const problems: PolicyProblem[] = []
  for (const [key, ref] of Object.entries(scenario.policies)) {
    try {
      loaded[key] = typeof ref === 'string'
        ? await loadPolicyFile(resolve(base, ref))
        : await embedSources(validatePolicyObject({ kind: 'policy', ...ref }, `policies.${key}`), base, file)
    } catch (err) {
      if (!(err instanceof InvalidPolicyError)) throw err
      for (const p of err.problems) {
        const inline = typeof ref !== 'string'
        const path = inline && p.path !== '' ? `policies.${key}.${p.path}` : `policies.${key}`
        const where = locate(inline ? ['policies', key, ...pathKeys(p.path)] : ['policies', key])
        problems.push({ path, message: inline ? p.message : `${ref}${p.line !== undefined ? `:${p.line}` : ''}: ${p.path !== '' ? `${p.path}: ` : ''}${p.message}`, ...where })
      }
    }
  }
  if (problems.length > 0) throw new InvalidScenarioError(file, problems)
  return { ...scenario, loaded }
}

/** `resources[2].mode` → ['resources', 2, 'mode'] */
function pathKeys (path: string): PathKey[] {
  const out: PathKey[] = []
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1] as string)
  return out
}
