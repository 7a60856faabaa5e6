import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client'
import type { MetricsRegister } from '../net/libp2p.js'
import type { FetchRound, SyncRound } from '../sync/index.js'

/** Prometheus metrics for one agent. Each agent has its own registry, so simulations can host many. */
export function createMetrics (opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry()
  if (opts.defaultMetrics === true) collectDefaultMetrics({ register: registry, prefix: 'grapevine_process_' })
  const gossip = gossipMetricsRegister(registry)
  const gossipGauge = (n: string) => (): Gauge<string> | undefined => gossip.gauges.get(n)
  return {
    registry,
    /** Hands gossipsub its metrics; they land in this registry under `grapevine_gossipsub_…`. */
    gossipRegister: gossip.register,
    /** The gossipsub metrics traffic reports read (they exist once gossipsub has started). */
    gossip: {
      rpcSentBytes: gossipGauge('gossipsub_rpc_sent_bytes_total'),
      rpcRecvBytes: gossipGauge('gossipsub_rpc_recv_bytes_total'),
      duplicates: gossipGauge('gossipsub_pre_validation_duplicate_total'),
      received: gossipGauge('gossipsub_msg_received_prevalidation_total')
    },
    peers: new Gauge({ name: 'grapevine_peers', help: 'Connected peers', registers: [registry] }),
    policies: new Gauge({ name: 'grapevine_policies', help: 'Policies held (newest accepted envelope per name)', registers: [registry] }),
    envelopesAccepted: new Counter({ name: 'grapevine_envelopes_accepted_total', help: 'Envelopes accepted, by how they arrived', labelNames: ['via'] as const, registers: [registry] }),
    envelopesRejected: new Counter({ name: 'grapevine_envelopes_rejected_total', help: 'Envelopes refused, by reason', labelNames: ['reason', 'via'] as const, registers: [registry] }),
    envelopesIgnored: new Counter({ name: 'grapevine_envelopes_ignored_total', help: 'Valid envelopes not taken (older, duplicate, lost conflict)', labelNames: ['reason'] as const, registers: [registry] }),
    applies: new Counter({ name: 'grapevine_applies_total', help: 'Policy applies, by outcome', labelNames: ['outcome'] as const, registers: [registry] }),
    applyDuration: new Histogram({ name: 'grapevine_apply_duration_seconds', help: 'Policy apply duration', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers: [registry] }),
    syncRounds: new Counter({ name: 'grapevine_sync_rounds_total', help: 'Anti-entropy exchanges, by role and result', labelNames: ['role', 'result'] as const, registers: [registry] }),
    syncEnvelopes: new Counter({ name: 'grapevine_sync_envelopes_total', help: 'Envelopes moved by anti-entropy', labelNames: ['direction'] as const, registers: [registry] }),
    conflicts: new Gauge({ name: 'grapevine_conflicts', help: 'Open conflicts (version conflicts and paths claimed by two policies)', registers: [registry] }),
    syncBytes: new Counter({ name: 'grapevine_sync_bytes_total', help: 'Anti-entropy frame bytes', labelNames: ['direction'] as const, registers: [registry] }),
    announcements: new Counter({ name: 'grapevine_announcements_total', help: 'Announcements of large envelopes from gossip, by result (received, fetched, fetch-failed, ignored, rejected)', labelNames: ['result'] as const, registers: [registry] }),
    fetches: new Counter({ name: 'grapevine_fetches_total', help: 'Announced envelopes asked for (initiator) or served (responder), by result (found, missing, error)', labelNames: ['role', 'result'] as const, registers: [registry] }),
    receipts: new Counter({ name: 'grapevine_receipts_total', help: 'Receipts and beacons: received from peers, forwarded upstream, kept here (this node published it, or its upstream left), rejected, or dropped unread by the beacon gate (dropped-peer-rate, dropped-peer-penalised, dropped-node-rate, dropped-all-rate, dropped-backlog)', labelNames: ['result'] as const, registers: [registry] }),
    fetchBytes: new Counter({ name: 'grapevine_fetch_bytes_total', help: 'Fetch frame bytes (announced envelopes and their requests)', labelNames: ['direction'] as const, registers: [registry] }),
    stateWriteFailures: new Counter({ name: 'grapevine_state_write_failures_total', help: 'Failed attempts to store an envelope in the state directory (each is retried; nothing is applied from it until it is stored)', registers: [registry] })
  }
}

type Labels = Record<string, string | number>

/**
 * Gossipsub's own metrics (bytes, duplicates, mesh sizes), registered in the agent's
 * Prometheus registry under `grapevine_` names, so /metrics and simulations read them.
 */
function gossipMetricsRegister (registry: Registry): { register: MetricsRegister, gauges: Map<string, Gauge<string>> } {
  const gauges = new Map<string, Gauge<string>>()
  const base = (n: string): string => n.replace(/^gossisub_/, 'gossipsub_')
  const name = (n: string): string => `grapevine_${base(n)}`
  const gauge = (config: { name: string, help: string, labelNames?: readonly string[] }): unknown => {
    const collectors: Array<(g: unknown) => void> = []
    const wrapper = {
      inc: (a?: Labels | number, b?: number) => { if (typeof a === 'object') g.inc(a, b ?? 1); else g.inc(a ?? 1) },
      set: (a: Labels | number, b?: number) => { if (typeof a === 'object') g.set(a, b ?? 0); else g.set(a) },
      addCollect: (fn: (g: unknown) => void) => { collectors.push(fn) }
    }
    const g: Gauge<string> = new Gauge({
      name: name(config.name),
      help: config.help,
      labelNames: [...(config.labelNames ?? [])],
      registers: [registry],
      collect: () => { for (const fn of collectors) fn(wrapper) }
    })
    gauges.set(base(config.name), g)
    return wrapper
  }
  const register = {
    gauge: gauge as MetricsRegister['gauge'],
    histogram: ((config: { name: string, help: string, labelNames?: readonly string[], buckets?: number[] }) => {
      const h = new Histogram({ name: name(config.name), help: config.help, labelNames: [...(config.labelNames ?? [])], buckets: config.buckets, registers: [registry] })
      return {
        startTimer: () => h.startTimer(),
        observe: (a: Labels | number, b?: number) => { if (typeof a === 'object') h.observe(a, b ?? 0); else h.observe(a) },
        reset: () => { h.reset() }
      }
    }) as MetricsRegister['histogram'],
    avgMinMax: ((config: { name: string, help: string, labelNames?: readonly string[] }) => {
      const labelNames = [...(config.labelNames ?? []), 'stat']
      const g = new Gauge({ name: name(config.name), help: config.help, labelNames, registers: [registry] })
      return {
        set: (a: Labels | number[], b?: number[]) => {
          const labels = Array.isArray(a) ? {} : a
          const values = Array.isArray(a) ? a : b ?? []
          if (values.length === 0) return
          g.set({ ...labels, stat: 'avg' }, values.reduce((x, y) => x + y, 0) / values.length)
          g.set({ ...labels, stat: 'min' }, Math.min(...values))
          g.set({ ...labels, stat: 'max' }, Math.max(...values))
        }
      }
    }) as MetricsRegister['avgMinMax']
  }
  return { register, gauges }
}

export type AgentMetrics = ReturnType<typeof createMetrics>

/** Counts one anti-entropy exchange, either side. */
export function countSyncRound (m: AgentMetrics, round: SyncRound): void {
  m.syncRounds.inc({ role: round.initiator ? 'initiator' : 'responder', result: round.error === undefined ? 'ok' : 'error' })
  m.syncEnvelopes.inc({ direction: 'sent' }, round.sent)
  m.syncEnvelopes.inc({ direction: 'received' }, round.received)
  m.syncBytes.inc({ direction: 'sent' }, round.bytesOut ?? 0)
  m.syncBytes.inc({ direction: 'received' }, round.bytesIn ?? 0)
}

/** Counts one fetch of an announced envelope, either side. */
export function countFetch (m: AgentMetrics, round: FetchRound): void {
  m.fetches.inc({ role: round.initiator ? 'initiator' : 'responder', result: round.error !== undefined ? 'error' : round.found ? 'found' : 'missing' })
  m.fetchBytes.inc({ direction: 'sent' }, round.bytesOut)
  m.fetchBytes.inc({ direction: 'received' }, round.bytesIn)
}
