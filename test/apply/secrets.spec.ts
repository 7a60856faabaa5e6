import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BACKUP_DIR, BACKUPS_PER_PATH, MAX_EXEC_OUTPUT_BYTES, formatReport, readBackupIndex, retirementPolicy, type CheckResult, type ResourceResult } from '../../src/apply/index.js'
import { planPath } from '../../src/apply/fs-plan.js'
import { policyOf, result, useSandbox } from './helpers.js'

// Values long and odd enough that finding one anywhere means it leaked.
const OLD = 'hunter2-Old-Zq9vX7pL'
const NEW = 'correct-horse-Nw4kR8sT'

const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o7777

/** Every file under `dir`, recursively, as [path, bytes]. */
async function everyFile (dir: string): Promise<Array<[string, Buffer]>> {
  const out: Array<[string, Buffer]> = []
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) {
      const p = join(e.parentPath, e.name)
      out.push([p, await readFile(p)])
    }
  }
  return out
}

/** The files under `dir` that hold `value` anywhere. */
async function filesHolding (dir: string, value: string): Promise<string[]> {
  return (await everyFile(dir)).filter(([, bytes]) => bytes.includes(value)).map(([p]) => p)
}

const passwordFile = (extra: Record<string, unknown> = {}): unknown => ({ id: 'pw', type: 'file', path: '/db.conf', content: 'user=app\npassword={{ secrets.db_password }}\n', ...extra })

describe('files rendered from a secret', () => {
  const sandbox = useSandbox()

  it('are written with the value, mode 0600 by default, and no report shows the value', async () => {
    const box = sandbox()
    const policy = policyOf([passwordFile()])
    const secrets = { db_password: OLD }

    const plan = await box.plan(policy, { secrets })
    expect(result(plan, 'pw')).toMatchObject({ action: 'create', status: 'ok', changes: [{ field: 'content', to: '(secret)' }, { field: 'mode', to: '0600' }] })
    expect(JSON.stringify(plan)).not.toContain(OLD)

    const seen: ResourceResult[] = []
    const applied = await box.apply(policy, { secrets, onResult: (r) => seen.push(r) })
    expect(result(applied, 'pw')).toMatchObject({ action: 'create', status: 'ok' })
    expect(await readFile(box.at('/db.conf'), 'utf8')).toBe(`user=app\npassword=${OLD}\n`)
    expect(await modeOf(box.at('/db.conf'))).toBe(0o600)
    for (const text of [JSON.stringify(applied), JSON.stringify(seen), formatReport(applied, { verbose: true }).join('\n')]) {
      expect(text).not.toContain(OLD)
      // Nor a hash of the content, which would let a short password be guessed.
      expect(text).not.toMatch(/sha256:/)
    }
  })

  it('keep the mode the policy names', async () => {
    const box = sandbox()
    await box.apply(policyOf([passwordFile({ mode: '0640' })]), { secrets: { db_password: OLD } })
    expect(await modeOf(box.at('/db.conf'))).toBe(0o640)
  })

  it('are made 0600 when they exist with another mode and the policy names none', async () => {
    const box = sandbox()
    const host = box.at('/db.conf')
    await writeFile(host, `user=app\npassword=${OLD}\n`)
    await chmod(host, 0o644)

    const plan = await box.plan(policyOf([passwordFile()]), { secrets: { db_password: OLD } })
    expect(result(plan, 'pw')).toMatchObject({ action: 'modify', changes: [{ field: 'mode', from: '0644', to: '0600' }] })
    await box.apply(policyOf([passwordFile()]), { secrets: { db_password: OLD } })
    expect(await modeOf(host)).toBe(0o600)
  })

  it('show a new value as "(secret changed)", never a diff, and keep no byte of the old one in backups', async () => {
    const box = sandbox()
    const policy = policyOf([passwordFile(), { id: 'plain', type: 'file', path: '/plain', content: 'version {{ vars.v }}\n' }], { vars: { v: 1 } })
    await box.apply(policy, { secrets: { db_password: OLD } })

    const next = policyOf(policy.resources, { vars: { v: 2 } })
    const plan = await box.plan(next, { secrets: { db_password: NEW } })
    const applied = await box.apply(next, { secrets: { db_password: NEW } })
    for (const report of [plan, applied]) {
      const pw = result(report, 'pw')
      expect(pw).toMatchObject({ action: 'modify', status: 'ok', changes: [{ field: 'content', from: '(secret)', to: '(secret changed)' }] })
      expect(pw.diff).toBeUndefined()
      // Only the secret file loses its diff.
      expect(result(report, 'plain').diff).toContain('+version 2')
      const text = [JSON.stringify(report), formatReport(report).join('\n')].join('\n')
      expect(text).not.toContain(OLD)
      expect(text).not.toContain(NEW)
    }
    expect(formatReport(applied).join('\n')).toMatch(/content: \(secret\) -> \(secret changed\)/)
    expect(await readFile(box.at('/db.conf'), 'utf8')).toBe(`user=app\npassword=${NEW}\n`)

    expect(await filesHolding(box.state, OLD)).toEqual([])
    expect(await filesHolding(box.state, NEW)).toEqual([])
    const index = await readBackupIndex(box.state)
    const pw = index.filter((e) => e.id === 'pw')
    expect(pw).toEqual([expect.objectContaining({ kind: 'file', reason: 'replace', secret: true, mode: '0600' })])
    expect(pw[0]?.sha256).toBeUndefined()
    // The plain file is still backed up with its content.
    expect(index.find((e) => e.id === 'plain')?.sha256).toMatch(/^[0-9a-f]{64}$/)
  })

  it('are not copied to backups when they are removed, as when their policy is retired', async () => {
    const box = sandbox()
    const policy = policyOf([passwordFile()])
    await box.apply(policy, { secrets: { db_password: OLD } })
    // A retiring node removes the file without the secrets: none are needed to delete it.
    const retired = await box.apply(retirementPolicy(policy))
    expect(result(retired, 'pw')).toMatchObject({ action: 'delete', status: 'ok' })
    expect(await filesHolding(box.state, OLD)).toEqual([])
    expect((await readBackupIndex(box.state)).filter((e) => e.id === 'pw')).toEqual([expect.objectContaining({ reason: 'delete', secret: true })])
  })

  it(`leave backups that compaction bounds like any other (${BACKUPS_PER_PATH} per path)`, async () => {
    const box = sandbox()
    const policy = policyOf([passwordFile()])
    for (let n = 0; n < BACKUPS_PER_PATH + 3; n++) await box.apply(policy, { secrets: { db_password: `${OLD}-${n}` } })
    const index = await readBackupIndex(box.state)
    expect(index).toHaveLength(BACKUPS_PER_PATH)
    expect(index.every((e) => e.secret === true && e.sha256 === undefined)).toBe(true)
    // No content file at all: only the index.
    expect(await readdir(join(box.state, BACKUP_DIR))).toEqual(['index.jsonl'])
    expect(await filesHolding(box.state, OLD)).toEqual([])
  })
})

describe('planPath for a secret file', () => {
  const ctx = { path: '/db.conf', enforceOwnership: false, self: { uid: 0, gid: 0 }, diffs: true }
  const before = Buffer.from(`password=${OLD}\n`)
  const after = Buffer.from(`password=${NEW}\n`)
  const current = { kind: 'file', mode: 0o600, uid: 0, gid: 0, size: before.length, content: before } as const

  it('gives no diff even when asked for diffs and the old content was read', () => {
    const plan = planPath({ kind: 'file', content: after, mode: 0o600, secret: true }, current, ctx)
    expect(plan.diff).toBeUndefined()
    expect(plan.changes).toEqual([{ field: 'content', from: '(secret)', to: '(secret changed)' }])
    expect(plan.ops).toMatchObject([{ op: 'write', mode: 0o600 }])
  })

  it('describes a plain file as before: hashes and a diff', () => {
    const plan = planPath({ kind: 'file', content: after, mode: 0o600 }, current, ctx)
    expect(plan.diff).toEqual({ before, after })
    expect(plan.changes[0]?.to).toMatch(/^sha256:/)
  })
})

describe('configs rendered from a secret', () => {
  const sandbox = useSandbox()
  const config = {
    id: 'app',
    type: 'config',
    path: '/app.json',
    format: 'json',
    data: { port: 5432, db: { user: 'app', password: '{{ secrets.db_password }}' } }
  }

  it('are written 0600 with the value, and a change shows "(secret changed)" with no diff and no backup of the old value', async () => {
    const box = sandbox()
    const policy = policyOf([config])
    const created = await box.apply(policy, { secrets: { db_password: OLD } })
    expect(JSON.parse(await readFile(box.at('/app.json'), 'utf8'))).toEqual({ port: 5432, db: { user: 'app', password: OLD } })
    expect(await modeOf(box.at('/app.json'))).toBe(0o600)
    expect(JSON.stringify(created)).not.toContain(OLD)

    const changed = await box.apply(policy, { secrets: { db_password: NEW } })
    expect(result(changed, 'app')).toMatchObject({ action: 'modify', changes: [{ field: 'content', from: '(secret)', to: '(secret changed)' }] })
    expect(result(changed, 'app').diff).toBeUndefined()
    expect(JSON.stringify(changed)).not.toContain(OLD)
    expect(JSON.stringify(changed)).not.toContain(NEW)
    expect(await filesHolding(box.state, OLD)).toEqual([])
  })

  it('without a secret keep their diff and their ordinary mode', async () => {
    const box = sandbox()
    await box.apply(policyOf([{ ...config, data: { port: 1 } }]))
    const changed = await box.apply(policyOf([{ ...config, data: { port: 2 } }]))
    expect(result(changed, 'app').diff).toContain('"port": 2')
    expect(await modeOf(box.at('/app.json'))).toBe(0o644)
  })
})

describe('commands and checks that see a secret', () => {
  const sandbox = useSandbox()
  const env = { PGPASSWORD: '{{ secrets.db_password }}' }

  it('report "(secret)" where an exec prints its env, in the report and in what onResult receives', async () => {
    const box = sandbox()
    const seen: ResourceResult[] = []
    const report = await box.apply(policyOf([
      { id: 'show', type: 'exec', command: 'echo "connecting with $PGPASSWORD"; echo "also $PGPASSWORD" >&2', env }
    ]), { secrets: { db_password: OLD }, onResult: (r) => seen.push(r) })
    const show = result(report, 'show')
    expect(show).toMatchObject({ action: 'run', status: 'ok' })
    expect(show.exec?.stdout).toBe('connecting with (secret)\n')
    expect(show.exec?.stderr).toBe('also (secret)\n')
    expect(seen.map((r) => r.exec?.stdout)).toEqual(['connecting with (secret)\n'])
    expect(JSON.stringify(report)).not.toContain(OLD)
  })

  it('redact a failing exec\'s error, made of its stderr, and its guard\'s output', async () => {
    const box = sandbox()
    const report = await box.apply(policyOf([
      { id: 'login', type: 'exec', command: 'echo "password authentication failed: $PGPASSWORD" >&2; exit 3', env },
      { id: 'guarded', type: 'exec', command: 'true', unless: 'echo "$PGPASSWORD"; kill -9 $$', env }
    ]), { secrets: { db_password: OLD } })
    const login = result(report, 'login')
    expect(login.status).toBe('failed')
    expect(login.error?.message).toContain('exited 3: password authentication failed: (secret)')
    const guarded = result(report, 'guarded')
    expect(guarded.status).toBe('failed')
    expect(guarded.exec?.stdout).toBe('(secret)\n')
    const text = [JSON.stringify(report), formatReport(report).join('\n')].join('\n')
    expect(text).not.toContain(OLD)
  })

  it('redact the end of a value that the output tail\'s bound cut in two', async () => {
    const box = sandbox()
    const keep = 9 // characters of the value left at the front of the tail
    const report = await box.apply(policyOf([
      { id: 'loud', type: 'exec', command: `printf '%s' "$PGPASSWORD"; head -c ${MAX_EXEC_OUTPUT_BYTES - keep} /dev/zero | tr '\\0' x`, env }
    ]), { secrets: { db_password: OLD } })
    const stdout = result(report, 'loud').exec?.stdout ?? ''
    expect(stdout.startsWith('(secret)xxx')).toBe(true)
    expect(stdout).not.toContain(OLD.slice(-keep))
  })

  it('redact a health check\'s output and message, in the report and in what onCheck receives', async () => {
    const box = sandbox()
    const seen: CheckResult[] = []
    const report = await box.apply(policyOf([{ id: 'f', type: 'file', path: '/f', content: 'x' }], {
      checks: [{ id: 'db', type: 'exec', command: 'echo "could not log in as app/$PGPASSWORD"; exit 1', env }]
    }), { secrets: { db_password: OLD }, onCheck: (c) => seen.push(c) })
    expect(report.health).toBe('unhealthy')
    expect(report.checks?.[0]?.output).toBe('could not log in as app/(secret)')
    expect(seen[0]?.output).toBe('could not log in as app/(secret)')
    expect(JSON.stringify(report)).not.toContain(OLD)
  })

  it('leave values shorter than four characters alone, and an apply without secrets untouched', async () => {
    const box = sandbox()
    const report = await box.apply(policyOf([{ id: 'e', type: 'exec', command: 'echo "$PIN 1234"', env: { PIN: '{{ secrets.pin }}' } }]), { secrets: { pin: '42' } })
    expect(result(report, 'e').exec?.stdout).toBe('42 1234\n')
  })

  it('fail, naming the secret and not a value, when the apply was given none', async () => {
    const box = sandbox()
    const report = await box.apply(policyOf([passwordFile(), { id: 'e', type: 'exec', command: 'true', env }]))
    expect(result(report, 'pw')).toMatchObject({ status: 'failed', error: { name: 'TemplateError' } })
    expect(result(report, 'pw').error?.message).toContain('secrets.db_password')
    expect(result(report, 'e').status).toBe('failed')
  })
})
