import { describe, expect, it } from 'vitest'
import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { applyPolicy, readBackupIndex } from '../../src/apply/index.js'
import type { ConfigPolicy } from '../../src/policy/index.js'
import { policyOf, result, summary, useSandbox } from './helpers.js'

const modeOf = async (p: string): Promise<string> => ((await lstat(p)).mode & 0o7777).toString(8).padStart(4, '0')
const exists = async (p: string): Promise<boolean> => await lstat(p).then(() => true, () => false)

describe('applyPolicy', () => {
  const sandbox = useSandbox()

  describe('file', () => {
    const policy = (content: string, extra: Record<string, unknown> = {}): ConfigPolicy => policyOf([
      { id: 'etc', type: 'directory', path: '/etc' },
      { id: 'motd', type: 'file', path: '/etc/motd', content, mode: '0640', ...extra }
    ])

    it('creates, leaves alone, modifies and deletes', async () => {
      const sb = sandbox()
      expect(summary(await sb.apply(policy('hello {{ node.name }}\n')))).toEqual(['etc:create/ok', 'motd:create/ok'])
      expect(await readFile(sb.at('/etc/motd'), 'utf8')).toBe('hello web1\n')
      expect(await modeOf(sb.at('/etc/motd'))).toBe('0640')

      const again = await sb.apply(policy('hello {{ node.name }}\n'))
      expect(again.outcome).toBe('no-changes')

      const changed = await sb.apply(policy('bye\n'))
      expect(result(changed, 'motd')).toMatchObject({ action: 'modify', status: 'ok', changes: [{ field: 'content' }] })
      expect(result(changed, 'motd').diff).toContain('-hello web1\n+bye\n')
      expect(await readFile(sb.at('/etc/motd'), 'utf8')).toBe('bye\n')

      const deleted = await sb.apply(policy('', { ensure: 'absent' }))
      expect(result(deleted, 'motd')).toMatchObject({ action: 'delete', status: 'ok' })
      expect(await exists(sb.at('/etc/motd'))).toBe(false)
    })

    it('writes base64 content as bytes, without templating', async () => {
      const sb = sandbox()
      const bytes = Buffer.from([0, 1, 2, 255, 123, 123])
      await sb.apply(policyOf([{ id: 'bin', type: 'file', path: '/blob', content: bytes.toString('base64'), encoding: 'base64' }]))
      expect(await readFile(sb.at('/blob'))).toEqual(bytes)
    })

    it('keeps what it replaces and deletes in the backup store', async () => {
      const sb = sandbox()
      await sb.apply(policy('one\n'))
      await sb.apply(policy('two\n'))
      await sb.apply(policy('', { ensure: 'absent' }))
      const index = await readBackupIndex(sb.state)
      expect(index.map((e) => [e.reason, e.path, e.kind])).toEqual([['replace', '/etc/motd', 'file'], ['delete', '/etc/motd', 'file']])
      expect(await readFile(join(sb.state, 'backups', index[0]!.sha256!), 'utf8')).toBe('one\n')
      expect(await readFile(join(sb.state, 'backups', index[1]!.sha256!), 'utf8')).toBe('two\n')
      expect(index[0]).toMatchObject({ policy: 'test/apply', id: 'motd', mode: '0640' })
    })

    it('backs up a large file it never read, by streaming it', async () => {
      const sb = sandbox()
      const big = Buffer.alloc(3 * 1024 * 1024, 'b')
      await writeFile(sb.at('/big'), big)
      const report = await sb.apply(policyOf([{ id: 'big', type: 'file', path: '/big', content: 'small now\n' }]))
      expect(result(report, 'big')).toMatchObject({ action: 'modify', changes: [{ field: 'content', from: `${big.length} bytes` }] })
      expect(result(report, 'big').diff).toBeUndefined()
      const [entry] = await readBackupIndex(sb.state)
      expect(entry).toMatchObject({ size: big.length, reason: 'replace' })
      expect((await readFile(join(sb.state, 'backups', entry!.sha256!))).equals(big)).toBe(true)
    })

    it('repairs drift: changed content, changed mode, deletion', async () => {
      const sb = sandbox()
      await sb.apply(policy('managed\n'))
      await writeFile(sb.at('/etc/motd'), 'tampered\n')
      expect(result(await sb.apply(policy('managed\n')), 'motd').action).toBe('modify')
      expect(await readFile(sb.at('/etc/motd'), 'utf8')).toBe('managed\n')

      await chmod(sb.at('/etc/motd'), 0o666)
      const remoded = await sb.apply(policy('managed\n'))
      expect(result(remoded, 'motd').changes).toEqual([{ field: 'mode', from: '0666', to: '0640' }])
      expect(await modeOf(sb.at('/etc/motd'))).toBe('0640')

      await rm(sb.at('/etc/motd'))
      expect(result(await sb.apply(policy('managed\n')), 'motd').action).toBe('create')
      expect(await readFile(sb.at('/etc/motd'), 'utf8')).toBe('managed\n')
    })

    it('replaces a symlink with a file rather than writing through it', async () => {
      const sb = sandbox()
      await mkdir(sb.at('/etc'))
      await writeFile(sb.at('/target'), 'untouched\n')
      await symlink(sb.at('/target'), sb.at('/etc/motd'))
      await sb.apply(policy('mine\n'))
      expect((await lstat(sb.at('/etc/motd'))).isFile()).toBe(true)
      expect(await readFile(sb.at('/target'), 'utf8')).toBe('untouched\n')
    })

    it('fails with the template error when a template names nothing', async () => {
      const sb = sandbox()
      const report = await sb.apply(policy('{{ node.tags.missing }}'))
      expect(result(report, 'motd')).toMatchObject({ status: 'failed', error: { name: 'TemplateError', message: expect.stringContaining('this node has no tag "missing"') } })
      expect(report.outcome).toBe('changes-and-failures')
    })

    it('fails clearly when the parent directory is not managed and missing', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([{ id: 'f', type: 'file', path: '/nope/f', content: 'x' }]))
      expect(result(report, 'f')).toMatchObject({ status: 'failed', error: { name: 'ParentMissingError', message: expect.stringContaining('/nope does not exist') } })
    })

    it('refuses to replace a directory with a file', async () => {
      const sb = sandbox()
      await mkdir(sb.at('/etc/motd'), { recursive: true })
      const report = await sb.apply(policy('x'))
      expect(result(report, 'motd')).toMatchObject({ status: 'failed', error: { name: 'WrongFileTypeError' } })
    })

    it('applies owner and group as root, and only warns otherwise', async () => {
      const sb = sandbox()
      const p = policyOf([{ id: 'f', type: 'file', path: '/owned', content: 'x', owner: '4321', group: '4322' }])
      const asRoot = process.getuid?.() === 0
      const report = await sb.apply(p, { enforceOwnership: asRoot })
      const info = await lstat(sb.at('/owned'))
      if (asRoot) {
        expect([info.uid, info.gid]).toEqual([4321, 4322])
        expect((await sb.apply(p)).outcome).toBe('no-changes')
      } else {
        expect(result(report, 'f').warnings?.join('\n')).toMatch(/owner not enforced \(not running as root\)/)
      }
      // Whoever runs the tests, reporting without enforcing never chowns and never fails.
      const reported = await sb.apply(policyOf([{ id: 'f', type: 'file', path: '/owned', content: 'x', owner: '4444' }]), { enforceOwnership: false })
      expect(result(reported, 'f')).toMatchObject({ action: 'none', status: 'ok', warnings: [expect.stringContaining('the policy wants 4444')] })
    })

    it('resolves owner names through /etc/passwd', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([{ id: 'f', type: 'file', path: '/f', content: 'x', owner: 'root', group: 'root' }]), { enforceOwnership: false })
      expect(result(report, 'f').status).toBe('ok')
      const unknown = await sb.apply(policyOf([{ id: 'g', type: 'file', path: '/g', content: 'x', owner: 'no-such-user-here' }]), { enforceOwnership: true })
      expect(result(unknown, 'g')).toMatchObject({ status: 'failed', error: { name: 'UnknownUserError' } })
    })
  })

  describe('directory', () => {
    it('creates with its mode, repairs the mode, removes only when empty', async () => {
      const sb = sandbox()
      const p = (extra: Record<string, unknown> = {}): ConfigPolicy => policyOf([{ id: 'd', type: 'directory', path: '/srv/data', mode: '0750', ...extra }], {})
      await mkdir(sb.at('/srv'), { recursive: true })
      expect(result(await sb.apply(p()), 'd').action).toBe('create')
      expect(await modeOf(sb.at('/srv/data'))).toBe('0750')
      expect((await sb.apply(p())).outcome).toBe('no-changes')
      await chmod(sb.at('/srv/data'), 0o777)
      expect(result(await sb.apply(p()), 'd').changes).toEqual([{ field: 'mode', from: '0777', to: '0750' }])

      await writeFile(sb.at('/srv/data/keep'), 'x')
      const refused = await sb.apply(p({ ensure: 'absent' }))
      expect(result(refused, 'd')).toMatchObject({ status: 'failed', error: { name: 'DirectoryNotEmptyError' } })
      await rm(sb.at('/srv/data/keep'))
      expect(result(await sb.apply(p({ ensure: 'absent' })), 'd').action).toBe('delete')
      expect(await exists(sb.at('/srv/data'))).toBe(false)
    })

    it('removes managed files before the directory that holds them', async () => {
      const sb = sandbox()
      const present = policyOf([
        { id: 'd', type: 'directory', path: '/d' },
        { id: 'f', type: 'file', path: '/d/f', content: 'x' }
      ])
      await sb.apply(present)
      const absent = policyOf([
        { id: 'd', type: 'directory', path: '/d', ensure: 'absent' },
        { id: 'f', type: 'file', path: '/d/f', ensure: 'absent' }
      ])
      const plan = await sb.plan(absent)
      expect(summary(plan)).toEqual(['f:delete/ok', 'd:delete/ok'])
      expect(summary(await sb.apply(absent))).toEqual(['f:delete/ok', 'd:delete/ok'])
      expect(await exists(sb.at('/d'))).toBe(false)
    })
  })

  describe('directory behind a symlink', () => {
    // /srv as a link to a data disk: a policy that only makes sure /srv exists writes through it.
    const site = (srv: Record<string, unknown> = {}): ConfigPolicy => policyOf([
      { id: 'srv', type: 'directory', path: '/srv', ...srv },
      { id: 'www', type: 'directory', path: '/srv/www', requires: ['srv'] },
      { id: 'index', type: 'file', path: '/srv/www/index.html', content: 'hi\n', requires: ['www'] }
    ])

    it('leaves a link to a directory inside the root alone when the directory is only made sure of; plan and apply agree', async () => {
      const sb = sandbox()
      await mkdir(sb.at('/data/srv'), { recursive: true })
      await symlink('data/srv', sb.at('/srv'))
      const plan = await sb.plan(site())
      expect(summary(plan)).toEqual(['srv:none/ok', 'www:create/ok', 'index:create/ok'])
      const applied = await sb.apply(site())
      expect(summary(applied)).toEqual(summary(plan))
      expect(await readlink(sb.at('/srv'))).toBe('data/srv')
      expect(await readFile(sb.at('/data/srv/www/index.html'), 'utf8')).toBe('hi\n')
      expect((await sb.apply(site())).outcome).toBe('no-changes')
    })

    it('replaces the link when the directory is managed fully, and refuses (never replaces) a link that leads to no directory inside the root', async () => {
      const sb = sandbox()
      await mkdir(sb.at('/data/srv'), { recursive: true })
      await symlink('data/srv', sb.at('/srv'))
      const full = await sb.apply(site({ mode: '0755' }))
      expect(result(full, 'srv')).toMatchObject({ action: 'modify', status: 'ok' })
      expect((await lstat(sb.at('/srv'))).isDirectory()).toBe(true)

      for (const target of ['missing', 'data/file', join(sb.root, '..', 'outside-srv')]) {
        await rm(sb.at('/srv'), { recursive: true })
        await writeFile(sb.at('/data/file'), 'x')
        await mkdir(join(sb.root, '..', 'outside-srv'), { recursive: true })
        await symlink(target, sb.at('/srv'))
        expect(result(await sb.apply(site()), 'srv'), target).toMatchObject({ status: 'failed', error: { name: 'WrongFileTypeError' } })
        expect((await lstat(sb.at('/srv'))).isSymbolicLink(), target).toBe(true)
      }
    })
  })

  describe('symlink', () => {
    it('creates, retargets and removes; absolute targets live under the root', async () => {
      const sb = sandbox()
      const p = (target: string, ensure = 'present'): ConfigPolicy => policyOf([{ id: 'l', type: 'symlink', path: '/current', target, ensure }])
      expect(result(await sb.apply(p('/releases/1')), 'l').action).toBe('create')
      expect(await readlink(sb.at('/current'))).toBe(sb.at('/releases/1'))
      expect((await sb.apply(p('/releases/1'))).outcome).toBe('no-changes')
      const moved = await sb.apply(p('releases/2'))
      expect(result(moved, 'l')).toMatchObject({ action: 'modify', changes: [{ field: 'target', from: '/releases/1', to: 'releases/2' }] })
      expect(await readlink(sb.at('/current'))).toBe('releases/2')
      expect(result(await sb.apply(p('releases/2', 'absent')), 'l').action).toBe('delete')
      expect(await exists(sb.at('/current'))).toBe(false)
    })
  })

  describe('config', () => {
    it('writes each format and leaves a hand-reformatted file with the same data alone', async () => {
      const sb = sandbox()
      const data = { name: '{{ node.name }}', port: 8080, tls: { enabled: true } }
      const p = policyOf([
        { id: 'json', type: 'config', path: '/app.json', format: 'json', data },
        { id: 'yaml', type: 'config', path: '/app.yaml', format: 'yaml', data },
        { id: 'toml', type: 'config', path: '/app.toml', format: 'toml', data },
        { id: 'ini', type: 'config', path: '/app.ini', format: 'ini', data },
        { id: 'env', type: 'config', path: '/app.env', format: 'env', data: { NAME: '{{ node.name }}', PORT: 8080 } }
      ])
      expect((await sb.apply(p)).counts.changed).toBe(5)
      expect(await readFile(sb.at('/app.json'), 'utf8')).toBe('{\n  "name": "web1",\n  "port": 8080,\n  "tls": {\n    "enabled": true\n  }\n}\n')
      expect(await readFile(sb.at('/app.env'), 'utf8')).toBe('NAME=web1\nPORT=8080\n')

      await writeFile(sb.at('/app.json'), '{"tls":{"enabled":true},"port":8080,"name":"web1"}')
      await writeFile(sb.at('/app.yaml'), '# edited by hand\nport: 8080\ntls: {enabled: true}\nname: web1\n')
      const same = await sb.apply(p)
      expect(same.outcome).toBe('no-changes')
      expect(await readFile(sb.at('/app.json'), 'utf8')).toBe('{"tls":{"enabled":true},"port":8080,"name":"web1"}')

      await writeFile(sb.at('/app.toml'), 'this is not = = toml [')
      await writeFile(sb.at('/app.ini'), 'name=web1\nport=9090\n[tls]\nenabled=true\n')
      const repaired = await sb.apply(p)
      expect(summary(repaired).filter((s) => !s.endsWith('none/ok'))).toEqual(['toml:modify/ok', 'ini:modify/ok'])
      expect(result(repaired, 'ini').diff).toContain('-port=9090\n+port=8080')
    })

    it('fails a resource whose data the format cannot hold', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([{ id: 'env', type: 'config', path: '/x.env', format: 'env', data: { A: { nested: true } } }]))
      expect(result(report, 'env')).toMatchObject({ status: 'failed', error: { name: 'ConfigFormatError' } })
    })
  })

  describe('exec', () => {
    it('runs argv without a shell and strings with one, with GRAPEVINE_ROOT set', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([
        { id: 'argv', type: 'exec', command: ['touch', 'from-argv'], cwd: '/' },
        { id: 'shell', type: 'exec', command: 'echo "$GRAPEVINE_ROOT $GREETING" > "$GRAPEVINE_ROOT/from-shell"', env: { GREETING: 'hi' } }
      ]))
      expect(summary(report)).toEqual(['argv:run/ok', 'shell:run/ok'])
      expect(await exists(sb.at('/from-argv'))).toBe(true)
      expect(await readFile(sb.at('/from-shell'), 'utf8')).toBe(`${sb.root} hi\n`)
    })

    it('renders templates in env values, never in the command text', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([
        { id: 'facts', type: 'exec', command: 'printf "%s" "$ROLE on $NAME" > "$GRAPEVINE_ROOT/facts"', env: { ROLE: '{{ node.tags.role }}', NAME: '{{ node.name }}' } },
        { id: 'missing', type: 'exec', command: ['true'], env: { X: '{{ node.tags.nope }}' } }
      ]))
      expect(await readFile(sb.at('/facts'), 'utf8')).toBe('web on web1')
      expect(result(report, 'missing')).toMatchObject({ status: 'failed', error: { name: 'TemplateError' } })
    })

    it('skips when creates exists, unless succeeds or onlyif fails', async () => {
      const sb = sandbox()
      await writeFile(sb.at('/done'), '')
      const report = await sb.apply(policyOf([
        { id: 'creates', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/ran-creates"', creates: '/done' },
        { id: 'unless', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/ran-unless"', unless: 'true' },
        { id: 'onlyif', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/ran-onlyif"', onlyif: ['false'] },
        { id: 'runs', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/ran-runs"', unless: 'false', onlyif: 'true' }
      ]))
      expect(summary(report)).toEqual(['creates:none/ok', 'unless:none/ok', 'onlyif:none/ok', 'runs:run/ok'])
      expect(result(report, 'creates').reason).toBe('creates /done, which exists')
      expect((await readdir(sb.root)).sort()).toEqual(['done', 'ran-runs'])
    })

    it('fails on a non-zero exit with the tail of stderr', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([{ id: 'bad', type: 'exec', command: 'echo starting; echo "disk full" >&2; exit 7' }]))
      expect(result(report, 'bad')).toMatchObject({
        action: 'run',
        status: 'failed',
        error: { name: 'ExecFailedError', message: 'echo starting; echo "disk full" >&2; exit 7: exited 7: disk full' },
        exec: { exitCode: 7, stdout: 'starting\n', stderr: 'disk full\n' }
      })
      // A command that ran and failed is a failure, not a change.
      expect(report.outcome).toBe('failures')
    })

    it('fails without running the command when a guard cannot run or cwd is missing', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([
        { id: 'guard', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/ran"', onlyif: ['/no/such/guard'] },
        { id: 'cwd', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/ran"', cwd: '/missing' }
      ]))
      expect(summary(report)).toEqual(['guard:none/failed', 'cwd:none/failed'])
      expect(report.resources.map((r) => r.error?.message)).toEqual(['/no/such/guard: cannot start (ENOENT)', 'touch "$GRAPEVINE_ROOT/ran": cwd /missing does not exist'])
      expect(await exists(sb.at('/ran'))).toBe(false)
    })

    it('kills a command that runs past its timeout', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([{ id: 'slow', type: 'exec', command: ['sleep', '60'], timeout: 0.5 }]))
      expect(result(report, 'slow')).toMatchObject({ status: 'failed', error: { name: 'ExecTimeoutError' } })
    })

    it('runs a refresh-only exec once, and only when something that notifies it changed', async () => {
      const sb = sandbox()
      const p = (content: string): ConfigPolicy => policyOf([
        { id: 'a', type: 'file', path: '/a', content, notify: ['reload'] },
        { id: 'b', type: 'file', path: '/b', content, notify: ['reload'] },
        { id: 'reload', type: 'exec', command: 'echo reload >> "$GRAPEVINE_ROOT/log"', refreshonly: true }
      ])
      const first = await sb.apply(p('1'))
      expect(result(first, 'reload')).toMatchObject({ action: 'run', status: 'ok', reason: 'notified by "a", "b"' })
      expect(await readFile(sb.at('/log'), 'utf8')).toBe('reload\n')

      const quiet = await sb.apply(p('1'))
      expect(result(quiet, 'reload')).toMatchObject({ action: 'none', reason: 'refresh only, not notified by "a", "b"' })
      expect(await readFile(sb.at('/log'), 'utf8')).toBe('reload\n')

      await writeFile(sb.at('/b'), 'drifted')
      const one = await sb.apply(p('1'))
      expect(result(one, 'reload').reason).toBe('notified by "b"')
      expect(await readFile(sb.at('/log'), 'utf8')).toBe('reload\nreload\n')
    })

    it('runs a plain exec that is notified once, guards still apply', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([
        { id: 'a', type: 'file', path: '/a', content: 'x', notify: ['count', 'guarded'] },
        { id: 'count', type: 'exec', command: 'echo run >> "$GRAPEVINE_ROOT/count"' },
        { id: 'guarded', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/guarded"', creates: '/a' }
      ]))
      expect(result(report, 'count')).toMatchObject({ action: 'run', reason: 'notified by "a"' })
      expect(await readFile(sb.at('/count'), 'utf8')).toBe('run\n')
      expect(result(report, 'guarded').action).toBe('none')
    })
  })

  describe('ordering and failures', () => {
    it('applies requires first, whatever the written order', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([
        { id: 'third', type: 'exec', command: 'echo third >> "$GRAPEVINE_ROOT/order"', requires: ['second'] },
        { id: 'second', type: 'exec', command: 'echo second >> "$GRAPEVINE_ROOT/order"', requires: ['first'] },
        { id: 'first', type: 'exec', command: 'echo first >> "$GRAPEVINE_ROOT/order"' }
      ]))
      expect(report.resources.map((r) => r.id)).toEqual(['first', 'second', 'third'])
      expect(await readFile(sb.at('/order'), 'utf8')).toBe('first\nsecond\nthird\n')
    })

    it('skips what depends on a failure, transitively, and applies the rest', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([
        { id: 'broken', type: 'exec', command: ['false'] },
        { id: 'child', type: 'file', path: '/child', content: 'x', requires: ['broken'] },
        { id: 'grandchild', type: 'file', path: '/grandchild', content: 'x', requires: ['child'] },
        { id: 'notified', type: 'exec', command: ['true'], refreshonly: true },
        { id: 'notifier', type: 'file', path: '/notifier', content: 'x', requires: ['broken'], notify: ['notified'] },
        { id: 'independent', type: 'file', path: '/independent', content: 'x' }
      ]))
      expect(result(report, 'broken').status).toBe('failed')
      expect(result(report, 'child')).toMatchObject({ status: 'skipped', reason: 'dependency "broken" failed' })
      expect(result(report, 'grandchild')).toMatchObject({ status: 'skipped', reason: 'dependency "child" was skipped because "broken" failed' })
      expect(result(report, 'notified').status).toBe('skipped')
      expect(result(report, 'independent')).toMatchObject({ action: 'create', status: 'ok' })
      expect(await exists(sb.at('/child'))).toBe(false)
      expect(await exists(sb.at('/independent'))).toBe(true)
      expect(report.counts).toMatchObject({ failed: 1, skipped: 4, changed: 1 })
      expect(report.outcome).toBe('changes-and-failures')
    })

    it('reports resources another policy keeps as conflicts and skips their dependents', async () => {
      const sb = sandbox()
      const report = await sb.apply(policyOf([
        { id: 'mine', type: 'file', path: '/shared', content: 'x' },
        { id: 'after', type: 'file', path: '/after', content: 'x', requires: ['mine'] }
      ]), { skip: new Map([['mine', '/shared is also managed by policy "base"']]) })
      expect(result(report, 'mine')).toMatchObject({ status: 'failed', error: { name: 'PathConflictError', message: '/shared is also managed by policy "base"' } })
      expect(result(report, 'after').status).toBe('skipped')
      expect(await exists(sb.at('/shared'))).toBe(false)
    })

    it('refuses a dependency cycle, naming it', async () => {
      const sb = sandbox()
      // The validator refuses cycles; a policy built in code can still have one.
      const p = policyOf([{ id: 'a', type: 'exec', command: ['true'] }, { id: 'b', type: 'exec', command: ['true'] }])
      p.resources[0]!.requires = ['b']
      p.resources[1]!.requires = ['a']
      await expect(sb.apply(p)).rejects.toThrow(expect.objectContaining({ name: 'DependencyCycleError', message: expect.stringContaining('a -> b -> a') }))
    })
  })

  describe('root', () => {
    it('refuses a path through a symlink that leaves the root, and applies the rest', async () => {
      const sb = sandbox()
      const outside = join(sb.root, '..', 'outside')
      await mkdir(outside)
      await symlink(outside, sb.at('/etc'))
      const report = await sb.apply(policyOf([
        { id: 'evil', type: 'file', path: '/etc/passwd', content: 'pwned' },
        { id: 'fine', type: 'file', path: '/fine', content: 'x' }
      ]))
      expect(result(report, 'evil')).toMatchObject({ status: 'failed', error: { name: 'PathEscapesRootError', message: expect.stringContaining('/etc is a symlink to') } })
      expect(await readdir(outside)).toEqual([])
      expect(result(report, 'fine').status).toBe('ok')
    })

    it('refuses paths with ..', async () => {
      const sb = sandbox()
      // Validation refuses ".." first (issue 15); the applier must still refuse a policy that skipped it.
      const policy = policyOf([{ id: 'up', type: 'file', path: '/escape', content: 'x' }])
      Object.assign(policy.resources[0] as object, { path: '/../../escape' })
      const report = await sb.apply(policy)
      expect(result(report, 'up')).toMatchObject({ status: 'failed', error: { name: 'PathEscapesRootError', message: expect.stringContaining('".." is not allowed') } })
    })

    it('refuses a creates or cwd outside the root', async () => {
      const sb = sandbox()
      await symlink('/', sb.at('/host'))
      const report = await sb.apply(policyOf([
        { id: 'cwd', type: 'exec', command: ['true'], cwd: '/host/tmp' },
        { id: 'creates', type: 'exec', command: ['true'], creates: '/host/etc/passwd' }
      ]))
      expect(summary(report)).toEqual(['cwd:none/failed', 'creates:none/failed'])
      expect(report.resources.map((r) => r.error?.name)).toEqual(['PathEscapesRootError', 'PathEscapesRootError'])
    })

    it('stops before starting when the root does not exist', async () => {
      await expect(applyPolicy(policyOf([]), { root: '/nonexistent/grapevine-root', stateDir: '/nonexistent/state', facts: { id: 'a', name: 'a', tags: {} } }))
        .rejects.toThrow(expect.objectContaining({ name: 'RootNotFoundError' }))
    })
  })

  describe('plan', () => {
    const everything = policyOf([
      { id: 'dir', type: 'directory', path: '/etc/app' },
      { id: 'etc', type: 'directory', path: '/etc' },
      { id: 'conf', type: 'config', path: '/etc/app/conf.json', format: 'json', data: { a: 1 }, mode: '0644', notify: ['reload'] },
      { id: 'link', type: 'symlink', path: '/etc/app/current', target: '/etc/app/conf.json' },
      { id: 'gone', type: 'file', path: '/old', ensure: 'absent' },
      { id: 'reload', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/reloaded"', refreshonly: true },
      { id: 'always', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/always"', cwd: '/etc/app' },
      { id: 'guarded', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/guarded"', unless: 'touch "$GRAPEVINE_ROOT/guard-ran"; false' }
    ])

    it('changes nothing, runs nothing, and says what apply would do', async () => {
      const sb = sandbox()
      await writeFile(sb.at('/old'), 'x')
      const plan = await sb.plan(everything)
      expect(summary(plan)).toEqual(['etc:create/ok', 'dir:create/ok', 'conf:create/ok', 'link:create/ok', 'gone:delete/ok', 'reload:run/ok', 'always:run/ok', 'guarded:run/unknown'])
      expect(result(plan, 'reload').reason).toBe('would run, notified by "conf"')
      expect(result(plan, 'guarded').reason).toContain('guarded by unless')
      expect(plan).toMatchObject({ dryRun: true, outcome: 'changes' })
      expect((await readdir(sb.root)).sort()).toEqual(['old'])
      expect(await exists(sb.state)).toBe(false)

      const applied = await sb.apply(everything)
      expect(summary(applied)).toEqual(summary(plan).map((s) => s.replace('run/unknown', 'run/ok')))
    })

    it('runs guards only when asked', async () => {
      const sb = sandbox()
      const plan = await sb.plan(everything, { runGuards: true })
      expect(result(plan, 'guarded')).toMatchObject({ action: 'run', status: 'ok' })
      expect(await exists(sb.at('/guard-ran'))).toBe(true)
      expect(await exists(sb.at('/guarded'))).toBe(false)
    })

    it('says a refresh-only exec would run only if notified when nothing changes', async () => {
      const sb = sandbox()
      await sb.apply(everything)
      const plan = await sb.plan(everything, { runGuards: true })
      expect(result(plan, 'reload')).toMatchObject({ action: 'none', reason: 'would run if notified by "conf"' })
    })

    it('shows diffs and mode changes for drift', async () => {
      const sb = sandbox()
      await sb.apply(everything)
      await writeFile(sb.at('/etc/app/conf.json'), '{"a": 2}\n')
      await chmod(sb.at('/etc/app/conf.json'), 0o600)
      const plan = await sb.plan(everything)
      expect(result(plan, 'conf')).toMatchObject({ action: 'modify', changes: [{ field: 'content' }, { field: 'mode', from: '0600', to: '0644' }] })
      expect(result(plan, 'conf').diff).toContain('-{"a": 2}\n+{\n+  "a": 1\n+}')
      expect(await readFile(sb.at('/etc/app/conf.json'), 'utf8')).toBe('{"a": 2}\n')
    })
  })

  it('is idempotent: a second apply changes nothing and runs no command', async () => {
    const sb = sandbox()
    const p = policyOf([
      { id: 'd', type: 'directory', path: '/d', mode: '0700' },
      { id: 'f', type: 'file', path: '/d/f', content: 'x', notify: ['r'] },
      { id: 'c', type: 'config', path: '/d/c.yaml', format: 'yaml', data: { a: [1, 2] } },
      { id: 'l', type: 'symlink', path: '/d/l', target: 'f' },
      { id: 'r', type: 'exec', command: 'echo >> "$GRAPEVINE_ROOT/runs"', refreshonly: true },
      { id: 'once', type: 'exec', command: 'echo >> "$GRAPEVINE_ROOT/runs"', creates: '/runs' }
    ])
    expect((await sb.apply(p)).outcome).toBe('changes')
    const runs = await readFile(sb.at('/runs'), 'utf8')
    const second = await sb.apply(p)
    expect(second.outcome).toBe('no-changes')
    expect(await readFile(sb.at('/runs'), 'utf8')).toBe(runs)
  })

  it('stops on abort: kills the running command and reports the rest as skipped', async () => {
    const sb = sandbox()
    const controller = new AbortController()
    const running = sb.apply(policyOf([
      { id: 'long', type: 'exec', command: 'touch "$GRAPEVINE_ROOT/started"; sleep 60' },
      { id: 'after', type: 'file', path: '/after', content: 'x' }
    ]), { signal: controller.signal })
    await expect.poll(async () => await exists(sb.at('/started')), { timeout: 20_000 }).toBe(true)
    controller.abort()
    const report = await running
    expect(summary(report)).toEqual(['long:run/failed', 'after:none/skipped'])
    expect(report).toMatchObject({ aborted: true, outcome: 'failures' })
    expect(await exists(sb.at('/after'))).toBe(false)
  })
})
