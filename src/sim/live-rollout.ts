// Staged rollouts in the live engine: the admin's side runs the production client code
// (startRollout, driveRollout, actOnRollout from src/client/) through one fleet node's agent,
// as `grapevine publish --rollout --agent` on that node would. Killing that node kills the
// evaluator with it: the record stays where it stood, as when a publisher's process dies.

import type { SigningKey, VerifiedEnvelope } from '../envelope/index.js'
import type { ConfigPolicy } from '../policy/index.js'
import {
  actOnRollout, driveRollout, startRollout, PublishError,
  type Delivery, type HeldRecord, type MeshClient
} from '../client/index.js'
import type { RolloutAction } from '../rollout/index.js'
import type { LiveCluster } from './cluster.js'
import type { RecordRollout, RecordRolloutStep } from './result.js'
import type { RolloutSpec } from './scenario.js'

/** An admin client through one fleet node's agent: what `--agent` to that node gives the CLI. */
export function nodeClient (cluster: LiveCluster, node: number, onDelivered?: (env: VerifiedEnvelope, at: number) => void): MeshClient {
  return {
    current: async (name) => (await cluster.digest(node)).find((e) => e.name === name),
    heads: async () => await cluster.digest(node),
    deliver: async (env): Promise<Delivery> => {
      const res = await cluster.publish(node, env.bytes)
      const confirmed = { confirmedBy: [`node-${node}`] }
      if (res.outcome === 'accepted') {
        onDelivered?.(env, res.at)
        return confirmed
      }
      const held = (await cluster.digest(node)).find((e) => e.name === env.name)
      if (held?.id === env.id) return confirmed
      if (held !== undefined && held.version === env.version) return { ...confirmed, conflict: { winner: held.hash, ours: env.hash, version: held.version } }
      throw new PublishError(`node-${node} did not take ${env.name} v${env.version} (${res.outcome}; it holds ${held === undefined ? 'no version' : `v${held.version}`})`)
    },
    fleet: async () => await cluster.fleetView(node),
    envelope: async (name, version) => await cluster.envelope(node, name, version),
    close: async () => {}
  }
}

export interface LiveRolloutInit {
  /** The publish event's id. */
  publish: string
  spec: RolloutSpec
  policy: ConfigPolicy
  cluster: LiveCluster
  /** Called for every envelope an admin's client delivers (the staged policy, each record). */
  delivered: (env: VerifiedEnvelope, at: number, from: number, admin: string) => void
  say: (message: string) => void
  /** A node not heard from for this long is stopped, for the evaluator (two beacon intervals, as publish --wait judges). */
  staleAfterMs?: number
}

/** One staged publish of a live run: its evaluator (whichever node's process runs it now) and every record signed for it. */
export class LiveRollout {
  private readonly steps: Array<Omit<RecordRolloutStep, 'at'> & { epoch: number }> = []
  private stages: Array<{ text: string, members: number }> = []
  private version = 0
  private hash = ''
  private driving: Promise<void> | undefined
  private closing = false

  constructor (private readonly c: LiveRolloutInit) {}

  /** Publishes the policy in stages from `from` (signed by `admin`), and starts the evaluator there. */
  async start (from: number, key: SigningKey, admin: string): Promise<void> {
    const client = this.client(from, admin)
    const { spec } = this.c
    const started = await startRollout(client, {
      policy: this.c.policy,
      key,
      stages: spec.stages.specs,
      maxFailures: spec.maxFailures,
      bakeMs: spec.bake,
      stageTimeoutMs: spec.stageTimeout,
      autoRollback: spec.autoRollback,
      ...(this.c.staleAfterMs !== undefined ? { staleAfterMs: this.c.staleAfterMs } : {})
    })
    const r = started.record.record
    this.version = r.target.version
    this.hash = started.published.envelope.hash
    this.stages = r.stages.map((s, i) => ({ text: s.text, members: started.sizes[i] ?? 0 }))
    this.step(started.record, 'start', from, admin)
    this.c.say(`${this.c.publish}: rollout of ${r.policy} v${r.target.version} from node-${from}: ${this.stages.map((s) => `${s.text} (${s.members})`).join(' → ')}`)
    this.drive(client, started.record, from, key, admin)
  }

  /** Another admin acts on the rollout from `from`: pause, abort, or resume (and evaluate it from there). */
  async act (action: RolloutAction, from: number, key: SigningKey, admin: string): Promise<void> {
    const client = this.client(from, admin)
    const held = await actOnRollout(client, this.c.policy.name, key, action)
    this.step(held, action.type, from, admin)
    if (action.type === 'resume') this.drive(client, held, from, key, admin)
  }

  /** Whether an evaluator is still running: the run waits for it (up to its deadline). */
  active (): boolean {
    return this.driving !== undefined
  }

  /** The run is ending: an evaluator that fails from now on (its cluster closing) is not an error. */
  close (): void {
    this.closing = true
  }

  toRecord (t0: number): RecordRollout {
    const { spec } = this.c
    return {
      publish: this.c.publish,
      name: this.c.policy.name,
      version: this.version,
      hash: this.hash,
      spec: spec.stages.text,
      stages: this.stages,
      bakeMs: spec.bake,
      maxFailures: spec.maxFailures.kind === 'count' ? String(spec.maxFailures.count) : `${spec.maxFailures.milli / 1000}%`,
      stageTimeoutMs: spec.stageTimeout,
      autoRollback: spec.autoRollback,
      steps: this.steps.map(({ epoch, ...s }) => ({ ...s, at: epoch - t0 }))
    }
  }

  private client (from: number, admin: string): MeshClient {
    return nodeClient(this.c.cluster, from, (env, at) => { this.c.delivered(env, at, from, admin) })
  }

  private step (held: HeldRecord, action: RecordRolloutStep['action'], by: number, signer: string): void {
    const r = held.record
    this.steps.push({ version: held.envelope.version, epoch: Date.now(), by, signer, action, state: r.state, stage: r.stage, ...(r.reason !== undefined ? { reason: r.reason } : {}), rolledBack: r.rolledBack })
  }

  private drive (client: MeshClient, held: HeldRecord, from: number, key: SigningKey, admin: string): void {
    let last = held.record
    const run = driveRollout(client, held, {
      key,
      ...(this.c.staleAfterMs !== undefined ? { staleAfterMs: this.c.staleAfterMs } : {}),
      onStage: (next) => {
        const r = next.record
        const action: RecordRolloutStep['action'] = r.state === 'halted' ? 'halt' : r.state === 'paused' ? 'pause' : 'advance'
        last = r
        this.step(next, action, from, admin)
        this.c.say(`${this.c.publish}: ${action} signed at node-${from}: stage ${r.stage + 1}/${r.stages.length} ${r.state}${r.reason !== undefined ? ` (${r.reason})` : ''}`)
      }
    }).then((result) => {
      this.c.say(`${this.c.publish}: the evaluator at node-${from} stopped: ${result.end} at stage ${result.record.record.stage + 1}/${result.record.record.stages.length}`)
    }, (err: Error) => {
      if (this.closing) return
      // Its node was killed (or stopped answering): the record stays where it stood.
      this.c.say(`${this.c.publish}: the evaluator at node-${from} died (${err.message}); the rollout stands at stage ${last.stage + 1}/${last.stages.length}`)
    })
    const mine = this.driving = run.finally(() => { if (this.driving === mine) this.driving = undefined })
  }
}
