import { describe, expect, it } from 'vitest'
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli, type CliResult } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'
import type { ApplyReport } from '../../src/apply/index.js'

const OLD = 'hunter2-Old-Zq9vX7pL'
const NEW = 'correct-horse-Nw4kR8sT'

const POLICY = `
name: db/credentials
resources:
  - id: pw
    type: file
    path: /db.conf
    content: "user=app\\npassword={{ secrets.db_password }}\\n"
  - id: shared
    type: file
    path: /shared.conf
    mode: "0640"
    content: "password={{ secrets.db_password }}\\n"
  - id: app
    type: config
    path: /app.json
    format: json
    data: { db: { password: "{{ secrets.db_password }}" } }
  - id: login
    type: exec
    command: 'echo "logging in with $PGPASSWORD"'
    env: { PGPASSWORD: "{{ secrets.db_password }}" }
`

const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o7777

/** Every file under `dir` that holds `value` anywhere. */
async function filesHolding (dir: string, value: string): Promise<string[]> {
  const found: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const p = join(e.parentPath, e.name)
    if ((await readFile(p)).includes(value)) found.push(p)
  }
  return found
}

const output = (r: CliResult): string => r.stdout + r.stderr

describe('grapevine plan / apply --secrets', () => {
  const dir = useTempDir('grapevine-cli-secrets-')
  const setup = async (): Promise<{ file: string, root: string, state: string, args: string[], secretsFile: (value: string) => Promise<string> }> => {
    const file = join(dir(), 'policy.yaml')
    const root = join(dir(), 'root')
    const state = join(dir(), 'state')
    await writeFile(file, POLICY)
    await mkdir(root, { recursive: true })
    const secretsFile = async (value: string): Promise<string> => {
      const p = join(dir(), 'secrets.yaml')
      await writeFile(p, `db_password: ${value}\nunused: not-for-this-policy\n`, { mode: 0o600 })
      return p
    }
    return { file, root, state, args: ['--root', root, '--state', state, '--name', 'db1'], secretsFile }
  }

  it('writes the value only into the managed files, 0600 unless the policy says, and never prints it', async () => {
    const { file, root, state, args, secretsFile } = await setup()
    const secrets = await secretsFile(OLD)

    const plan = await runCli(['plan', file, ...args, '--secrets', secrets])
    expect(plan.stderr).toBe('')
    expect(plan.code).toBe(2)
    expect(plan.stdout).toMatch(/content: \(secret\)/)
    const planJson = await runCli(['plan', file, ...args, '--secrets', secrets, '--json'])
    expect(planJson.code).toBe(2)

    const apply = await runCli(['apply', file, ...args, '--secrets', secrets])
    expect(apply.code).toBe(2)
    expect(apply.stdout).toMatch(/> ran +exec +login/)
    // The files are in place; the exec runs on every apply.
    const applyJson = await runCli(['apply', file, ...args, '--secrets', secrets, '--json', '-v'])
    expect(applyJson.code).toBe(2)
    expect((JSON.parse(applyJson.stdout) as ApplyReport).counts).toMatchObject({ changed: 1, unchanged: 3 })

    expect(await readFile(join(root, 'db.conf'), 'utf8')).toBe(`user=app\npassword=${OLD}\n`)
    expect(await modeOf(join(root, 'db.conf'))).toBe(0o600)
    expect(await modeOf(join(root, 'shared.conf'))).toBe(0o640)
    expect(JSON.parse(await readFile(join(root, 'app.json'), 'utf8'))).toEqual({ db: { password: OLD } })
    expect(await modeOf(join(root, 'app.json'))).toBe(0o600)
    for (const r of [plan, planJson, apply, applyJson]) expect(output(r)).not.toContain(OLD)
    expect(await filesHolding(state, OLD)).toEqual([])
    // The value is in the managed files and nowhere else under the root.
    expect((await filesHolding(root, OLD)).map((p) => p.slice(root.length)).sort()).toEqual(['/app.json', '/db.conf', '/shared.conf'])
  })

  it('shows an exec\'s output with "(secret)" in place of the value', async () => {
    const { file, args, secretsFile } = await setup()
    const apply = await runCli(['apply', file, ...args, '--secrets', await secretsFile(OLD), '--json'])
    expect(apply.code).toBe(2)
    const report = JSON.parse(apply.stdout) as ApplyReport
    expect(report.resources.find((r) => r.id === 'login')?.exec?.stdout).toBe('logging in with (secret)\n')
  })

  it('says "(secret changed)" for a new value, and keeps no byte of the old one in the state directory', async () => {
    const { file, root, state, args, secretsFile } = await setup()
    expect((await runCli(['apply', file, ...args, '--secrets', await secretsFile(OLD)])).code).toBe(2)

    const secrets = await secretsFile(NEW)
    const plan = await runCli(['plan', file, ...args, '--secrets', secrets])
    const apply = await runCli(['apply', file, ...args, '--secrets', secrets])
    const json = await runCli(['plan', file, ...args, '--secrets', secrets, '--json'])
    expect(plan.code).toBe(2)
    expect(apply.code).toBe(2)
    for (const r of [plan, apply]) {
      expect(r.stdout).toMatch(/db\.conf\n {6}content: \(secret\) -> \(secret changed\)/)
      expect(r.stdout).not.toMatch(/^ {6}[-+]password/m)
    }
    for (const r of [plan, apply, json]) {
      expect(output(r)).not.toContain(OLD)
      expect(output(r)).not.toContain(NEW)
    }
    expect(await readFile(join(root, 'db.conf'), 'utf8')).toBe(`user=app\npassword=${NEW}\n`)
    expect(await filesHolding(state, OLD)).toEqual([])
    expect(await filesHolding(state, NEW)).toEqual([])
  })

  it('reads the secrets from stdin with "-"', async () => {
    const { file, root, args } = await setup()
    const apply = await runCli(['apply', file, ...args, '--secrets', '-'], { input: `{"db_password": "${OLD}"}` })
    expect(apply.stderr).toBe('')
    expect(apply.code).toBe(2)
    expect(await readFile(join(root, 'db.conf'), 'utf8')).toBe(`user=app\npassword=${OLD}\n`)
    expect(output(apply)).not.toContain(OLD)
  })

  it.each(['plan', 'apply'])('%s without --secrets exits 1 naming the secret and the flag, and changes nothing', async (command) => {
    const { file, root, args } = await setup()
    const r = await runCli([command, file, ...args])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/refers to secret db_password: .*--secrets FILE/)
    expect(await readdir(root)).toEqual([])
  })

  it('exits 1 naming a secret the file lacks, 69 when the file cannot be read, and warns of a file others can read', async () => {
    const { file, root, args, secretsFile } = await setup()
    const lacking = join(dir(), 'lacking.yaml')
    await writeFile(lacking, 'other: value-here\n', { mode: 0o600 })
    const missing = await runCli(['apply', file, ...args, '--secrets', lacking])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/lacking\.yaml has no "db_password"/)

    const unreadable = await runCli(['apply', file, ...args, '--secrets', join(dir(), 'nowhere.yaml')])
    expect(unreadable.code).toBe(69)
    expect(await readdir(root)).toEqual([])

    const open = await secretsFile(OLD)
    await chmod(open, 0o644)
    const warned = await runCli(['apply', file, ...args, '--secrets', open])
    expect(warned.code).toBe(2)
    expect(warned.stderr).toMatch(/^warning: .*secrets\.yaml is readable by other users \(mode 0644\); chmod 600 it$/m)
    expect(output(warned)).not.toContain(OLD)
  })
})
