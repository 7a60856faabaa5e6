import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cliCommand, runCli, REPO_ROOT, type CliResult } from '../helpers/cli.js'
import { startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { writeSigningKey } from '../../src/envelope/index.js'
import type { Agent } from '../../src/node/agent.js'

let mesh: TestMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

const POLICY = `name: site/motd
resources:
  - { id: etc, type: directory, path: /etc }
  - { id: motd, type: file, path: /etc/motd, content: "hello {{ node.name }}\\n" }
`

/** Three agents in a chain, beaconing every second so the live ones never look stale; the admin key is the mesh's root. */
async function setup (): Promise<{ m: TestMesh, key: string, boot: string, dir: string }> {
  const m = await startMesh(3, { beaconInterval: 1000 })
  const key = join(m.dir, 'root.key')
  await writeSigningKey(key, m.root)
  await waitFor(() => m.agents[0]!.fleet.size === 3, 'presence beacons from all nodes')
  await writeFile(join(m.dir, 'p.yaml'), POLICY)
  return { m, key, boot: m.agents[0]!.multiaddrs[0]!, dir: m.dir }
}

/** Runs the CLI and sends it SIGINT once its standard output contains `when`. */
async function interruptWhen (args: string[], when: string): Promise<CliResult> {
  const [command, argv] = cliCommand('module', args)
  const child = spawn(command, argv, { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined }, timeout: 60_000 })
  let stdout = ''
  let stderr = ''
  let sent = false
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString('utf8')
    if (!sent && stdout.includes(when)) { sent = true; child.kill('SIGINT') }
  })
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString('utf8') })
  return await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => { resolve({ code, signal, stdout, stderr }) })
  })
}

describe('publish --wait tells the truth', () => {
  it('Ctrl-C prints what is known (applied, waiting) and exits 130', async () => {
    const { m, key, boot, dir } = await setup()
    mesh = m
    // --expect 10 of 3 nodes: the wait cannot end by itself.
    const r = await interruptWhen(['publish', join(dir, 'p.yaml'), '--key', key, '--bootstrap', boot, '--wait', '--expect', '10', '--timeout', '50'], 'published site/motd v1')
    expect(r.signal).toBe(null)
    expect(r.code).toBe(130)
    expect(r.stdout).toMatch(/site\/motd v1: \d\/\d reported — \d applied/)
    expect(r.stdout).toContain('interrupted')
  })

  it('does not wait for a stopped node: it is shown as stale, apart', async () => {
    const { m, key, boot, dir } = await setup()
    mesh = m
    const gone = m.agents[2] as Agent
    const goneId = gone.peerId.toString()
    await gone.stop()
    const silentFor = (): number => Date.now() - Date.parse(m.agents[0]!.fleet.list().find((n) => n.id === goneId)?.lastSeen ?? '')
    await waitFor(() => silentFor() > 5_000, 'node-2 silent for 5 s')
    const r = await runCli(['publish', join(dir, 'p.yaml'), '--key', key, '--bootstrap', boot, '--wait', '--stale-after', '5', '--timeout', '40'], { timeoutMs: 50_000 })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('2/2 reported — 2 applied')
    expect(r.stdout).toContain('1 stale, not waited for')
    expect(r.stdout).toMatch(/1 stale, not waited for \(not heard from in 5 s\): node-2/)
  })

  it('says a tombstone was retired on N nodes, and a trust policy is in force on N', async () => {
    const { m, key, boot, dir } = await setup()
    mesh = m
    expect((await runCli(['publish', join(dir, 'p.yaml'), '--key', key, '--bootstrap', boot, '--wait', '--timeout', '30'])).code).toBe(0)
    const retire = await runCli(['retire', 'site/motd', '--key', key, '--bootstrap', boot, '--wait', '--timeout', '30'])
    expect(retire.code).toBe(0)
    expect(retire.stdout).toContain('site/motd v2: 3/3 reported — retired on 3')
    expect(retire.stdout).not.toContain('applied')

    await writeFile(join(dir, 'trust.yaml'), 'kind: trust\nname: grapevine/trust\nadmins: []\n')
    const trust = await runCli(['publish', join(dir, 'trust.yaml'), '--key', key, '--bootstrap', boot, '--wait', '--timeout', '30'])
    expect(trust.stderr).toBe('')
    expect(trust.code).toBe(0)
    expect(trust.stdout).toContain('grapevine/trust v1: 3/3 reported — in force on 3, 0 refused it')
  })
})
