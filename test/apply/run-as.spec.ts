import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCommand } from '../../src/apply/command.js'
import { applyExec, type ExecContext } from '../../src/apply/exec.js'
import { RootGuard } from '../../src/apply/paths.js'
import { parsePasswd, resolveRunAs, spawnIdentity } from '../../src/apply/run-as.js'
import type { ExecResource } from '../../src/policy/index.js'
import { configPolicy } from '../helpers/envelope.js'
import { useTempDir } from '../helpers/tmp.js'

const IS_ROOT = process.getuid?.() === 0
const NOBODY = { name: 'nobody', uid: 65534, gid: 65534, home: '/nonexistent' }

describe('parsePasswd', () => {
  it('reads name, uid, gid and home; skips comments, blanks and broken lines', () => {
    expect(parsePasswd('# users\nroot:x:0:0:root:/root:/bin/bash\n\nbroken:x:a:0::/:/bin/sh\nweb:x:33:33:www::/usr/sbin/nologin\n')).toEqual([
      { name: 'root', uid: 0, gid: 0, home: '/root' },
      { name: 'web', uid: 33, gid: 33, home: '/' }
    ])
  })
})

describe('resolveRunAs', () => {
  const dir = useTempDir('grapevine-runas-')

  it('finds a user by name or by uid in this machine\'s /etc/passwd', async () => {
    expect(await resolveRunAs('nobody')).toEqual(NOBODY)
    expect(await resolveRunAs('65534')).toEqual(NOBODY)
  })

  it('says why it cannot', async () => {
    expect(await resolveRunAs('ghost')).toBe('no user "ghost" in /etc/passwd')
    expect(await resolveRunAs('4000000')).toBe('no user with uid "4000000" in /etc/passwd')
    expect(await resolveRunAs('nobody', join(dir(), 'missing'))).toMatch(/^cannot read .*missing \(ENOENT\)$/)
  })

  it('reads the passwd file it is given (never the one under --root unless asked)', async () => {
    const file = join(dir(), 'passwd')
    await writeFile(file, 'nobody:x:0:0:evil:/:/bin/sh\n')
    expect(await resolveRunAs('nobody', file)).toMatchObject({ uid: 0 })
    expect(await resolveRunAs('nobody')).toMatchObject({ uid: 65534 })
  })
})

describe('spawnIdentity', () => {
  it.each([
    ['an agent running as root switches', 0, { uid: 65534, gid: 65534 }],
    ['an agent already running as the user runs as itself', 65534, undefined],
    ['any other agent refuses rather than run with its own powers', 1000, 'run_as nobody needs the agent to run as root; it runs as uid 1000']
  ])('%s', (_, agentUid, expected) => {
    expect(spawnIdentity(NOBODY, agentUid)).toEqual(expected)
  })
})

describe.skipIf(!IS_ROOT)('running as another user (the agent is root)', () => {
  const dir = useTempDir('grapevine-runas-')

  it('runCommand runs with the uid and gid given, and none of the agent\'s groups', async () => {
    const r = await runCommand('id -u; id -g; id -G', { cwd: '/', env: { PATH: '/usr/bin:/bin' }, timeoutMs: 10_000, user: { uid: 65534, gid: 65534 } })
    expect(r).toMatchObject({ exitCode: 0, stdout: '65534\n65534\n65534\n' })
  })

  const context = async (extra: Partial<ExecContext> = {}): Promise<ExecContext> => {
    // The user must be able to enter the root (mkdtemp makes it 0700).
    await chmod(dir(), 0o755)
    return { guard: await RootGuard.open(dir()), policy: 'web/site', dryRun: false, runGuards: false, notified: { state: 'no', by: [] }, notifiers: [], plannedDirs: new Set(), ...extra }
  }
  const exec = (fields: Record<string, unknown>): ExecResource => {
    const p = configPolicy('web/site', [{ id: 'x', type: 'exec', ...fields }])
    if (p.kind !== 'policy' || p.resources[0]?.type !== 'exec') throw new Error('expected an exec')
    return p.resources[0]
  }

  it('applyExec runs the command and its guards as run_as, with that user\'s HOME', async () => {
    // The guard exits 0 only as root: as nobody it fails, so the command runs.
    const out = await applyExec(exec({ command: 'echo "$(id -un) $HOME"', unless: 'test "$(id -u)" = 0', run_as: 'nobody' }), await context())
    expect(out).toMatchObject({ action: 'run', status: 'ok' })
    expect(out.exec?.stdout).toBe('nobody /nonexistent\n')
  })

  it('without run_as, the command runs as the agent (root): what a limited grant forbids', async () => {
    const out = await applyExec(exec({ command: 'id -un' }), await context())
    expect(out.exec?.stdout).toBe('root\n')
  })

  it('fails the resource, running nothing, for an unknown user or an agent that cannot switch', async () => {
    const marker = join(dir(), 'ran')
    for (const [ctx, runAs, message] of [
      [{}, 'ghost', 'cannot run as "ghost": no user "ghost" in /etc/passwd'],
      [{ uid: 1000 }, 'nobody', 'cannot run as "nobody": run_as nobody needs the agent to run as root; it runs as uid 1000']
    ] as const) {
      const out = await applyExec(exec({ command: ['touch', marker], run_as: runAs }), await context(ctx))
      expect(out).toMatchObject({ action: 'none', status: 'failed' })
      expect(out.error?.message).toBe(`touch ${marker}: ${message}`)
    }
    await expect(import('node:fs/promises').then(async (fs) => await fs.access(marker))).rejects.toThrow()
  })
})
