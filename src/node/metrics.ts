import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client'

/** Prometheus metrics for one agent. Each agent has its own registry, so simulations can host many. */
export function createMetrics (opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry()
  if (opts.defaultMetrics === true) collectDefaultMetrics({ register: registry, prefix: 'grapevine_process_' })
  return {
    registry,
    peers: new Gauge({ name: 'grapevine_peers', help: 'Connected peers', registers: [registry] }),
    policies: new Gauge({ name: 'grapevine_policies', help: 'Policies held (newest accepted envelope per name)', registers: [registry] }),
    envelopesAccepted: new Counter({ name: 'grapevine_envelopes_accepted_total', help: 'Envelopes accepted, by how they arrived', labelNames: ['via'] as const, registers: [registry] }),
    envelopesRejected: new Counter({ name: 'grapevine_envelopes_rejected_total', help: 'Envelopes refused, by reason', labelNames: ['reason', 'via'] as const, registers: [registry] }),
    envelopesIgnored: new Counter({ name: 'grapevine_envelopes_ignored_total', help: 'Valid envelopes not taken (older, duplicate, lost conflict)', labelNames: ['reason'] as const, registers: [registry] }),
    applies: new Counter({ name: 'grapevine_applies_total', help: 'Policy applies, by outcome', labelNames: ['outcome'] as const, registers: [registry] }),
    applyDuration: new Histogram({ name: 'grapevine_apply_duration_seconds', help: 'Policy apply duration', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers: [registry] }),
    syncRounds: new Counter({ name: 'grapevine_sync_rounds_total', help: 'Anti-entropy exchanges, by role and result', labelNames: ['role', 'result'] as const, registers: [registry] }),
    syncEnvelopes: new Counter({ name: 'grapevine_sync_envelopes_total', help: 'Envelopes moved by anti-entropy', labelNames: ['direction'] as const, registers: [registry] }),
    conflicts: new Gauge({ name: 'grapevine_conflicts', help: 'Open conflicts (version conflicts and paths claimed by two policies)', registers: [registry] })
  }
}

export type AgentMetrics = ReturnType<typeof createMetrics>
