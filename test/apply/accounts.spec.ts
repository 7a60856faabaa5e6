import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { formatReport, type ApplyReport } from '../../src/apply/index.js'
import { groupOutcome, shadowTools, userOutcome, type ToolCall, type ToolRunner } from '../../src/apply/accounts/index.js'
import type { GroupResource, UserResource } from '../../src/policy/index.js'
import { contextFor, policyOf, result, useSandbox, type Sandbox } from './helpers.js'

// Real shadow tools (useradd --root …) against sandbox roots holding their own account files.
// They chroot, so this runs as root, as CI does.

const LOGIN_DEFS = [
  'UID_MIN 1000', 'UID_MAX 60000', 'SYS_UID_MIN 100', 'SYS_UID_MAX 999',
  'GID_MIN 1000', 'GID_MAX 60000', 'SYS_GID_MIN 100', 'SYS_GID_MAX 999',
  'USERGROUPS_ENAB yes', 'ENCRYPT_METHOD SHA512', ''
].join('\n')

/** A sandbox root with Debian-like account files: root, users (100), www-data (33). */
async function accountsRoot (box: Sandbox): Promise<void> {
  await mkdir(box.at('/etc'), { recursive: true })
  await mkdir(box.at('/home'))
  await writeFile(box.at('/etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n')
  await writeFile(box.at('/etc/group'), 'root:x:0:\nwww-data:x:33:\nusers:x:100:\n')
  await writeFile(box.at('/etc/shadow'), 'root:*:19000:0:99999:7:::\nwww-data:*:19000:0:99999:7:::\n', { mode: 0o640 })
  await writeFile(box.at('/etc/gshadow'), 'root:*::\nwww-data:*::\nusers:*::\n', { mode: 0o640 })
  await writeFile(box.at('/etc/login.defs'), LOGIN_DEFS)
}

const lineOf = async (box: Sandbox, file: string, name: string): Promise<string | undefined> =>
  (await readFile(box.at(`/etc/${file}`), 'utf8')).split('\n').find((l) => l.startsWith(`${name}:`))

/** Every file under the root's /etc with its inode, size, mtime and ctime: any write shows. */
async function etcState (box: Sandbox): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const name of (await readdir(box.at('/etc'))).sort()) {
    const s = await stat(box.at(`/etc/${name}`), { bigint: true })
    out[name] = `${s.ino}/${s.size}/${s.mtimeNs}/${s.ctimeNs}`
  }
  return out
}

/** The root's shadow tools, counting each call: "no command at all" is then a number. */
function counting (root: string, type: 'user' | 'group', name: string): { tools: ToolRunner, calls: ToolCall[] } {
  const real = shadowTools(root, type, name)
  const calls: ToolCall[] = []
  return { calls, tools: async (call, signal) => { calls.push(call); await real(call, signal) } }
}


const failure = (report: ApplyReport, id: string): { name: string, message: string } => {
  const r = result(report, id)
  expect(r.status).toBe('failed')
  return r.error as { name: string, message: string }
}

// Hashes as mkpasswd writes them (of throwaway passwords).
const HASH_A = '$6$Zq9vX7pLsalt$Vd0O6y6m7CZbXg3k2l1bJqjQhM4Y5oGk1nR2s3t4u5v6w7x8y9z0A1B2C3D4E5F6G7H8I9J0K1L2M3N4O5P6Q7'
const HASH_B = '$y$j9T$Nw4kR8sTsaltsalt$Qm3pW9xY2zA5bC8dE1fG4hJ7kL0nP3rS6tU9vX2yZ5a'

describe('group resources', () => {
  const sandbox = useSandbox()

  it('plan, create, leave alone, change the gid and delete, through groupadd, groupmod and groupdel', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const ops = { id: 'ops', type: 'group', name: 'ops', gid: 1500 }

    const before = await etcState(box)
    const plan = await box.plan(policyOf([ops]))
    expect(result(plan, 'ops')).toMatchObject({ name: 'ops', action: 'create', status: 'ok', changes: [{ field: 'gid', to: '1500' }] })
    expect(await etcState(box)).toEqual(before)

    expect(result(await box.apply(policyOf([ops])), 'ops')).toMatchObject({ action: 'create', status: 'ok' })
    expect(await lineOf(box, 'group', 'ops')).toBe('ops:x:1500:')
    expect(await lineOf(box, 'gshadow', 'ops')).toBe('ops:!::')

    const created = await etcState(box)
    const again = await box.apply(policyOf([ops]))
    expect(result(again, 'ops')).toMatchObject({ action: 'none', status: 'ok' })
    expect(result(again, 'ops').changes).toBeUndefined()
    expect(await etcState(box)).toEqual(created)

    const moved = await box.apply(policyOf([{ ...ops, gid: 1600 }]))
    expect(result(moved, 'ops')).toMatchObject({ action: 'modify', status: 'ok', changes: [{ field: 'gid', from: '1500', to: '1600' }] })
    expect(await lineOf(box, 'group', 'ops')).toBe('ops:x:1600:')

    const gone = await box.apply(policyOf([{ ...ops, ensure: 'absent' }]))
    expect(result(gone, 'ops')).toMatchObject({ action: 'delete', status: 'ok', changes: [{ field: 'ensure', from: 'present', to: 'absent' }] })
    expect(await lineOf(box, 'group', 'ops')).toBeUndefined()
    expect(result(await box.apply(policyOf([{ ...ops, ensure: 'absent' }])), 'ops').action).toBe('none')
  })

  it('makes a system group from the system range', async () => {
    const box = sandbox()
    await accountsRoot(box)
    await box.apply(policyOf([{ id: 'g', type: 'group', name: 'daemonish', system: true }]))
    const gid = Number((await lineOf(box, 'group', 'daemonish'))?.split(':')[2])
    expect(gid).toBeGreaterThanOrEqual(100)
    expect(gid).toBeLessThanOrEqual(999)
  })

  it('runs no command when the group is as the policy says (a counting runner)', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const r = policyOf([{ id: 'g', type: 'group', name: 'users', gid: 100 }]).resources[0] as GroupResource
    const { tools, calls } = counting(box.root, 'group', 'users')
    expect(await groupOutcome(r, contextFor(box.root), tools)).toEqual({ action: 'none', status: 'ok' })
    expect(calls).toEqual([])
  })

  it('sees a group that an exec made after the files were first read', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const report = await box.apply(policyOf([
      { id: 'first', type: 'group', name: 'users', gid: 100 },
      { id: 'mk', type: 'exec', command: ['/usr/sbin/groupadd', '--root', box.root, '-g', '1900', 'late'], requires: ['first'] },
      { id: 'late', type: 'group', name: 'late', gid: 1900, requires: ['mk'] }
    ]))
    expect(report.resources.map((r) => `${r.id}:${r.action}/${r.status}`)).toEqual(['first:none/ok', 'mk:run/ok', 'late:none/ok'])
  })

  it('fails with groupadd\'s exit code and the tail of its stderr', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const report = await box.apply(policyOf([{ id: 'g', type: 'group', name: 'dup', gid: 33 }]))
    const err = failure(report, 'g')
    expect(err.name).toBe('AccountCommandFailedError')
    expect(err.message).toBe("groupadd -g 33 dup: exit code 4: groupadd: GID '33' already exists")
  })
})

describe('user resources', () => {
  const sandbox = useSandbox()

  it('plan and create with every field: uid, primary group by name, groups, managed home, shell, comment', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const policy = policyOf([
      { id: 'app', type: 'user', name: 'app', uid: 990, gid: 'app-data', groups: ['www-data', 'ops'], home: '/srv/app', manage_home: true, shell: '/usr/sbin/nologin', system: true, comment: 'The app' },
      { id: 'data', type: 'group', name: 'app-data', gid: 1700 },
      { id: 'ops', type: 'group', name: 'ops' }
    ])
    await mkdir(box.at('/srv'))

    const before = await etcState(box)
    const plan = await box.plan(policy)
    expect(result(plan, 'app')).toMatchObject({
      name: 'app',
      action: 'create',
      status: 'ok',
      changes: [
        { field: 'system', to: 'yes' }, { field: 'uid', to: '990' }, { field: 'gid', to: 'app-data' }, { field: 'groups', to: 'ops, www-data' },
        { field: 'home', to: '/srv/app' }, { field: 'shell', to: '/usr/sbin/nologin' }, { field: 'comment', to: 'The app' }
      ]
    })
    expect(await etcState(box)).toEqual(before)

    const applied = await box.apply(policy)
    // The groups it names come first, though the policy lists them after it.
    expect(applied.resources.map((r) => `${r.id}:${r.action}/${r.status}`)).toEqual(['data:create/ok', 'ops:create/ok', 'app:create/ok'])
    expect(await lineOf(box, 'passwd', 'app')).toBe('app:x:990:1700:The app:/srv/app:/usr/sbin/nologin')
    expect(await lineOf(box, 'group', 'www-data')).toBe('www-data:x:33:app')
    expect(await lineOf(box, 'group', 'ops')).toMatch(/^ops:x:\d+:app$/)
    expect(await lineOf(box, 'shadow', 'app')).toMatch(/^app:!:/)
    const home = await stat(box.at('/srv/app'))
    expect(home.isDirectory()).toBe(true)
    expect([home.uid, home.gid]).toEqual([990, 1700])

    // A second apply changes nothing and writes no file.
    const created = await etcState(box)
    const again = await box.apply(policy)
    expect(again.resources.map((r) => `${r.id}:${r.action}/${r.status}`)).toEqual(['data:none/ok', 'ops:none/ok', 'app:none/ok'])
    expect(again.counts.changed).toBe(0)
    expect(await etcState(box)).toEqual(created)
  })

  it('runs no command when the user is as the policy says (a counting runner), and one usermod when it is not', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const fields = { id: 'u', type: 'user', name: 'app', uid: 1200, groups: ['www-data'], shell: '/bin/sh', home: '/home/app', comment: 'App' }
    await box.apply(policyOf([fields]))
    const r = policyOf([fields]).resources[0] as UserResource

    const idle = counting(box.root, 'user', 'app')
    expect(await userOutcome(r, contextFor(box.root), idle.tools)).toEqual({ action: 'none', status: 'ok' })
    expect(idle.calls).toEqual([])

    const changed = counting(box.root, 'user', 'app')
    const next = policyOf([{ ...fields, shell: '/bin/bash', comment: 'Application' }]).resources[0] as UserResource
    expect(await userOutcome(next, contextFor(box.root), changed.tools)).toMatchObject({ action: 'modify', status: 'ok' })
    expect(changed.calls.map((c) => [c.tool, ...c.args])).toEqual([['usermod', '-s', '/bin/bash', '-c', 'Application', 'app']])
  })

  it('reads the files again after the tools ran and fails when they still differ', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const r = policyOf([{ id: 'u', type: 'user', name: 'app', shell: '/bin/sh' }]).resources[0] as UserResource
    // A runner that reports success and changes nothing, as a tool that lies would.
    await expect(userOutcome(r, contextFor(box.root), async () => {})).rejects.toMatchObject({ name: 'VerifyFailedError', message: 'user app: still differs after applying (shell)' })
  })

  it('stops a tool with the apply\'s abort signal', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const r = policyOf([{ id: 'u', type: 'user', name: 'app' }]).resources[0] as UserResource
    await expect(userOutcome(r, contextFor(box.root, { signal: AbortSignal.abort() }))).rejects.toMatchObject({ name: 'AccountCommandFailedError', message: 'useradd -M app: stopped: the apply was aborted' })
    expect(await lineOf(box, 'passwd', 'app')).toBeUndefined()
  })

  it('modifies uid, shell and comment, from → to', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const fields = { id: 'u', type: 'user', name: 'app', uid: 1200, shell: '/bin/sh', comment: 'App' }
    await box.apply(policyOf([fields]))
    const next = policyOf([{ ...fields, uid: 1300, shell: '/bin/bash', comment: 'Application' }])

    const before = await etcState(box)
    const plan = await box.plan(next)
    expect(result(plan, 'u')).toMatchObject({ action: 'modify', changes: [{ field: 'uid', from: '1200', to: '1300' }, { field: 'shell', from: '/bin/sh', to: '/bin/bash' }, { field: 'comment', from: 'App', to: 'Application' }] })
    expect(formatReport(plan).join('\n')).toContain('uid: 1200 -> 1300')
    expect(await etcState(box)).toEqual(before)

    expect(result(await box.apply(next), 'u')).toMatchObject({ action: 'modify', status: 'ok' })
    expect(await lineOf(box, 'passwd', 'app')).toBe('app:x:1300:1200:Application:/home/app:/bin/bash')
    expect(result(await box.apply(next), 'u').action).toBe('none')
  })

  it('adds groups (additive) and keeps the others; exact removes those the policy does not name', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const groups = [{ id: 'g1', type: 'group', name: 'ops' }, { id: 'g2', type: 'group', name: 'dev' }]
    await box.apply(policyOf([...groups, { id: 'u', type: 'user', name: 'app', groups: ['ops'] }]))
    expect(await lineOf(box, 'group', 'ops')).toMatch(/:app$/)

    const additive = await box.apply(policyOf([...groups, { id: 'u', type: 'user', name: 'app', groups: ['dev'] }]))
    expect(result(additive, 'u')).toMatchObject({ action: 'modify', changes: [{ field: 'groups', from: 'ops', to: 'dev, ops' }] })
    expect(await lineOf(box, 'group', 'ops')).toMatch(/:app$/)
    expect(await lineOf(box, 'group', 'dev')).toMatch(/:app$/)
    expect(await lineOf(box, 'gshadow', 'dev')).toMatch(/:app$/)

    const exact = await box.apply(policyOf([...groups, { id: 'u', type: 'user', name: 'app', groups: ['dev', 'www-data'], membership: 'exact' }]))
    expect(result(exact, 'u')).toMatchObject({ action: 'modify', changes: [{ field: 'groups', from: 'dev, ops', to: 'dev, www-data' }] })
    expect(await lineOf(box, 'group', 'ops')).toMatch(/:$/)
    expect(await lineOf(box, 'gshadow', 'ops')).toMatch(/:$/)
    expect(await lineOf(box, 'group', 'dev')).toMatch(/:app$/)
    expect(await lineOf(box, 'group', 'www-data')).toBe('www-data:x:33:app')

    const none = await box.apply(policyOf([...groups, { id: 'u', type: 'user', name: 'app', groups: [], membership: 'exact' }]))
    expect(result(none, 'u')).toMatchObject({ action: 'modify', changes: [{ field: 'groups', from: 'dev, www-data', to: '(none)' }] })
    expect((await readFile(box.at('/etc/group'), 'utf8')).split('\n').filter((l) => /[:,]app(,|$)/.test(l))).toEqual([])
  })

  it('moves a managed home with its content; only points passwd elsewhere when the home is not managed', async () => {
    const box = sandbox()
    await accountsRoot(box)
    await mkdir(box.at('/srv'))
    const fields = { id: 'u', type: 'user', name: 'app', uid: 1200, home: '/home/app', manage_home: true }
    await box.apply(policyOf([fields]))
    await writeFile(box.at('/home/app/notes'), 'keep me\n')

    const moved = await box.apply(policyOf([{ ...fields, home: '/srv/app' }]))
    expect(result(moved, 'u')).toMatchObject({ action: 'modify', status: 'ok', changes: [{ field: 'home', from: '/home/app', to: '/srv/app' }] })
    expect(await readFile(box.at('/srv/app/notes'), 'utf8')).toBe('keep me\n')
    await expect(stat(box.at('/home/app'))).rejects.toMatchObject({ code: 'ENOENT' })
    expect((await lineOf(box, 'passwd', 'app'))?.split(':')[5]).toBe('/srv/app')

    await box.apply(policyOf([{ ...fields, home: '/home/elsewhere', manage_home: false }]))
    expect((await lineOf(box, 'passwd', 'app'))?.split(':')[5]).toBe('/home/elsewhere')
    expect(await readFile(box.at('/srv/app/notes'), 'utf8')).toBe('keep me\n')
    await expect(stat(box.at('/home/elsewhere'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('refuses to move a home into a directory that does not exist, before usermod half-does it', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const fields = { id: 'u', type: 'user', name: 'app', home: '/home/app', manage_home: true }
    await box.apply(policyOf([fields]))
    const before = await etcState(box)
    const err = failure(await box.apply(policyOf([{ ...fields, home: '/nowhere/app' }])), 'u')
    expect(err).toEqual({ name: 'HomeParentMissingError', message: 'user app: cannot move the home directory to /nowhere/app: /nowhere does not exist; create it first (a directory resource the user requires)' })
    expect(await etcState(box)).toEqual(before)
  })

  it('deletes with userdel, removing the home only when it is managed', async () => {
    const box = sandbox()
    await accountsRoot(box)
    await box.apply(policyOf([
      { id: 'a', type: 'user', name: 'kept', manage_home: true },
      { id: 'b', type: 'user', name: 'wiped', manage_home: true }
    ]))
    const policy = policyOf([
      { id: 'a', type: 'user', name: 'kept', ensure: 'absent' },
      { id: 'b', type: 'user', name: 'wiped', ensure: 'absent', manage_home: true }
    ])

    const before = await etcState(box)
    const plan = await box.plan(policy)
    expect(result(plan, 'a')).toMatchObject({ action: 'delete', changes: [{ field: 'ensure', from: 'present', to: 'absent' }] })
    expect(result(plan, 'b')).toMatchObject({ action: 'delete', changes: [{ field: 'ensure', from: 'present', to: 'absent' }, { field: 'home', from: '/home/wiped', to: '(removed)' }] })
    expect(await etcState(box)).toEqual(before)

    const applied = await box.apply(policy)
    expect(applied.resources.map((r) => `${r.id}:${r.action}/${r.status}`)).toEqual(['a:delete/ok', 'b:delete/ok'])
    expect(await lineOf(box, 'passwd', 'kept')).toBeUndefined()
    expect(await lineOf(box, 'shadow', 'wiped')).toBeUndefined()
    // userdel removes the user's own group (USERGROUPS_ENAB) with it.
    expect(await lineOf(box, 'group', 'kept')).toBeUndefined()
    expect((await stat(box.at('/home/kept'))).isDirectory()).toBe(true)
    await expect(stat(box.at('/home/wiped'))).rejects.toMatchObject({ code: 'ENOENT' })

    const deleted = await etcState(box)
    expect((await box.apply(policy)).counts.changed).toBe(0)
    expect(await etcState(box)).toEqual(deleted)
  })

  it('joins an existing group of its own name instead of failing as useradd would', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const report = await box.apply(policyOf([{ id: 'g', type: 'group', name: 'app', gid: 1800 }, { id: 'u', type: 'user', name: 'app' }]))
    expect(report.counts.failed).toBe(0)
    expect((await lineOf(box, 'passwd', 'app'))?.split(':')[3]).toBe('1800')
  })

  it('fails with the tool\'s exit code and stderr: a uid in use, a group that does not exist', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const report = await box.apply(policyOf([
      { id: 'a', type: 'user', name: 'clash', uid: 33 },
      { id: 'b', type: 'user', name: 'lost', groups: ['nosuch'] }
    ]))
    expect(failure(report, 'a')).toEqual({ name: 'AccountCommandFailedError', message: "useradd -u 33 -M clash: exit code 4: useradd: UID 33 is not unique" })
    expect(failure(report, 'b')).toEqual({ name: 'AccountCommandFailedError', message: "useradd -G nosuch -M lost: exit code 6: useradd: group 'nosuch' does not exist" })
    expect(formatReport(report).join('\n')).toContain("AccountCommandFailedError: useradd -u 33 -M clash: exit code 4: useradd: UID 33 is not unique")
  })

  it('needs the root\'s own /etc/passwd and /etc/group', async () => {
    const box = sandbox()
    const err = failure(await box.apply(policyOf([{ id: 'u', type: 'user', name: 'app' }])), 'u')
    expect(err.name).toBe('AccountDatabaseMissingError')
    expect(err.message).toContain('has no /etc/passwd')
  })
})

describe('password hashes', () => {
  const sandbox = useSandbox()
  const withSecret = (extra: Record<string, unknown> = {}): unknown => ({ id: 'u', type: 'user', name: 'app', password_hash: '{{ secrets.app_hash }}', ...extra })

  it('from secrets land in the sandbox\'s shadow and in no report; a new one shows as (changed)', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const policy = policyOf([withSecret()])

    const plan = await box.plan(policy, { secrets: { app_hash: HASH_A } })
    expect(result(plan, 'u')).toMatchObject({ action: 'create', changes: [{ field: 'password', to: '(set)' }] })
    const applied = await box.apply(policy, { secrets: { app_hash: HASH_A } })
    expect(result(applied, 'u')).toMatchObject({ action: 'create', status: 'ok' })
    expect((await lineOf(box, 'shadow', 'app'))?.split(':')[1]).toBe(HASH_A)

    const again = await box.apply(policy, { secrets: { app_hash: HASH_A } })
    expect(result(again, 'u').action).toBe('none')

    const changed = await box.apply(policy, { secrets: { app_hash: HASH_B } })
    expect(result(changed, 'u')).toMatchObject({ action: 'modify', changes: [{ field: 'password', to: '(changed)' }] })
    expect((await lineOf(box, 'shadow', 'app'))?.split(':')[1]).toBe(HASH_B)

    for (const report of [plan, applied, again, changed]) {
      for (const text of [JSON.stringify(report), formatReport(report, { verbose: true }).join('\n')]) {
        expect(text).not.toContain(HASH_A)
        expect(text).not.toContain(HASH_B)
        expect(text).not.toContain('Zq9vX7pL')
      }
    }
  })

  it('written in the policy work as well, and "!" locks the account', async () => {
    const box = sandbox()
    await accountsRoot(box)
    await box.apply(policyOf([{ id: 'u', type: 'user', name: 'app', password_hash: HASH_B }]))
    expect((await lineOf(box, 'shadow', 'app'))?.split(':')[1]).toBe(HASH_B)
    await box.apply(policyOf([{ id: 'u', type: 'user', name: 'app', password_hash: `!${HASH_B}` }]))
    expect((await lineOf(box, 'shadow', 'app'))?.split(':')[1]).toBe(`!${HASH_B}`)
  })

  it('are refused when the value is not a crypt hash, without quoting it, and nothing runs', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const before = await etcState(box)
    const plaintext = 'correct-horse-battery'
    const report = await box.apply(policyOf([withSecret()]), { secrets: { app_hash: plaintext } })
    const err = failure(report, 'u')
    expect(err.name).toBe('NotAPasswordHashError')
    expect(err.message).toMatch(/^resources\[0\]\.password_hash: not a crypt\(3\) hash \(the value is not shown\)/)
    expect(JSON.stringify(report)).not.toContain(plaintext)
    expect(await etcState(box)).toEqual(before)
  })

  it('from a secret cannot smuggle a second chpasswd line (another account\'s password)', async () => {
    const box = sandbox()
    await accountsRoot(box)
    const rootBefore = await lineOf(box, 'shadow', 'root')
    const report = await box.apply(policyOf([withSecret()]), { secrets: { app_hash: `${HASH_A}\nroot:${HASH_B}` } })
    expect(failure(report, 'u').name).toBe('NotAPasswordHashError')
    expect(await lineOf(box, 'shadow', 'root')).toBe(rootBefore)
    expect(await lineOf(box, 'passwd', 'app')).toBeUndefined()
  })

  it('stay out of a failing chpasswd\'s report, which says why it failed', async () => {
    const box = sandbox()
    await accountsRoot(box)
    await box.apply(policyOf([{ id: 'u', type: 'user', name: 'app' }]))
    // A shadow file chpasswd cannot lock: it fails after reading the hash from stdin.
    await mkdir(box.at('/etc/shadow.lock'))
    const report = await box.apply(policyOf([withSecret()]), { secrets: { app_hash: HASH_A } })
    const err = failure(report, 'u')
    expect(err.name).toBe('AccountCommandFailedError')
    expect(err.message).toBe('chpasswd -e: exit code 1: chpasswd: /etc/shadow.lock: Is a directory\nchpasswd: cannot lock /etc/shadow; try again later.')
    expect(JSON.stringify(report)).not.toContain(HASH_A)
    await rm(box.at('/etc/shadow.lock'), { recursive: true })
  })
})
