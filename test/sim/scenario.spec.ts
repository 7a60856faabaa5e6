import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { loadScenario, parseDuration, parseScenario, parseSelector, selectorText, type Selector } from '../../src/sim/scenario.js'
import { InvalidScenarioError } from '../../src/sim/errors.js'
import { REPO_ROOT } from '../helpers/cli.js'

const BASE = `name: t
nodes: { count: 4 }
policies: { motd: ../simulations/policies/motd.yaml }
`

function problems (text: string): string[] {
  try {
    parseScenario(text, 'x.yaml')
  } catch (err) {
    if (err instanceof InvalidScenarioError) return err.message.split('\n')
    throw err
  }
  return []
}

describe('parseScenario', () => {
  it('fills in defaults: live engine, random topology, perfect network, ids for events', () => {
    const { scenario } = parseScenario(`${BASE}timeline:
  - { at: 2s, do: publish, policy: motd }
  - { at: 1s, do: kill, nodes: first 50% }
  - { at: 3s, do: publish, policy: motd }
  - { at: 4s, do: restart }
`, 'x.yaml')
    expect(scenario.engine).toBe('live')
    expect(scenario.topology).toEqual({ kind: 'random', peers: 3 })
    expect(scenario.network).toEqual({ latency: { dist: 'constant', ms: 0 }, loss: 0, rto: 200 })
    // Sorted by time, auto ids numbered on repeats.
    expect(scenario.timeline.map((e) => [e.at, e.id])).toEqual([[1000, 'kill'], [2000, 'motd'], [3000, 'motd-2'], [4000, 'restart']])
    expect(scenario.timeline[3]).toMatchObject({ do: 'restart', nodes: [{ kind: 'killed' }] })
  })

  it('reads latency shorthands, distributions and loss percentages', () => {
    const { scenario } = parseScenario(`${BASE}network: { latency: 20ms, loss: 20%, rto: 0.3s }\n`)
    expect(scenario.network).toEqual({ latency: { dist: 'constant', ms: 20 }, loss: 0.2, rto: 300 })
    const u = parseScenario(`${BASE}network: { latency: { dist: uniform, min: 5ms, max: 1.5s } }\n`).scenario
    expect(u.network.latency).toEqual({ dist: 'uniform', min: 5, max: 1500 })
  })

  it('takes engine: model for the discrete-event engine', () => {
    expect(parseScenario(`${BASE}engine: model\n`).scenario.engine).toBe('model')
  })

  // Each row: a fragment appended to a valid base, and the exact located message.
  const bad: Array<{ what: string, text: string, want: string }> = [
    { what: 'a duration without a unit', text: `${BASE}timeline:\n  - { at: 2, do: heal }\n`, want: 'x.yaml:5:11: timeline[0].at: expected a duration with a unit, like "2s", "1.5s" or "500ms", got 2' },
    { what: 'an unknown action', text: `${BASE}timeline:\n  - { at: 2s, do: explode }\n`, want: 'x.yaml:5:19: timeline[0].do: expected do to be publish, resume, pause, abort, partition, heal, kill, restart or add, got "explode"' },
    { what: 'an unknown check', text: `${BASE}expect:\n  - { check: fast }\n`, want: 'x.yaml:5:14: expect[0].check: expected check to be delivered, converged, caught-up, no-failures, conflict-recorded, blast-radius or rollout, got "fast"' },
    { what: 'a typo in a field', text: `${BASE}topology: { kind: ring, peer: 2 }\n`, want: 'x.yaml:4:31: topology.peer: unknown field' },
    { what: 'a bad selector', text: `${BASE}timeline:\n  - { at: 1s, do: kill, nodes: half }\n`, want: 'x.yaml:5:32: timeline[0].nodes[0]: expected a node selector: "node-3", "first 50%", "last 2", "random 20%", "tag role=web", "cluster 1", "killed", "rest" or "all", got "half"' },
    { what: 'a loss of 100%', text: `${BASE}network: { loss: 100% }\n`, want: 'x.yaml:4:18: network.loss: expected a loss probability like 0.2 or "20%" (at least 0, below 1), got "100%"' },
    { what: 'a missing node count', text: 'name: t\nnodes: {}\n', want: 'x.yaml:2:8: nodes.count: required field is missing (expected number)' },
    { what: 'a publish of a policy that is not listed', text: `${BASE}timeline:\n  - { at: 1s, do: publish, policy: web }\n`, want: 'x.yaml:5:36: timeline[0].policy: no policy "web" in policies (have: motd)' },
    { what: 'an admin that is not listed', text: `${BASE}timeline:\n  - { at: 1s, do: publish, policy: motd, admin: eve }\n`, want: 'x.yaml:5:49: timeline[0].admin: no admin "eve" in admins (have: root)' },
    { what: 'a node that does not exist', text: `${BASE}timeline:\n  - { at: 1s, do: kill, nodes: node-9 }\n`, want: 'x.yaml:5:32: timeline[0].nodes[0]: node-9 does not exist: the scenario has 4 nodes (node-0 to node-3)' },
    { what: 'a node that exists only after an add', text: `${BASE}timeline:\n  - { at: 1s, do: add, count: 2 }\n  - { at: 2s, do: kill, nodes: node-5 }\n`, want: '' },
    { what: 'a check naming an unknown publish', text: `${BASE}expect:\n  - { check: delivered, publish: v9, within: 1s }\n`, want: 'x.yaml:5:34: expect[0].publish: no publish event with id "v9" in the timeline' },
    { what: 'a cluster selector without clusters', text: `${BASE}timeline:\n  - { at: 1s, do: kill, nodes: cluster 1 }\n`, want: 'x.yaml:5:32: timeline[0].nodes[0]: a cluster selector needs topology kind "clusters"' },
    { what: 'duplicate ids', text: `${BASE}timeline:\n  - { at: 1s, do: heal, id: a }\n  - { at: 2s, do: heal, id: a }\n`, want: 'x.yaml:6:29: timeline[1].id: duplicate id "a" (also timeline[0])' },
    { what: 'YAML syntax', text: 'name: t\nnodes: [\n', want: 'x.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]' },
    { what: 'not a mapping', text: '- 1\n', want: 'x.yaml:1: expected a mapping with name, nodes and timeline, got [1]' },
    // Staged rollouts: stages and max-failures are read by the production parsers, at load time.
    { what: 'rollout stages that do not end at 100%', text: `${BASE}timeline:\n  - { at: 1s, do: publish, policy: motd, rollout: { stages: "1,5%" } }\n`, want: 'x.yaml:5:61: timeline[0].rollout.stages: stage "5%": the last stage must be 100%, or some targeted nodes would never get the version, got "1,5%"' },
    { what: 'rollout stages that shrink', text: `${BASE}timeline:\n  - { at: 1s, do: publish, policy: motd, rollout: { stages: "25%,5%,100%" } }\n`, want: 'x.yaml:5:61: timeline[0].rollout.stages: stage "5%": stages must grow; 5% is not more than 25%, got "25%,5%,100%"' },
    { what: 'a bad max-failures', text: `${BASE}timeline:\n  - { at: 1s, do: publish, policy: motd, rollout: { stages: "100%", maxFailures: lots } }\n`, want: 'x.yaml:5:82: timeline[0].rollout.maxFailures: expected 0, a number of nodes (3) or a percentage of the stage\'s nodes up to 100% ("10%"), got "lots"' },
    { what: 'a rollout without stages', text: `${BASE}timeline:\n  - { at: 1s, do: publish, policy: motd, rollout: { bake: 1s } }\n`, want: 'x.yaml:5:51: timeline[0].rollout.stages: required field is missing (expected string)' },
    { what: 'a resume of a publish without a rollout', text: `${BASE}timeline:\n  - { at: 1s, do: publish, policy: motd, id: p }\n  - { at: 2s, do: resume, publish: p, from: node-1 }\n`, want: 'x.yaml:6:36: timeline[1].publish: publish "p" has no rollout to resume' },
    { what: 'a resume before its publish', text: `${BASE}timeline:\n  - { at: 3s, do: publish, policy: motd, id: p, rollout: { stages: "1,100%" } }\n  - { at: 2s, do: resume, publish: p, from: node-1 }\n`, want: 'x.yaml:6:11: timeline[1].at: publish "p" happens later (at 3000 ms)' },
    { what: 'a pause of an unknown publish', text: `${BASE}timeline:\n  - { at: 2s, do: pause, publish: q, from: node-1 }\n`, want: 'x.yaml:5:35: timeline[0].publish: no publish event with id "q" in the timeline' },
    { what: 'unhealthyOn a node that does not exist', text: `${BASE}timeline:\n  - { at: 1s, do: publish, policy: motd, unhealthyOn: node-7 }\n`, want: 'x.yaml:5:55: timeline[0].unhealthyOn[0]: node-7 does not exist: the scenario has 4 nodes (node-0 to node-3)' },
    { what: 'a blast-radius check with a bad max', text: `${BASE}timeline:\n  - { at: 1s, do: publish, policy: motd, id: p }\nexpect:\n  - { check: blast-radius, publish: p, max: some }\n`, want: 'x.yaml:7:45: expect[0].max: expected a node count like 1 or a percentage of the targeted nodes like "5%", got "some"' },
    { what: 'a rollout check of a publish without a rollout', text: `${BASE}timeline:\n  - { at: 1s, do: publish, policy: motd, id: p }\nexpect:\n  - { check: rollout, publish: p, state: done, within: 5s }\n`, want: 'x.yaml:7:32: expect[0].publish: publish "p" has no rollout' }
  ]
  it.each(bad)('reports $what, located', ({ text, want }) => {
    const got = problems(text)
    if (want === '') expect(got).toEqual([])
    else expect(got).toContain(want)
  })

  it('reads a staged publish with the CLI\'s defaults, and resume, pause and abort events', () => {
    const { scenario } = parseScenario(`${BASE}timeline:
  - { at: 1s, do: publish, policy: motd, id: p, rollout: { stages: "1,5%,100%" }, unhealthyOn: [first 1, tag role=web] }
  - { at: 2s, do: publish, policy: motd, id: q, rollout: { stages: "role=canary,100%", bake: 60s, maxFailures: 10%, stageTimeout: 1m, autoRollback: true } }
  - { at: 3s, do: pause, publish: p, from: node-1 }
  - { at: 4s, do: resume, publish: p, from: node-2 }
  - { at: 5s, do: abort, publish: q, from: node-3, rollback: true }
expect:
  - { check: blast-radius, publish: p, max: 1 }
  - { check: rollout, publish: q, state: aborted, within: 10s }
`, 'x.yaml')
    const [p, q, pause, resume, abort] = scenario.timeline
    expect(p).toMatchObject({
      rollout: { stages: { text: '1,5%,100%', specs: [{ kind: 'count', count: 1 }, { kind: 'percent', milli: 5000 }, { kind: 'percent', milli: 100_000 }] }, bake: 0, maxFailures: { kind: 'count', count: 0 }, stageTimeout: 600_000, autoRollback: false },
      unhealthyOn: [{ kind: 'first', count: 1, percent: false }, { kind: 'tag', key: 'role', value: 'web' }]
    })
    expect(q).toMatchObject({ rollout: { stages: { specs: [{ kind: 'tags', tags: { role: 'canary' } }, { kind: 'percent' }] }, bake: 60_000, maxFailures: { kind: 'percent', milli: 10_000 }, stageTimeout: 60_000, autoRollback: true } })
    expect([pause, resume, abort].map((e) => [e?.do, e?.id])).toEqual([['pause', 'pause-p'], ['resume', 'resume-p'], ['abort', 'abort-q']])
    expect(abort).toMatchObject({ publish: 'q', from: { kind: 'node', index: 3 }, admin: 'root', rollback: true })
    expect(scenario.expect).toEqual([{ check: 'blast-radius', publish: 'p', max: 1 }, { check: 'rollout', publish: 'q', state: 'aborted', within: 10_000 }])
  })

  it('reports every problem at once', () => {
    const got = problems(`name: BAD NAME\nnodes: { count: 0 }\ntimeline:\n  - { at: soon, do: heal }\n`)
    expect(got).toHaveLength(3)
    expect(got.map((l) => l.split(': ')[1])).toEqual(['name', 'nodes.count', 'timeline[0].at'])
  })

  it('never throws anything but InvalidScenarioError, whatever the input', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
      try {
        parseScenario(text, 'f.yaml')
      } catch (err) {
        return err instanceof InvalidScenarioError && err.problems.length > 0 && err.message.startsWith('f.yaml')
      }
      return true
    }), { numRuns: 300 })
  })
})

describe('durations and selectors', () => {
  it.each([
    ['2s', 2000], ['1.5s', 1500], ['500ms', 500], ['1m', 60_000], [0, 0], ['0', 0], [' 3 s ', 3000],
    [2, undefined], ['2', undefined], ['2h', undefined], ['-1s', undefined], ['', undefined]
  ] as Array<[string | number, number | undefined]>)('parseDuration(%j) = %j', (input, want) => {
    expect(parseDuration(input)).toBe(want)
  })

  it.each([
    ['all', { kind: 'all' }], ['node-3', { kind: 'node', index: 3 }], [7, { kind: 'node', index: 7 }],
    ['first 50%', { kind: 'first', count: 50, percent: true }], ['last 2', { kind: 'last', count: 2, percent: false }],
    ['random 12.5%', { kind: 'random', count: 12.5, percent: true }], ['tag role=web', { kind: 'tag', key: 'role', value: 'web' }],
    ['cluster 0', { kind: 'cluster', index: 0 }], ['killed', { kind: 'killed' }], ['rest', { kind: 'rest' }],
    ['first 0%', undefined], ['first 101%', undefined], ['random 0', undefined], ['last 1.5', undefined], ['node-', undefined], [-1, undefined]
  ] as Array<[string | number, Selector | undefined]>)('parseSelector(%j)', (input, want) => {
    expect(parseSelector(input)).toEqual(want)
  })

  it('selectorText round-trips through parseSelector', () => {
    const sel: fc.Arbitrary<Selector> = fc.oneof(
      fc.constantFrom<Selector>({ kind: 'all' }, { kind: 'rest' }, { kind: 'killed' }),
      fc.nat(10_000).map((index): Selector => ({ kind: 'node', index })),
      fc.nat(100).map((index): Selector => ({ kind: 'cluster', index })),
      fc.record({ kind: fc.constantFrom('first' as const, 'last' as const, 'random' as const), count: fc.integer({ min: 1, max: 100 }), percent: fc.boolean() })
    )
    fc.assert(fc.property(sel, (s) => JSON.stringify(parseSelector(selectorText(s))) === JSON.stringify(s)))
  })
})

describe('the shipped scenarios', () => {
  const dir = join(REPO_ROOT, 'simulations')
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'))
  it('include the six the project promises', () => {
    for (const name of ['smoke', 'churn', 'partition-heal', 'lossy', 'concurrent-admins', 'late-joiners']) expect(files).toContain(`${name}.yaml`)
  })
  it.each(files)('%s loads, with its policies, and declares checks', async (f) => {
    const s = await loadScenario(join(dir, f))
    expect(Object.keys(s.loaded).length).toBeGreaterThan(0)
    if (s.engine === 'live') expect(s.expect.length).toBeGreaterThan(0)
  })

  it('names a policy problem at its place in the scenario', async () => {
    const { mkdtemp, writeFile, rm } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const d = await mkdtemp(join(tmpdir(), 'gv-scn-'))
    try {
      await writeFile(join(d, 's.yaml'), 'name: s\nnodes: { count: 2 }\npolicies:\n  bad:\n    name: x/y\n    resources:\n      - { id: a, type: file, path: /etc/a, mode: 644 }\n')
      await expect(loadScenario(join(d, 's.yaml'))).rejects.toThrow(/s\.yaml:7:\d+: policies\.bad\.resources\[0\]\.mode: expected an octal string like "0644", got 644/)
    } finally {
      await rm(d, { recursive: true, force: true })
    }
  })
})
