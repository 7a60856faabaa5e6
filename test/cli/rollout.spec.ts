import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cliCommand, runCli, REPO_ROOT, type CliResult } from '../helpers/cli.js'
import { startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { writeSigningKey } from '../../src/envelope/index.js'
import { stageOf } from '../../src/rollout/index.js'
import type { RolloutRecord } from '../../src/rollout/index.js'

// `grapevine publish --rollout` and `grapevine rollout …` as an operator runs them: real CLI
// processes against real agents; the publisher is SIGKILLed mid-rollout in one test.

let mesh: TestMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

const policy = (content: string, check = ''): string => `name: site/motd
resources:
  - { id: etc, type: directory, path: /etc }
  - { id: motd, type: file, path: /etc/motd, content: "${content}\\n" }
${check}`

const FAILING = `checks:
  - { id: web-up, type: exec, command: 'echo "503 Service Unavailable"; test -f "$GRAPEVINE_ROOT/never"' }
`

async function setup (n: number): Promise<{ m: TestMesh, key: string, boot: (i: number) => string }> {
  const m = mesh = await startMesh(n, { beaconInterval: 1000, topology: 'star' })
  const key = join(m.dir, 'root.key')
  await writeSigningKey(key, m.root)
  await waitFor(() => m.agents.every((a) => a.fleet.size === n), 'presence beacons from all nodes')
  await writeFile(join(m.dir, 'v1.yaml'), policy('v1'))
  await writeFile(join(m.dir, 'v2.yaml'), policy('v2'))
  await writeFile(join(m.dir, 'bad.yaml'), policy('bad', FAILING))
  const first = await runCli(['publish', join(m.dir, 'v1.yaml'), '--key', key, '--bootstrap', m.agents[0]!.multiaddrs[0]!, '--wait'])
  expect(first.code, first.stdout + first.stderr).toBe(0)
  return { m, key, boot: (i) => m.agents[i]!.multiaddrs[0]! }
}

const motd = async (m: TestMesh, i: number): Promise<string> => await readFile(join(m.dir, `node-${i}`, 'root', 'etc', 'motd'), 'utf8')

/** Runs the CLI and SIGKILLs it once its standard output contains `when`. */
async function killWhen (args: string[], when: string): Promise<CliResult> {
  const [command, argv] = cliCommand('module', args)
  const child = spawn(command, argv, { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined }, timeout: 60_000 })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString('utf8')
    if (stdout.includes(when)) child.kill('SIGKILL')
  })
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString('utf8') })
  return await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => { resolve({ code, signal, stdout, stderr }) })
  })
}

async function statusOf (boot: string): Promise<Array<RolloutRecord & { record: { version: number, signer: string }, stalled: boolean, current?: { members: number, applied: number } }>> {
  const r = await runCli(['rollout', 'status', '--json', '--bootstrap', boot])
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout)
}

describe('grapevine publish --rollout', () => {
  it('halts a bad policy at the canary, exits 9, lists the failure, and rolls the canary back', async () => {
    const { m, key, boot } = await setup(4)
    const r = await runCli(['publish', join(m.dir, 'bad.yaml'), '--key', key, '--bootstrap', boot(0), '--rollout', '1,50%,100%', '--auto-rollback', '--stage-timeout', '30s', '--wait'], { timeoutMs: 60_000 })
    expect(r.code, r.stdout + r.stderr).toBe(9)
    expect(r.stdout).toMatch(/published site\/motd v2 sha256:[0-9a-f]{12} staged \(mesh had v1; nodes keep v1 until their stage\)/)
    expect(r.stdout).toContain('rollout in 3 stages over 4 targeted nodes known: 1 (1) → 50% (2) → 100% (4)')
    expect(r.stdout).toMatch(/stage 1\/3 \(1\): 1 node — 1 applied, 0 healthy, 1 failed, 0 waiting; 3 held back/)
    expect(r.stdout).toMatch(/UNHEALTHY node-\d/)
    expect(r.stdout).toContain('check:web-up: echo "503 Service Unavailable"; test -f "$GRAPEVINE_ROOT/never": exited 1')
    expect(r.stdout).toMatch(/rollout of site\/motd v2 HALTED: stage 1\/3 \(1\): 1 of 1 nodes failed or unhealthy, 0 allowed: node-\d unhealthy; rolled back: its nodes returned to v1/)
    // Every node ends on v1: the three outside the canary never left it, the canary came back.
    for (let i = 0; i < 4; i++) await waitFor(async () => await motd(m, i) === 'v1\n', `node-${i} on v1`)
    const [status] = await statusOf(boot(2))
    expect(status).toEqual(expect.objectContaining({ policy: 'site/motd', state: 'halted', stage: 0, rolledBack: true }))
  })

  it('a publisher killed in stage 2 leaves the rollout where it stood; another admin peer resumes it to the end', async () => {
    const { m, key, boot } = await setup(4)
    const killed = await killWhen(['publish', join(m.dir, 'v2.yaml'), '--key', key, '--bootstrap', boot(0), '--rollout', '1,50%,100%', '--bake', '2s'], 'stage 2/3 (50%) started')
    expect(killed.signal).toBe('SIGKILL')
    const [before] = await statusOf(boot(3))
    expect(before).toEqual(expect.objectContaining({ state: 'running', stage: 1 }))
    // Nothing advances it while no one evaluates: after more than the bake, the same record.
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const [still] = await statusOf(boot(3))
    expect(still?.record.version).toBe(before?.record.version)
    // What an operator reads: where it stands, who signed it, and the stage's counts.
    const human = await runCli(['rollout', 'status', 'site/motd', '--bootstrap', boot(2)])
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toMatch(/^site\/motd v2: running, stage 2\/3 \(50%\) since .*; record v2 signed by ed25519:/m)
    expect(human.stdout).toContain('stages: 1 (1) → 50% (2) → 100% (4) of 4 targeted nodes')
    expect(human.stdout).toMatch(/stage 2\/3 \(50%\): 2 nodes — 2 applied, 2 healthy, 0 failed, 0 waiting(, baking \d+ s more)?; 2 held back/)
    const ids = m.agents.map((a) => a.peerId.toString())
    const last = ids.findIndex((id) => stageOf(before!.stages, id, 'site/motd', 2) === 2)
    expect(await motd(m, last)).toBe('v1\n')
    const resumed = await runCli(['rollout', 'resume', 'site/motd', '--key', key, '--bootstrap', boot(3), '--wait'], { timeoutMs: 60_000 })
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0)
    expect(resumed.stdout).toContain('resumed site/motd v2 at stage 2/3')
    expect(resumed.stdout).toContain('rollout of site/motd v2 done: every stage passed')
    for (let i = 0; i < 4; i++) await waitFor(async () => await motd(m, i) === 'v2\n', `node-${i} on v2`)
  })

  it('refuses bad rollout flags before anything is signed (exit 64), and names an unknown rollout (exit 65)', async () => {
    const { m, key, boot } = await setup(2)
    const cases: Array<[string[], RegExp]> = [
      [['--rollout', '5%,1'], /a node count cannot follow a percentage/],
      [['--rollout', '1,50%'], /the last stage must be 100%/],
      [['--bake', '10s'], /--bake only means something with --rollout/],
      [['--rollout', '1,100%', '--bake', 'soon'], /--bake expects a duration like 30s, 10m or 1h: got "soon"/],
      [['--rollout', '1,100%', '--max-failures', 'many'], /--max-failures "many"/]
    ]
    for (const [flags, message] of cases) {
      const r = await runCli(['publish', join(m.dir, 'v2.yaml'), '--key', key, '--bootstrap', boot(0), ...flags])
      expect(r.code, r.stderr).toBe(64)
      expect(r.stderr).toMatch(message)
    }
    expect(m.agents[0]!.envelope('site/motd')?.version).toBe(1)
    // A reason longer than a record keeps is refused before anything is signed, not a crash.
    const long = await runCli(['rollout', 'abort', 'site/motd', '--key', key, '--bootstrap', boot(1), '--reason', 'x'.repeat(501)])
    expect(long.code, long.stderr).toBe(64)
    expect(long.stderr).toMatch(/--reason: 1 to 500 characters/)
    const unknown = await runCli(['rollout', 'pause', 'site/none', '--key', key, '--bootstrap', boot(1)])
    expect(unknown.code).toBe(65)
    expect(unknown.stderr).toMatch(/the mesh holds no rollout of site\/none/)
  })
})
