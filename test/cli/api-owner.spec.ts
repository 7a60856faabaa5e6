import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CLI_PATH, runCli } from '../helpers/cli.js'
import { startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { generateSigningKey, writeSigningKey } from '../../src/envelope/index.js'
import { startApi, type ApiServer } from '../../src/node/api.js'
import { meshWithApi } from '../helpers/mesh-api.js'
import { trustPolicy } from '../helpers/envelope.js'

// `grapevine publish|rollback|retire|status|fleet|history` against an agent's local API, as
// an operator and as an attacker would run them.

const rig = meshWithApi()

const POLICY = (name: string): string => `name: ${name}
resources:
  - id: motd
    type: file
    path: /motd
    content: "hello\\n"
`

/** Two agents; node 0 serves its API (socket and TCP); keys: the root, a web/ admin, a stranger. */
async function setup (): Promise<{ m: TestMesh, api: ApiServer, state: string, keys: Record<'root' | 'web' | 'stranger', string>, file: (name: string) => Promise<string> }> {
  const m = rig.mesh = await startMesh(2)
  const web = generateSigningKey()
  expect((await m.agents[0]!.publish(m.sign(trustPolicy([{ key: web.id, scopes: ['web/'] }]), 1))).outcome).toBe('accepted')
  await waitFor(() => m.agents[1]!.envelope('grapevine/trust') !== undefined, 'the trust policy on node 1')
  const keys = { root: join(m.dir, 'root.key'), web: join(m.dir, 'web.key'), stranger: join(m.dir, 'stranger.key') }
  await writeSigningKey(keys.root, m.root)
  await writeSigningKey(keys.web, web)
  await writeSigningKey(keys.stranger, generateSigningKey())
  const state = join(m.dir, 'node-0', 'state')
  const api = rig.api = await startApi(m.agents[0]!, { stateDir: state, tcp: { host: '127.0.0.1', port: 0 } })
  const file = async (name: string): Promise<string> => {
    const path = join(m.dir, `${name.replace('/', '-')}.yaml`)
    await writeFile(path, POLICY(name))
    return path
  }
  return { m, api, state, keys, file }
}

/** Whether user nobody can run the CLI from this checkout (CI may clone it where nobody cannot read). */
const nobodyCanRunCli = process.getuid?.() === 0 &&
  spawnSync(process.execPath, ['-e', `require('node:fs').accessSync(${JSON.stringify(CLI_PATH)}, require('node:fs').constants.R_OK)`], { uid: 65534, gid: 65534, cwd: '/' }).status === 0

describe('publish, rollback and retire through an agent that refuses the envelope', () => {
  it('exit 1 with the agent\'s reason, through --agent and through the default socket', async () => {
    const { m, api, state, keys, file } = await setup()
    const site = await file('web/site')

    const viaSocket = await runCli(['publish', site, '--key', keys.stranger, '--agent', `unix:${api.socket!}`])
    expect(viaSocket.code).toBe(1)
    expect(viaSocket.stdout).not.toContain('published')
    expect(viaSocket.stderr).toMatch(/refused web\/site v1 \(untrusted\)/)

    // No --agent, no --bootstrap: the socket in the state directory (--state, then $GRAPEVINE_STATE).
    const byState = await runCli(['publish', site, '--key', keys.stranger, '--state', state, '--json'])
    expect([byState.code, byState.stdout]).toEqual([1, ''])
    expect(byState.stderr).toContain('(untrusted)')
    // A retire is about a name the mesh holds (one it does not exits 65, issue 15): the root publishes db/main first.
    expect((await runCli(['publish', await file('db/main'), '--key', keys.root, '--state', state])).code).toBe(0)
    const byEnv = await runCli(['retire', 'db/main', '--key', keys.web], { env: { GRAPEVINE_STATE: state } })
    expect(byEnv.code).toBe(1)
    expect(byEnv.stderr).toContain('(out-of-scope)')

    // Over TCP, with the token the CLI reads from the state directory.
    const viaTcp = await runCli(['publish', site, '--key', keys.stranger, '--agent', api.url!, '--state', state])
    expect(viaTcp.code).toBe(1)
    expect(viaTcp.stderr).toContain('(untrusted)')

    // A trusted publish goes through, and a rollback signed by a stranger is refused.
    const ok = await runCli(['publish', site, '--key', keys.web, '--state', state, '--json'])
    expect(ok.code).toBe(0)
    expect(JSON.parse(ok.stdout)).toMatchObject({ name: 'web/site', version: 1 })
    // v1's content must differ from the head's, or the rollback would publish nothing (issue 15).
    await writeFile(site, POLICY('web/site').replace('hello', 'hello again'))
    expect((await runCli(['publish', site, '--key', keys.web, '--state', state])).code).toBe(0)
    const rollback = await runCli(['rollback', 'web/site', '--to', '1', '--key', keys.stranger, '--state', state])
    expect(rollback.code).toBe(1)
    expect(rollback.stderr).toContain('(untrusted)')
    expect(m.agents[0]!.envelope('web/site')?.version).toBe(2)
  })

  it('through --bootstrap, says why no peer confirmed it', async () => {
    const { m, keys, file } = await setup()
    const r = await runCli(['publish', await file('web/site'), '--key', keys.stranger, '--bootstrap', m.agents[1]!.multiaddrs[0]!])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/no peer took web\/site v1 signed by ed25519:\S+ \(\S+ holds no version(, \S+ holds no version)*\)/)
    expect(r.stderr).toContain('--trust roots')
  })
})

describe('status, fleet and history for the operator', () => {
  it('find the agent by its state directory, over the socket or TCP with the token', async () => {
    const { m, api, state } = await setup()
    for (const args of [['status', '--json'], ['fleet', '--json'], ['history', '--limit', '5']]) {
      const r = await runCli([...args, '--state', state])
      expect([r.code, r.stderr], args.join(' ')).toEqual([0, ''])
    }
    expect(JSON.parse((await runCli(['status', '--json'], { env: { GRAPEVINE_STATE: state } })).stdout)).toMatchObject({ node: { name: 'node-0' } })
    expect((await runCli(['status', '--agent', api.url!, '--state', state])).code).toBe(0)

    const noToken = await runCli(['status', '--agent', api.url!, '--state', join(m.dir, 'elsewhere')])
    expect(noToken.code).toBe(77)
    expect(noToken.stderr).toContain('refused access (HTTP 401)')
    expect(noToken.stderr).toContain(join(m.dir, 'elsewhere', 'api.token'))
    const noAgent = await runCli(['status', '--state', join(m.dir, 'elsewhere')])
    expect(noAgent.code).toBe(69)
    expect(noAgent.stderr).toContain('no such socket')
    expect((await runCli(['history', '--state', state, '--limit', '0'])).code).toBe(64)
  })

  it.runIf(nobodyCanRunCli)('keep another local user out: exit 77', async () => {
    const { m, state } = await setup()
    for (const d of [m.dir, join(m.dir, 'node-0'), state]) await chmod(d, 0o711)
    const r = spawnSync(process.execPath, [CLI_PATH, 'status', '--state', state], { uid: 65534, gid: 65534, cwd: '/', encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 })
    expect(r.status).toBe(77)
    expect(r.stderr).toContain('permission denied')
  })
})
