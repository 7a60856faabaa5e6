import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli, type CliResult } from '../helpers/cli.js'
import { waitFor } from '../node/fixtures.js'
import { agentProcesses, type RunningAgent } from '../helpers/agent-process.js'
import { readEncryptionKey } from '../../src/secrets/index.js'
import { agentJson, parseAgentAddress } from '../../src/client/agent-api.js'
import type { AgentStatus } from '../../src/node/agent.js'
import type { FleetNode } from '../../src/receipt/index.js'
import type { HistoryEntry } from '../../src/store/index.js'

// grapevine rekey as an operator runs it, against real agent processes: through the running
// agent's API (used at once, announced, sealed versions re-applied), and on the key file of a
// stopped one. Publishing goes through `publish --secrets --recipient PEERID=age1…`, the key
// read from `grapevine status`, as the README tells an admin to.

const FIRST = 'first-Secret-4b1d'
const SECOND = 'second-Secret-77aa'
const DB_POLICY = `name: db/postgres
target: { tags: { role: db } }
resources:
  - id: pw
    type: file
    path: /pg.pass
    content: "password={{ secrets.db_password }}\\n"
`

let dir: string | undefined
afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  dir = undefined
})

const spawnAgent = agentProcesses()

async function api<T> (agent: RunningAgent, path: string): Promise<T> {
  return await agentJson<T>(parseAgentAddress(agent.api), path)
}

function ok (r: CliResult): CliResult {
  expect([r.code, r.stderr]).toEqual([0, expect.any(String)])
  expect(r.stdout).not.toMatch(/secret-/i)
  return r
}

describe('grapevine rekey', () => {
  it('through a running agent: old and new keys printed, the new one announced at once, the version sealed to the old key reports sealed, one sealed to the new key applies; with the agent stopped, --state rotates the file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'grapevine-rekey-'))
    const d = dir
    ok(await runCli(['keygen', '--out', join(d, 'root.key')]))
    await writeFile(join(d, 'db.yaml'), DB_POLICY)
    await writeFile(join(d, 's1.yaml'), `db_password: ${FIRST}\n`, { mode: 0o600 })
    await writeFile(join(d, 's2.yaml'), `db_password: ${SECOND}\n`, { mode: 0o600 })
    const state = join(d, 'db/state')
    const agentArgs = ['--state', state, '--root', join(d, 'db/root'), '--trust', join(d, 'root.key.pub'), '--name', 'db1', '--tag', 'role=db']
    let a = await spawnAgent(agentArgs)

    // status prints the key an admin gives --recipient, and it is the one in the key file.
    const before = JSON.parse(ok(await runCli(['status', '--agent', a.api, '--json'])).stdout) as AgentStatus
    const first = before.node.recipient as string
    expect(first).toMatch(/^age1[02-9ac-hj-np-z]{58}$/)
    expect((await readEncryptionKey(state))?.recipient).toBe(first)
    expect(a.recipient).toBe(first)
    expect(ok(await runCli(['status', '--agent', a.api])).stdout).toContain(`  encryption key ${first}\n`)
    const node = before.node.id

    const publish = async (secrets: string, key: string): Promise<void> => {
      ok(await runCli(['publish', join(d, 'db.yaml'), '--key', join(d, 'root.key'), '--bootstrap', a.addr, '--secrets', secrets, '--recipient', `${node}=${key}`], { timeoutMs: 60_000 }))
    }
    const pass = async (): Promise<string> => await readFile(join(d, 'db/root/pg.pass'), 'utf8').catch(() => '')
    await publish(join(d, 's1.yaml'), first)
    await waitFor(async () => await pass() === `password=${FIRST}\n`, 'v1 applied with its secret')

    const rekeyed = ok(await runCli(['rekey', '--agent', a.api]))
    const second = (await readEncryptionKey(state))?.recipient as string
    expect(second).not.toBe(first)
    expect(rekeyed.stdout).toContain(`  old key ${first}\n`)
    expect(rekeyed.stdout).toContain(`  new key ${second}\n`)
    expect(rekeyed.stdout).toContain('by the agent at unix:')

    // At once: status, the agent's own signed reports (its fleet view), and v1 re-applied → sealed.
    const policyOf = async (): Promise<AgentStatus['policies'][number] | undefined> => (await api<AgentStatus>(a, '/status')).policies.find((p) => p.name === 'db/postgres')
    expect((await api<AgentStatus>(a, '/status')).node.recipient).toBe(second)
    await waitFor(async () => (await policyOf())?.sealed !== undefined, 'v1 reported sealed after the rekey')
    expect((await policyOf())?.sealed).toMatch(/^not a recipient: sealed to this node's earlier key/)
    const self = async (): Promise<FleetNode | undefined> => (await api<FleetNode[]>(a, '/fleet')).find((n) => n.id === node)
    await waitFor(async () => (await self())?.policies['db/postgres']?.outcome === 'sealed', 'the sealed receipt in the fleet view')
    expect((await self())?.recipient).toBe(second)
    const status = ok(await runCli(['status', '--agent', a.api])).stdout
    expect(status).toContain('sealed v1')
    expect(status).toContain('db/postgres v1 sealed: not a recipient: sealed to this node\'s earlier key')
    const history = await api<HistoryEntry[]>(a, '/history')
    expect(history.filter((h) => h.event === 'sealed').map((h) => h.version)).toEqual([1])
    expect(ok(await runCli(['history', '--agent', a.api])).stdout).toMatch(/sealed +db\/postgres v1 +not applied: not a recipient: sealed to this node.s earlier key/)
    // The file v1 wrote stays; the agent wrote nothing new for the policy.
    expect(await pass()).toBe(`password=${FIRST}\n`)

    // A version sealed to the new key applies.
    await publish(join(d, 's2.yaml'), second)
    await waitFor(async () => await pass() === `password=${SECOND}\n`, 'v2 applied with its secret')
    await waitFor(async () => (await policyOf())?.sealed === undefined, 'no longer sealed')

    // Stopped: --state rotates the key file; the agent starts with it, and v2 (sealed to the key before) is sealed.
    a.child.kill('SIGTERM')
    expect(await a.exited).toBe(0)
    const offline = ok(await runCli(['rekey', '--state', state, '--json']))
    const third = (await readEncryptionKey(state))?.recipient as string
    expect(JSON.parse(offline.stdout)).toEqual({ previous: second, recipient: third, via: 'file', where: state })
    a = await spawnAgent(agentArgs)
    expect((await api<AgentStatus>(a, '/status')).node.recipient).toBe(third)
    await waitFor(async () => (await policyOf())?.sealed !== undefined, 'v2 sealed after the offline rekey')
    expect(await pass()).toBe(`password=${SECOND}\n`)
  }, 120_000)

  it('exits 69 when no agent answers and there is no state directory, when the named agent does not answer, and when an agent without its API holds the state directory', async () => {
    dir = await mkdtemp(join(tmpdir(), 'grapevine-rekey-'))
    const d = dir
    const none = await runCli(['rekey', '--state', join(d, 'missing')])
    expect(none.code).toBe(69)
    expect(none.stderr).toContain(`no agent answers, and there is no state directory ${join(d, 'missing')}`)

    const named = await runCli(['rekey', '--agent', `unix:${join(d, 'nothing.sock')}`])
    expect(named.code).toBe(69)
    expect(named.stderr).toContain('no agent answers at unix:')

    ok(await runCli(['keygen', '--out', join(d, 'root.key')]))
    const state = join(d, 'state')
    await spawnAgent(['--state', state, '--root', join(d, 'root'), '--trust', join(d, 'root.key.pub'), '--no-api'])
    const key = (await readEncryptionKey(state))?.recipient
    const held = await runCli(['rekey', '--state', state])
    expect(held.code).toBe(69)
    expect(held.stderr).toMatch(/an agent \(pid \d+\) runs on .*, but its API does not answer/)
    // Nothing changed under the running agent.
    expect((await readEncryptionKey(state))?.recipient).toBe(key)
  }, 60_000)
})
