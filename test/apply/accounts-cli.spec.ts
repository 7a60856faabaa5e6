import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli, type CliResult } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'

// `grapevine plan` and `apply --root` with users and groups, as an operator runs them: the real
// shadow tools into a sandbox root (as root, as CI runs).

const HASH = '$6$Nw4kR8sTsalt$Qm3pW9xY2zA5bC8dE1fG4hJ7kL0nP3rS6tU9vX2yZ5aVd0O6y6m7CZbXg3k2l1bJqjQhM4Y5oGk1nR2s3t4u5'

const POLICY = `
name: web/accounts
resources:
  - { id: app-user, type: user, name: app, uid: 990, groups: [www-data, ops], home: /srv/app, manage_home: true, shell: /usr/sbin/nologin, system: true, password_hash: "{{ secrets.app_hash }}" }
  - { id: ops, type: group, name: ops, gid: 1500 }
`

const output = (r: CliResult): string => r.stdout + r.stderr

describe('grapevine plan / apply with users and groups', () => {
  const dir = useTempDir('grapevine-cli-accounts-')

  it('plans, applies, and on the second apply changes nothing; the hash reaches shadow and no output', async () => {
    const root = join(dir(), 'root')
    await mkdir(join(root, 'etc'), { recursive: true })
    await mkdir(join(root, 'srv'))
    await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n')
    await writeFile(join(root, 'etc/group'), 'root:x:0:\nwww-data:x:33:\n')
    await writeFile(join(root, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 })
    await writeFile(join(root, 'etc/gshadow'), 'root:*::\nwww-data:*::\n', { mode: 0o640 })
    await writeFile(join(root, 'etc/login.defs'), 'SYS_UID_MIN 100\nSYS_UID_MAX 999\nUSERGROUPS_ENAB yes\n')
    const policy = join(dir(), 'policy.yaml')
    const secrets = join(dir(), 'secrets.yaml')
    await writeFile(policy, POLICY)
    await writeFile(secrets, `app_hash: "${HASH}"\n`, { mode: 0o600 })
    const args = (cmd: string, ...more: string[]): string[] => [cmd, policy, '--root', root, '--state', join(dir(), 'state'), '--secrets', secrets, ...more]

    const plan = await runCli(args('plan'))
    expect(plan.code, output(plan)).toBe(2)
    expect(plan.stdout).toMatch(/create\s+user\s+app-user\s+app\n/)
    expect(plan.stdout).toContain('      password: (set)')
    expect(plan.stdout).toMatch(/create\s+group\s+ops\s+ops\n\s+gid: 1500/)

    const applied = await runCli(args('apply', '--json'))
    expect(applied.code, output(applied)).toBe(2)
    const report = JSON.parse(applied.stdout) as { resources: Array<{ id: string, name: string, action: string, status: string }> }
    expect(report.resources.map((r) => `${r.id}:${r.name}:${r.action}/${r.status}`)).toEqual(['ops:ops:create/ok', 'app-user:app:create/ok'])
    const passwd = await readFile(join(root, 'etc/passwd'), 'utf8')
    expect(passwd).toContain('app:x:990:')
    expect(passwd).toContain(':/srv/app:/usr/sbin/nologin\n')
    expect(await readFile(join(root, 'etc/shadow'), 'utf8')).toContain(`app:${HASH}:`)

    const again = await runCli(args('apply'))
    expect(again.code, output(again)).toBe(0)
    for (const r of [plan, applied, again]) expect(output(r)).not.toContain(HASH)
  })
})
