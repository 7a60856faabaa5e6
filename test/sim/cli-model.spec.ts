// `grapevine sim` with the model engine, as a user runs it: spawned, output read, files looked at.
// The model is seeded and deterministic, so figures may be compared between runs.
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseScenario, MAX_NODES } from '../../src/sim/scenario.js'
import type { SimResult } from '../../src/sim/result.js'
import { runCli, REPO_ROOT } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'

const MOTD = join(REPO_ROOT, 'simulations', 'policies', 'motd.yaml')

function modelScenario (within = '10s'): string {
  return [
    'name: tiny-model',
    'engine: model',
    'seed: 5',
    'nodes: { count: 40, tags: [{ role: web }] }',
    'network: { latency: { dist: uniform, min: 5ms, max: 30ms } }',
    `policies: { motd: ${MOTD} }`,
    'timeline:',
    '  - { at: 1s, do: publish, policy: motd, id: first }',
    '  - { at: 3s, do: kill, nodes: last 4 }',
    '  - { at: 4s, do: publish, policy: motd, vars: { release: 2 }, id: second }',
    '  - { at: 6s, do: restart }',
    'expect:',
    `  - { check: delivered, within: ${within} }`,
    '  - { check: caught-up, within: 60s }',
    '  - { check: no-failures }',
    ''
  ].join('\n')
}

/** results.json without the wall-clock start: everything else is a function of the scenario and seed. */
async function figures (dir: string): Promise<Omit<SimResult, 'startedAt'>> {
  const { startedAt: _, ...rest } = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as SimResult
  return rest
}

describe('grapevine sim with the model engine', () => {
  const dir = useTempDir('grapevine-sim-model-')

  it('runs an engine: model scenario, writes results.json, record.json and report.html, exit 0; the same seed gives the same figures', async () => {
    const file = join(dir(), 'tiny.yaml')
    await writeFile(file, modelScenario())
    const a = join(dir(), 'a')
    const r = await runCli(['sim', file, '--out', a, '--json'], { env: { CI: 'true' } })
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout) as SimResult & { files: { results: string, record: string, report: string } }
    expect(result.passed).toBe(true)
    expect(result.engine).toMatchObject({ kind: 'model', host: { kind: 'dedicated' } })
    expect(result.scenario).toMatchObject({ engine: 'model', seed: 5, nodes: 40 })
    expect(result.publishes.find((p) => p.id === 'first')).toMatchObject({ applied: 40, targeted: 40 })
    expect(result.files).toEqual({ results: join(a, 'results.json'), record: join(a, 'record.json'), report: join(a, 'report.html') })
    expect(existsSync(result.files.record)).toBe(true)
    // Timeline events went to stderr as plain lines.
    expect(r.stderr).toContain('model engine: 40 nodes, dedicated hosts')
    expect(r.stderr).toMatch(/t=1\.00s publish base\/motd v1 from node-0/)
    expect(r.stderr).not.toContain('\x1b[')
    const html = await readFile(result.files.report, 'utf8')
    expect(html).toContain('<span class="badge engine">model engine</span>')
    expect(html).toContain('one agent per host')

    // Again with the same seed, for people this time: the same figures, the engine in the summary.
    const b = join(dir(), 'b')
    const again = await runCli(['sim', file, '--out', b], { env: { CI: 'true' } })
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toMatch(/^ {2}model engine, dedicated hosts: one agent each, 100 Mbit\/s uplinks \(the default for a file written for the model engine\); simulated .*; seed 5$/m)
    expect(again.stdout).toMatch(/^PASSED \(model engine\) {2}report: /m)
    expect(await figures(b)).toEqual(await figures(a))

    // Another seed, another mesh.
    const c = join(dir(), 'c')
    expect((await runCli(['sim', file, '--out', c, '--seed', '6'], { env: { CI: 'true' } })).code).toBe(0)
    expect((await figures(c)).publishes).not.toEqual((await figures(a)).publishes)
  })

  it('runs a live scenario file with --engine model, on a shared host by default, or as --host says', async () => {
    const out = join(dir(), 'smoke')
    const r = await runCli(['sim', 'smoke', '--engine', 'model', '--nodes', '10', '--out', out, '--json', '--deadline-scale', '2'], { env: { CI: 'true' } })
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout) as SimResult
    expect(result.engine).toMatchObject({ kind: 'model', host: { kind: 'shared', cores: availableParallelism() } })
    expect(result.scenario).toMatchObject({ name: 'smoke', engine: 'model', nodes: 10 })
    expect(result.passed).toBe(true)
    expect(await readFile(join(out, 'report.html'), 'utf8')).toContain(`every agent sharing ${availableParallelism()} core`)

    const three = await runCli(['sim', 'smoke', '--engine', 'model', '--nodes', '10', '--host', 'shared:3', '--out', join(dir(), 'three'), '--json'], { env: { CI: 'true' } })
    expect(three.code, three.stderr).toBe(0)
    // A live file: the shared-host costs fitted to the live engine.
    expect((JSON.parse(three.stdout) as SimResult).engine.host).toEqual({ kind: 'shared', cores: 3, fit: 'live' })

    const dedicated = await runCli(['sim', 'smoke', '--engine', 'model', '--nodes', '10', '--host', 'dedicated', '--out', join(dir(), 'dedicated'), '--json'], { env: { CI: 'true' } })
    expect(dedicated.code, dedicated.stderr).toBe(0)
    expect((JSON.parse(dedicated.stdout) as SimResult).engine.host).toEqual({ kind: 'dedicated' })
  })

  it('takes --announce-threshold, as the live engine does: a 1 MiB policy is fetched once per node, or gossiped whole with 0', async () => {
    const received = async (extra: string[], out: string): Promise<number> => {
      const r = await runCli(['sim', 'large-policy', '--engine', 'model', '--out', join(dir(), out), '--json', ...extra], { env: { CI: 'true' } })
      expect(r.code, r.stderr).toBe(0)
      return (JSON.parse(r.stdout) as SimResult).publishes[0]?.traffic?.receivedPerNode?.meanX ?? NaN
    }
    expect(await received([], 'default')).toBeLessThan(1.5)
    expect(await received(['--announce-threshold', '0'], 'whole')).toBeGreaterThan(3)
  })

  it('exits 1 when a check fails, and says which engine failed', async () => {
    const file = join(dir(), 'tight.yaml')
    await writeFile(file, modelScenario('1ms'))
    const r = await runCli(['sim', file, '--out', join(dir(), 'out')], { env: { CI: 'true' } })
    expect(r.code, r.stderr).toBe(1)
    expect(r.stdout).toMatch(/✗ 100% of targeted nodes applied every publish within 0.00 s: first \(base\/motd v1\): 0\/40 applied/)
    expect(r.stdout).toMatch(/^FAILED \(model engine\)/m)
    expect((await figures(join(dir(), 'out'))).passed).toBe(false)
  })

  it('refuses a bad --engine, and options for the other engine (exit 64)', async () => {
    const bad = await runCli(['sim', 'smoke', '--engine', 'modle'])
    expect(bad.code).toBe(64)
    expect(bad.stderr).toContain('--engine must be "live", "model" or "netns": got "modle"')

    const workers = await runCli(['sim', 'smoke', '--engine', 'model', '--workers', '2'])
    expect(workers.code).toBe(64)
    expect(workers.stderr).toContain('--workers is for the live engine, and this run uses the model engine (--engine model)')

    const settle = await runCli(['sim', 'scale-internet', '--settle', '0'])
    expect(settle.code).toBe(64)
    expect(settle.stderr).toContain('or add --engine live')

    const host = await runCli(['sim', 'smoke', '--host', 'shared'])
    expect(host.code).toBe(64)
    expect(host.stderr).toContain('--host is for the model engine')

    const hostValue = await runCli(['sim', 'smoke', '--engine', 'model', '--host', 'shared:0'])
    expect(hostValue.code).toBe(64)
    expect(hostValue.stderr).toContain('--host must be "dedicated", "shared" or "shared:CORES"')

    const big = await runCli(['sim', 'smoke', '--nodes', String(MAX_NODES + 1)])
    expect(big.code).toBe(64)
    expect(big.stderr).toContain(`--nodes ${MAX_NODES + 1}: ${MAX_NODES + 1} live agents do not fit one machine`)
    expect(big.stderr).toContain('add --engine model')
  })

  it('a scenario file may hold more nodes than the live engine runs', () => {
    const text = modelScenario().replace('count: 40', `count: ${MAX_NODES * 2}`)
    expect(parseScenario(text).scenario.nodes.count).toBe(MAX_NODES * 2)
  })
})
