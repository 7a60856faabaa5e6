// Owner names resolve through the managed machine's account files: a sandbox root's own when it
// has them, and afresh when a name is missing (a user resource earlier in the apply made it).
import { mkdir, stat, writeFile, appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { UserDb } from '../../src/apply/owners.js'
import { applyPolicy } from '../../src/apply/index.js'
import { validatePolicyObject, type ConfigPolicy } from '../../src/policy/index.js'
import { useTempDir } from '../helpers/tmp.js'

const dir = useTempDir()

async function sandbox (): Promise<string> {
  const root = join(dir(), 'root')
  await mkdir(join(root, 'etc'), { recursive: true })
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
  await writeFile(join(root, 'etc', 'group'), 'root:x:0:\n')
  await writeFile(join(root, 'etc', 'shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o600 })
  await writeFile(join(root, 'etc', 'gshadow'), 'root:*::\n', { mode: 0o600 })
  return root
}

describe('UserDb', () => {
  it('reads the root\'s own account files, and this machine\'s when the root has none', async () => {
    const root = await sandbox()
    await appendFile(join(root, 'etc', 'passwd'), 'zzsandbox:x:4242:4243::/nonexistent:/bin/false\n')
    await appendFile(join(root, 'etc', 'group'), 'zzsandbox:x:4243:\n')
    expect(await new UserDb(root).uid('zzsandbox')).toBe(4242)
    expect(await new UserDb(root).gid('zzsandbox')).toBe(4243)
    await expect(new UserDb(join(dir(), 'bare')).uid('zzsandbox')).rejects.toThrow(/zzsandbox/)
    expect(await new UserDb(join(dir(), 'bare')).uid('root')).toBe(0)
  })

  it('looks again when a name is missing: it may have been made since the first read', async () => {
    const root = await sandbox()
    const db = new UserDb(root)
    expect(await db.uid('root')).toBe(0)
    await appendFile(join(root, 'etc', 'passwd'), 'zzlate:x:4300:4300::/nonexistent:/bin/false\n')
    expect(await db.uid('zzlate')).toBe(4300)
  })
})

describe('a user and a file it owns, in one apply (as root, as CI runs)', () => {
  it('creates the user in the sandbox, then writes the file owned by its uid', async () => {
    const root = await sandbox()
    const policy = validatePolicyObject({
      name: 'app/owned',
      resources: [
        { id: 'app-group', type: 'group', name: 'zzowner', gid: 4400 },
        { id: 'app-user', type: 'user', name: 'zzowner', uid: 4400, gid: 'zzowner' },
        // No requires: the implicit edges order the file after its owner and group.
        { id: 'conf', type: 'file', path: '/etc/zzowner.conf', content: 'x\n', owner: 'zzowner', group: 'zzowner' }
      ]
    }) as ConfigPolicy
    const report = await applyPolicy(policy, { root, stateDir: join(dir(), 'state'), facts: { id: 'n', name: 'n', tags: {} } })
    expect(report.resources.map((r) => [r.id, r.status])).toEqual([['app-group', 'ok'], ['app-user', 'ok'], ['conf', 'ok']])
    const info = await stat(join(root, 'etc', 'zzowner.conf'))
    expect([info.uid, info.gid]).toEqual([4400, 4400])
  })
})

describe('a plan of a policy that creates the owner first', () => {
  it('does not fail the file: the owner is planned, and ownership follows once it exists', async () => {
    const root = await sandbox()
    const policy = validatePolicyObject({
      name: 'app/owned',
      resources: [
        { id: 'app-user', type: 'user', name: 'zzplanned', uid: 4500 },
        { id: 'conf', type: 'file', path: '/etc/zzplanned.conf', content: 'x\n', owner: 'zzplanned' }
      ]
    }) as ConfigPolicy
    const plan = await applyPolicy(policy, { root, stateDir: join(dir(), 'state'), facts: { id: 'n', name: 'n', tags: {} }, dryRun: true, enforceOwnership: true })
    expect(plan.resources.map((r) => [r.id, r.status, r.action])).toEqual([['app-user', 'ok', 'create'], ['conf', 'ok', 'create']])
    expect(plan.resources[1]?.warnings).toEqual(['user zzplanned is created by this policy\'s user resource; ownership is set once it exists'])
    // An owner nobody creates still fails, as before.
    const other = validatePolicyObject({ name: 'app/other', resources: [{ id: 'conf', type: 'file', path: '/etc/zz.conf', content: 'x\n', owner: 'zznobody' }] }) as ConfigPolicy
    const bad = await applyPolicy(other, { root, stateDir: join(dir(), 'state'), facts: { id: 'n', name: 'n', tags: {} }, dryRun: true, enforceOwnership: true })
    expect(bad.resources[0]?.error?.name).toBe('UnknownUserError')
  })
})
