// The progress line says what a publish did in its kind's words: a rollout record is only held
// (nothing enforces its stages yet), never "applied".
import { describe, expect, it } from 'vitest'
import { progressLine } from '../../src/cli/commands/publish.js'
import type { Progress } from '../../src/client/index.js'

const node = (i: number): Progress['applied'][number] => ({ id: `id-${i}`, name: `node-${i}`, tags: {}, outcome: 'rollout' })
const progress = (held: number, pending: number): Progress => ({
  applied: Array.from({ length: held }, (_, i) => node(i)),
  unchanged: [],
  failed: [],
  notTargeted: [],
  sealed: [],
  pending: Array.from({ length: pending }, (_, i) => ({ ...node(held + i), outcome: 'pending' })),
  stale: [],
  conflicting: [],
  superseded: [],
  known: held + pending,
  unadmitted: 0
})

describe('progressLine', () => {
  it('says a rollout record is held by N nodes, not applied', () => {
    const line = progressLine('rollout', 'rollout/web/nginx', 3, progress(2, 1))
    expect(line).toContain('rollout/web/nginx v3: 2/3 reported — held by 2, 0 refused it, 1 waiting')
    expect(line).not.toContain('applied')
  })
})
