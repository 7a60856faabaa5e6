import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'
import { rolloutRecordOf } from '../helpers/rollout.js'

// A rollout record file (kind: rollout) through the file commands: validate and sign read it
// like any policy file; apply and plan have nothing to apply.

const record = rolloutRecordOf()

beforeAll(async () => {
  await runCli(['--version']).then((r) => expect(r.code, r.stderr).toBe(0))
})

describe('a rollout record file', () => {
  const dir = useTempDir()

  it('validates (text and --json), and a record with the wrong name is refused with the field named', async () => {
    const good = join(dir(), 'rollout.json')
    await writeFile(good, JSON.stringify(record))
    const bad = join(dir(), 'bad.json')
    await writeFile(bad, JSON.stringify({ ...record, name: 'rollout/web/other' }))
    const r = await runCli(['validate', good])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`ok    ${good}: rollout "rollout/web/nginx"\n`)
    const j = await runCli(['validate', '--json', good, bad])
    expect(j.code).toBe(1)
    expect(JSON.parse(j.stdout)).toEqual([
      { file: good, valid: true, name: 'rollout/web/nginx', kind: 'rollout', resources: 0, problems: [] },
      { file: bad, valid: false, problems: [{ path: 'name', line: 1, column: 26, message: expect.stringContaining('expected "rollout/web/nginx", the rollout of the policy it names') }] }
    ])
  })

  it('signs as a version, and the envelope verifies for the key that signed it', async () => {
    const file = join(dir(), 'rollout.yaml')
    await writeFile(file, JSON.stringify(record))
    const key = join(dir(), 'admin.key')
    const k = await runCli(['keygen', '--out', key])
    expect(k.code, k.stderr).toBe(0)
    const out = join(dir(), 'rollout.env')
    const s = await runCli(['sign', file, '--key', key, '--version', '3', '--out', out])
    expect(s.code, s.stderr).toBe(0)
    expect(s.stderr).toMatch(/^signed rollout\/web\/nginx v3 /)
    const v = await runCli(['verify', out, '--trust', k.stdout.trim(), '--json'])
    expect(v.code, v.stderr).toBe(0)
    expect(JSON.parse(v.stdout)).toMatchObject({ valid: true, name: 'rollout/web/nginx', version: 3 })
  })

  it('has nothing to apply or plan, and says what it is', async () => {
    const file = join(dir(), 'rollout.json')
    await writeFile(file, JSON.stringify(record))
    for (const cmd of ['apply', 'plan']) {
      const r = await runCli([cmd, file, '--root', join(dir(), 'root'), '--state', join(dir(), 'state')])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`${file}: a rollout record only tells nodes which version of "web/nginx" to enforce; there is nothing to apply`)
    }
  })
})
