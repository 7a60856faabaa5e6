import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { Agent, type AgentOptions, type AgentEvents } from '../../src/node/agent.js'
import { envelopeId, generateSigningKey, signPolicy, type SigningKey } from '../../src/envelope/index.js'
import { validatePolicyObject, type Policy } from '../../src/policy/index.js'

/** Resolves when `check` holds, polling on each event the agent emits and on a short tick; rejects at the deadline. */
export async function waitFor (check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** The next event of a kind that satisfies `match`, with a deadline. */
export async function nextEvent<K extends keyof AgentEvents> (agent: Agent, kind: K, match: (...args: AgentEvents[K]) => boolean, timeoutMs = 20_000): Promise<AgentEvents[K]> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { agent.off(kind, listener as never); reject(new Error(`timed out waiting for ${String(kind)}`)) }, timeoutMs)
    const listener = (...args: AgentEvents[K]): void => {
      if (!match(...args)) return
      clearTimeout(timer)
      agent.off(kind, listener as never)
      resolve(args)
    }
    agent.on(kind, listener as never)
  })
}

export interface TestMesh {
  dir: string
  root: SigningKey
  agents: Agent[]
  /** Starts one more agent; `bootstrapFrom` lists indexes of running agents to join through. */
  add: (opts?: Partial<AgentOptions> & { bootstrapFrom?: number[] }) => Promise<Agent>
  sign: (policy: Policy, version: number, key?: SigningKey) => Uint8Array
  stop: () => Promise<void>
}

/**
 * Real agents on 127.0.0.1 TCP in this process, each with its own state directory and sandbox
 * root. Periodic timers are off unless asked for, so tests see only the behaviour they trigger.
 */
export async function startMesh (n: number, opts: Partial<AgentOptions> & { topology?: 'chain' | 'star' } = {}): Promise<TestMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'grapevine-mesh-'))
  const root = generateSigningKey()
  const agents: Agent[] = []
  const chains = new Map<string, { version: number, id: string }>()
  let count = 0
  const mesh: TestMesh = {
    dir,
    root,
    agents,
    add: async (extra = {}) => {
      const i = count++
      const { bootstrapFrom, ...rest } = extra
      const bootstrap = (bootstrapFrom ?? []).map((j) => agents[j]?.multiaddrs.find((a) => a.includes('127.0.0.1')) as string)
      const agent = await Agent.start({
        stateDir: join(dir, `node-${i}`, 'state'),
        root: join(dir, `node-${i}`, 'root'),
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap,
        trust: [root.id],
        name: `node-${i}`,
        reapplyInterval: 0,
        syncInterval: 0,
        ...opts,
        ...rest
      })
      agents.push(agent)
      return agent
    },
    // Like an admin publishing in turn: each new version names the newest one signed before it.
    sign: (policy, version, key = root) => {
      const last = chains.get(policy.name)
      const bytes = signPolicy(policy, { version, key, ...(last !== undefined && version > last.version ? { prev: last.id } : {}) })
      if (last === undefined || version > last.version) chains.set(policy.name, { version, id: envelopeId(bytes) })
      return bytes
    },
    stop: async () => {
      await Promise.allSettled(agents.map(async (a) => { await a.stop() }))
      await rm(dir, { recursive: true, force: true })
    }
  }
  for (let i = 0; i < n; i++) {
    const from = i === 0 ? [] : opts.topology === 'star' ? [0] : [i - 1]
    await mesh.add({ bootstrapFrom: from })
  }
  return mesh
}

/** A small policy writing one templated file (and the directories above it). */
export function filePolicy (name: string, content: string, path = '/etc/grapevine-test/motd', extra: Record<string, unknown> = {}): Policy {
  const dirs: string[] = []
  for (let d = posix.dirname(path); d !== '/'; d = posix.dirname(d)) dirs.unshift(d)
  return validatePolicyObject({
    kind: 'policy',
    name,
    resources: [
      ...dirs.map((d, i) => ({ id: `dir-${i}`, type: 'directory', path: d })),
      { id: 'motd', type: 'file', path, content }
    ],
    ...extra
  })
}

/** What `viewer`'s fleet view says `node` last reported for `policy` (receipt or beacon). */
export const outcomeAt = (viewer: Agent, node: Agent, policy: string): string | undefined =>
  viewer.fleet.list().find((n) => n.id === node.peerId.toString())?.policies[policy]?.outcome
