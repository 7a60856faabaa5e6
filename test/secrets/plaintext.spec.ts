// The plaintext search (docs/secrets.md, "Where plaintext may and may not appear"): a mesh of
// real agents where a `db` policy carries a secret, then every byte under every node's state
// directory and sandbox root, every log line, every API answer, every receipt, and the
// publisher's, plan's, apply's, status's and history's output are searched for the value. It
// must be found in the recipients' managed files and nowhere else. The search is shown to catch
// a leak first, so it cannot pass by finding nothing anywhere.
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { runCli, type CliResult } from '../helpers/cli.js'
import { outcomeAt, startMesh, waitFor, type TestMesh } from '../node/fixtures.js'
import { trustPolicy } from '../helpers/envelope.js'
import { generateSigningKey, writeSigningKey, type SigningKey } from '../../src/envelope/index.js'
import { generateIdentity, peerIdOf, privateKeyToProtobuf } from '../../src/net/identity.js'
import { signAdmission } from '../../src/admission/index.js'
import { StateStore } from '../../src/store/index.js'
import { startApi, type ApiServer } from '../../src/node/api.js'
import type { Agent } from '../../src/node/agent.js'
import type { Policy } from '../../src/policy/index.js'
import type { Logger } from '../../src/node/logger.js'

const SECRET = 'Tr0ub4dor&3-grapevine-plaintext-canary'
const TOKEN = 'tok_7f3c9a1e5b2d4f6a8c0e1b3d5f7a9c1e'
/** The forms a leak could take: as written, JSON-escaped, base64 (an envelope's or a report's encoding). */
const FORMS = [SECRET, JSON.stringify(SECRET).slice(1, -1), Buffer.from(SECRET).toString('base64'), TOKEN]

let mesh: TestMesh | undefined
const apis: ApiServer[] = []
afterEach(async () => {
  for (const a of apis.splice(0)) await a.close()
  await mesh?.stop()
  mesh = undefined
})

/** Every log line an agent writes, at debug level, as pino would write it to stdout. */
function capturingLogger (lines: string[], name: string): Logger {
  return pino({ level: 'debug', base: { node: name } }, { write: (s: string) => { lines.push(s) } })
}

/** Files under `dir` (recursively) whose bytes hold any form of the secret. */
async function filesHolding (dir: string): Promise<string[]> {
  const found: string[] = []
  const walk = async (d: string): Promise<void> => {
    let entries
    try { entries = await readdir(d) } catch { return }
    for (const name of entries) {
      const p = join(d, name)
      const info = await lstat(p)
      if (info.isDirectory()) await walk(p)
      else if (info.isFile()) {
        const bytes = await readFile(p)
        if (FORMS.some((f) => bytes.includes(Buffer.from(f)))) found.push(p)
      }
    }
  }
  await walk(dir)
  return found
}

const holds = (text: string): boolean => FORMS.some((f) => text.includes(f))

describe('secrets: plaintext appears only in the recipients\' managed files', () => {
  it('not in state dirs, backups, logs, receipts, the API, or publish/plan/apply/status/history output; late joiners report sealed until reseal', async () => {
    mesh = await startMesh(0)
    const m = mesh
    const logs: string[] = []
    const enroller = generateSigningKey()
    const rootKey = join(m.dir, 'root.key')
    await writeSigningKey(rootKey, m.root)

    /** An agent whose identity is made first, so the enroller can admit it (or not) before it starts. */
    const agent = async (i: number, tags: Record<string, string>, admitted: boolean, bootstrapFrom: number[]): Promise<Agent> => {
      const key = await generateIdentity()
      const stateDir = join(m.dir, `node-${i}`, 'state')
      await (await StateStore.open(stateDir)).writeIdentity(privateKeyToProtobuf(key))
      const admission = admitted ? signAdmission({ peer: peerIdOf(key).toString(), name: `node-${i}`, tags, key: enroller as SigningKey, issuedAt: Date.now() }) : undefined
      return await m.add({ stateDir, tags, bootstrapFrom, logger: capturingLogger(logs, `node-${i}`), ...(admission !== undefined ? { admission } : {}) })
    }
    const db0 = await agent(0, { role: 'db' }, true, [])
    const web = await agent(1, { role: 'web' }, true, [0])
    // Claims role=db, but nobody admitted it: targeted, and never a recipient.
    const rogue = await agent(2, { role: 'db' }, false, [0])
    await db0.publish(m.sign({ ...trustPolicy([]), enrollers: [enroller.id] } as Policy, 1))
    await waitFor(() => m.agents.every((a) => a.status().trust.policyVersion === 1), 'the trust policy everywhere')
    // Publishers learn each node's encryption key from its signed reports.
    await waitFor(() => web.fleet.list().filter((n) => n.recipient !== undefined).length === 3, 'every node\'s key in the web node\'s fleet view', 30_000)

    for (const [i, a] of m.agents.entries()) {
      const api = await startApi(a, { stateDir: join(m.dir, `node-${i}`, 'state') })
      apis.push(api)
    }
    const via = (i: number): string[] => ['--agent', `unix:${apis[i]?.socket as string}`]

    const policyFile = join(m.dir, 'db.yaml')
    await writeFile(policyFile, [
      'name: db/app',
      'target: { tags: { role: db } }',
      'resources:',
      '  - { id: etc, type: directory, path: /etc }',
      '  - { id: dir, type: directory, path: /etc/app }',
      '  - { id: conf, type: file, path: /etc/app/db.conf, content: "user=app\\npassword={{ secrets.db_password }}\\n", requires: [dir] }',
      '  - { id: env, type: config, path: /etc/app/env.json, format: json, data: { token: "{{ secrets.api_token }}" }, requires: [dir] }',
      // A command that fails quoting its secret env: its output reaches receipts, status and history as (secret).
      '  - { id: show, type: exec, command: "echo token=$TOKEN; exit 3", env: { TOKEN: "{{ secrets.api_token }}" }, requires: [conf] }',
      ''
    ].join('\n'))
    const secretsFile = join(m.dir, 'secrets.yaml')
    await writeFile(secretsFile, `db_password: "${SECRET}"\napi_token: "${TOKEN}"\nunused: never-sealed-value\n`, { mode: 0o600 })

    const outputs: Array<[string, CliResult]> = []
    const cli = async (what: string, args: string[], input?: string): Promise<CliResult> => {
      const r = await runCli(args, { timeoutMs: 60_000, ...(input !== undefined ? { input } : {}) })
      outputs.push([what, r])
      return r
    }

    // Published through the web node, which relays the envelope but may not read it.
    const pub = await cli('publish', ['publish', policyFile, '--key', rootKey, ...via(1), '--secrets', secretsFile, '--wait', '--timeout', '30'])
    expect(pub.stdout).toMatch(/node-0/)
    // The rogue claimed role=db and was targeted: left out of the recipients, it reports sealed.
    // The failing exec makes it exit 4, which comes before 6 (sealed).
    expect(pub.stdout + pub.stderr).toMatch(/not admitted/)
    expect(pub.stdout).toMatch(/sealed/)
    expect(pub.code).toBe(4)
    const conf = join(m.dir, 'node-0', 'root', 'etc', 'app', 'db.conf')
    expect(await readFile(conf, 'utf8')).toBe(`user=app\npassword=${SECRET}\n`)
    expect(((await lstat(conf)).mode & 0o777)).toBe(0o600)
    await waitFor(() => rogue.status().policies.some((p) => p.name === 'db/app'), 'the rogue holding the envelope it cannot read')
    // It says so in its reports: a targeted node that is not a recipient reports `sealed`.
    await waitFor(() => outcomeAt(web, rogue, 'db/app') === 'sealed', 'the rogue reporting sealed', 30_000)

    // A late db node, admitted: it gets the sealed version by anti-entropy and reports sealed.
    const late = await agent(3, { role: 'db' }, true, [1])
    await waitFor(() => late.status().policies.some((p) => p.name === 'db/app'), 'the late node holding db/app')
    await waitFor(() => web.fleet.list().find((n) => n.id === late.peerId.toString())?.policies['db/app']?.outcome === 'sealed', 'the late node reporting sealed', 30_000)
    await waitFor(() => web.fleet.list().find((n) => n.id === late.peerId.toString())?.recipient !== undefined, 'the late node\'s key known')
    const lateConf = join(m.dir, 'node-3', 'root', 'etc', 'app', 'db.conf')
    await expect(lstat(lateConf)).rejects.toThrow(/ENOENT/)

    // reseal: the next version, sealed to today's fleet, secrets from stdin.
    const reseal = await cli('reseal', ['reseal', 'db/app', '--key', rootKey, ...via(1), '--secrets', '-', '--wait', '--timeout', '30'], `db_password: "${SECRET}"\napi_token: "${TOKEN}"\n`)
    expect(reseal.code).toBe(4)
    expect(reseal.stdout).toMatch(/sealed/) // the rogue is still targeted and still no recipient
    await waitFor(async () => await readFile(lateConf, 'utf8').then((t) => t.includes(SECRET), () => false), 'the late node applying the resealed version', 30_000)

    // A changed secret: the recipients' old files go nowhere (no backups), and output says only "(secret changed)".
    await writeFile(secretsFile, `db_password: "${SECRET}-v2"\napi_token: "${TOKEN}"\n`, { mode: 0o600 })
    const rotate = await cli('publish v3', ['publish', policyFile, '--key', rootKey, ...via(0), '--secrets', secretsFile, '--wait', '--timeout', '30', '--json'])
    expect(JSON.parse(rotate.stdout)).toMatchObject({ version: 3 })
    await waitFor(async () => (await readFile(conf, 'utf8')).includes(`${SECRET}-v2`), 'node-0 on the rotated secret')

    // Everything a user or a script reads from the agents.
    for (const i of [0, 1, 2, 3]) {
      await cli(`status ${i}`, ['status', ...via(i), '--json'])
      await cli(`status text ${i}`, ['status', ...via(i)])
      await cli(`history ${i}`, ['history', ...via(i), '--json'])
    }
    await cli('fleet', ['fleet', ...via(1), '--json', '--all'])
    // plan and apply of the policy file with the secrets, in a sandbox of their own: the output never shows them.
    const sandbox = join(m.dir, 'local-root')
    await mkdir(sandbox)
    const apply = await cli('apply', ['apply', policyFile, '--root', sandbox, '--state', join(m.dir, 'local-state'), '--tag', 'role=db', '--secrets', secretsFile])
    expect(apply.stdout).toMatch(/token=\(secret\)/)
    expect(apply.code).toBe(6) // changes, and the exec's failure
    await writeFile(secretsFile, `db_password: "${SECRET}-v3"\napi_token: "${TOKEN}"\n`, { mode: 0o600 })
    const plan = await cli('plan', ['plan', policyFile, '--root', sandbox, '--state', join(m.dir, 'local-state'), '--tag', 'role=db', '--secrets', secretsFile])
    expect(plan.stdout).toMatch(/\(secret changed\)/)
    await cli('plan --json', ['plan', policyFile, '--root', sandbox, '--state', join(m.dir, 'local-state'), '--tag', 'role=db', '--secrets', secretsFile, '--json'])

    // Every receipt and beacon any node holds, as the API serves the fleet view.
    const receipts = JSON.stringify(m.agents.map((a) => a.fleet.list()))
    expect(receipts).toMatch(/\(secret\)/) // the exec's output reached the receipts, redacted
    expect(holds(receipts)).toBe(false)

    // The search catches a leak: a state file and a log line holding the value are found.
    const probe = join(m.dir, 'node-1', 'state', 'probe.txt')
    await writeFile(probe, `leak ${SECRET}`)
    expect(await filesHolding(join(m.dir, 'node-1'))).toEqual([probe])
    await writeFile(probe, 'nothing')
    const canary: string[] = []
    capturingLogger(canary, 'x').info({ value: SECRET }, 'leak')
    expect(canary.some(holds)).toBe(true)

    for (const [what, r] of outputs) {
      expect(holds(r.stdout), `${what} stdout`).toBe(false)
      expect(holds(r.stderr), `${what} stderr`).toBe(false)
    }
    // The logs did see the applies: the failing exec's words are there, redacted.
    expect(logs.some((l) => l.includes('db/app') && l.includes('token=(secret)'))).toBe(true)
    expect(logs.filter(holds)).toEqual([])
    // Files: the recipients' managed files and the local apply's, nothing else (state dirs, envelopes, archive, backups, history).
    const found = (await filesHolding(m.dir)).map((p) => p.slice(m.dir.length + 1)).sort()
    expect(found).toEqual([
      'local-root/etc/app/db.conf', 'local-root/etc/app/env.json',
      'node-0/root/etc/app/db.conf', 'node-0/root/etc/app/env.json',
      'node-3/root/etc/app/db.conf', 'node-3/root/etc/app/env.json',
      'secrets.yaml'
    ])
    // The ones that may not read it wrote nothing for it.
    await expect(lstat(join(m.dir, 'node-2', 'root', 'etc', 'app'))).rejects.toThrow(/ENOENT/)
    await expect(lstat(join(m.dir, 'node-1', 'root', 'etc', 'app'))).rejects.toThrow(/ENOENT/)
  }, 240_000)
})
