import { startRecord, MAX_RANK, type RolloutRecord, type StartRollout } from '../../src/rollout/index.js'

/** A rollout of web/nginx from v1 to v2: a one-node canary, then everyone; no failures allowed, no bake. */
export function startRollout (over: Partial<StartRollout> = {}): StartRollout {
  return {
    policy: 'web/nginx',
    target: { version: 2, id: '2'.repeat(64) },
    previous: { version: 1, id: '1'.repeat(64) },
    stages: [{ text: '1', upTo: '0'.repeat(63) + '1' }, { text: '100%', upTo: MAX_RANK }],
    maxFailures: { kind: 'count', count: 0 },
    bakeMs: 0,
    stageTimeoutMs: 600_000,
    autoRollback: false,
    at: Date.parse('2026-12-05T00:00:00.000Z'),
    ...over
  }
}

/** The record startRecord makes of startRollout(over). */
export const rolloutRecordOf = (over: Partial<StartRollout> = {}): RolloutRecord => startRecord(startRollout(over))
