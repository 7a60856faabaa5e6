import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { accountDb, isCryptHash, parseGroup, parsePasswd, parseShadow, planGroup, planUser, stderrTail, toolArgv, type AccountDb } from '../../src/apply/accounts/index.js'
import type { GroupResource, UserResource } from '../../src/policy/index.js'
import { policyOf } from './helpers.js'

const user = (fields: Record<string, unknown>): UserResource => policyOf([{ id: 'u', type: 'user', name: 'app', ...fields }]).resources[0] as UserResource
const group = (fields: Record<string, unknown>): GroupResource => policyOf([{ id: 'g', type: 'group', name: 'ops', ...fields }]).resources[0] as GroupResource

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000:App:/home/app:/bin/sh\n'
const GROUP = 'root:x:0:\nusers:x:100:\napp:x:1000:\nops:x:1500:app\nweb:x:1600:app,other\nwheel:x:10:\n'
const SHADOW = 'root:*:19000:0:99999:7:::\napp:$6$salt$oldhash:19000:0:99999:7:::\n'
const db = (): AccountDb => accountDb(PASSWD, GROUP, SHADOW)

describe('the account files', () => {
  it('are read field by field; comments, blanks, NIS entries and broken lines are skipped; the first of a name wins', () => {
    const passwd = parsePasswd('# c\n\n+nis\nroot:x:0:0:root:/root:/bin/bash\nbad:x:a:0::/:/bin/sh\nshort:x:1:1\nroot:x:5:5:again:/:/bin/sh\nweb:!:33:33:w,x:/var/www:/usr/sbin/nologin\n')
    expect([...passwd.values()]).toEqual([
      { name: 'root', passwd: 'x', uid: 0, gid: 0, comment: 'root', home: '/root', shell: '/bin/bash' },
      { name: 'web', passwd: '!', uid: 33, gid: 33, comment: 'w,x', home: '/var/www', shell: '/usr/sbin/nologin' }
    ])
    expect([...parseGroup('ops:x:1500:a,b\nempty:x:7:\nbad:x::\n').values()]).toEqual([
      { name: 'ops', gid: 1500, members: ['a', 'b'] },
      { name: 'empty', gid: 7, members: [] }
    ])
    expect(parseShadow('root:*:1::::::\napp:$y$j9T$s$h:1::::::\n')).toEqual(new Map([['root', '*'], ['app', '$y$j9T$s$h']]))
  })

  it('take the hash from shadow when passwd says x, from passwd when a root keeps no shadow', () => {
    expect(db().users.get('app')?.hash).toBe('$6$salt$oldhash')
    expect(accountDb('app:!:1000:1000::/home/app:/bin/sh\n', GROUP, undefined).users.get('app')?.hash).toBe('!')
    expect(accountDb(PASSWD, GROUP, undefined).users.get('app')?.hash).toBe('')
  })

  it('read back what any list of users and groups writes (property)', () => {
    const name = fc.stringMatching(/^[a-z_][a-z0-9_-]{0,15}$/)
    const field = fc.stringMatching(/^[^:\n]{0,20}$/)
    const id = fc.integer({ min: 0, max: 4_294_967_294 })
    const entry = fc.record({ name, uid: id, gid: id, comment: field, home: field, shell: field })
    fc.assert(fc.property(fc.uniqueArray(entry, { selector: (e) => e.name, maxLength: 8 }), (users) => {
      const text = users.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.comment}:${u.home}:${u.shell}`).join('\n')
      const parsed = parsePasswd(text)
      expect([...parsed.values()].map(({ passwd: _p, ...u }) => u)).toEqual(users)
      const groups = parseGroup(users.map((u) => `${u.name}:x:${u.gid}:${users.map((m) => m.name).join(',')}`).join('\n'))
      for (const u of users) expect(groups.get(u.name)).toEqual({ name: u.name, gid: u.gid, members: users.map((m) => m.name) })
    }))
  })
})

describe('isCryptHash', () => {
  it.each([
    ['$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7', true],
    ['$6$rounds=5000$saltsalt$abcdefghijklmnopqrstuv./0123456789', true],
    ['$2b$10$abcdefghijklmnopqrstuu', true],
    ['!$6$salt$hash', true],
    ['!', true],
    ['*', true],
    ['!*', true],
    ['', false],
    ['hunter2', false],
    ['!hunter2', false],
    ['$6$salt$hash:root', false],
    ['$6$salt$hash\nroot:$6$x$y', false],
    ['$6$ salt$hash', false],
    ['$$hash', false]
  ])('%j → %s', (value, ok) => {
    expect(isCryptHash(value)).toBe(ok)
  })

  it('never passes a ":" or a line break, which would split chpasswd\'s input into another account (property)', () => {
    fc.assert(fc.property(fc.string(), fc.constantFrom(':', '\n', '\r'), fc.string(), (a, bad, b) => {
      expect(isCryptHash(`$6$${a}${bad}${b}`)).toBe(false)
    }))
  })
})

describe('planUser', () => {
  it('creates with every field the policy names, and -M unless it manages the home', () => {
    const plan = planUser(user({ name: 'svc', uid: 990, gid: 'users', groups: ['ops', 'web'], home: '/srv/svc', shell: '/usr/sbin/nologin', system: true, comment: 'Service' }), '$6$s$h', db())
    expect(plan.action).toBe('create')
    expect(plan.calls).toEqual([
      { tool: 'useradd', args: ['-r', '-u', '990', '-g', 'users', '-G', 'ops,web', '-d', '/srv/svc', '-M', '-s', '/usr/sbin/nologin', '-c', 'Service', 'svc'], timeoutMs: expect.any(Number) },
      { tool: 'chpasswd', args: ['-e'], input: 'svc:$6$s$h\n', timeoutMs: expect.any(Number) }
    ])
    expect(plan.changes).toEqual([
      { field: 'system', to: 'yes' }, { field: 'uid', to: '990' }, { field: 'gid', to: 'users' }, { field: 'groups', to: 'ops, web' },
      { field: 'home', to: '/srv/svc' }, { field: 'shell', to: '/usr/sbin/nologin' }, { field: 'comment', to: 'Service' }, { field: 'password', to: '(set)' }
    ])
    expect(planUser(user({ name: 'svc', manage_home: true }), undefined, db()).calls[0]?.args).toEqual(['-m', 'svc'])
  })

  it('joins the group of its own name when one exists and the policy names no gid (useradd would refuse)', () => {
    const d = db()
    d.users.delete('app')
    expect(planUser(user({}), undefined, d).calls[0]?.args).toEqual(['-g', 'app', '-M', 'app'])
  })

  it('modifies only what differs, from → to, in one usermod', () => {
    const plan = planUser(user({ uid: 1001, gid: 'users', shell: '/bin/bash', comment: 'App', home: '/home/app' }), undefined, db())
    expect(plan.action).toBe('modify')
    expect(plan.changes).toEqual([
      { field: 'uid', from: '1000', to: '1001' }, { field: 'gid', from: 'app', to: 'users' }, { field: 'shell', from: '/bin/sh', to: '/bin/bash' }
    ])
    expect(plan.calls).toEqual([{ tool: 'usermod', args: ['-u', '1001', '-g', 'users', '-s', '/bin/bash', 'app'], timeoutMs: expect.any(Number) }])
  })

  it('compares a gid by number when the policy gives one, and shows numbers then', () => {
    expect(planUser(user({ gid: 1000 }), undefined, db()).action).toBe('none')
    expect(planUser(user({ gid: 'app' }), undefined, db()).action).toBe('none')
    expect(planUser(user({ gid: 100 }), undefined, db()).changes).toEqual([{ field: 'gid', from: '1000', to: '100' }])
  })

  it('adds missing groups (additive) and keeps the others; exact sets the list', () => {
    const additive = planUser(user({ groups: ['wheel', 'ops'] }), undefined, db())
    expect(additive.changes).toEqual([{ field: 'groups', from: 'ops, web', to: 'ops, web, wheel' }])
    expect(additive.calls[0]?.args).toEqual(['-a', '-G', 'wheel', 'app'])
    expect(planUser(user({ groups: ['ops'] }), undefined, db()).action).toBe('none')

    const exact = planUser(user({ groups: ['wheel', 'ops'], membership: 'exact' }), undefined, db())
    expect(exact.changes).toEqual([{ field: 'groups', from: 'ops, web', to: 'ops, wheel' }])
    expect(exact.calls[0]?.args).toEqual(['-G', 'wheel,ops', 'app'])
    expect(planUser(user({ groups: [], membership: 'exact' }), undefined, db()).calls[0]?.args).toEqual(['-G', '', 'app'])
    expect(planUser(user({ groups: ['web', 'ops'], membership: 'exact' }), undefined, db()).action).toBe('none')
  })

  it('moves the home only when it manages it', () => {
    const moved = planUser(user({ home: '/srv/app', manage_home: true }), undefined, db())
    expect(moved.calls[0]?.args).toEqual(['-d', '/srv/app', '-m', 'app'])
    expect(moved.movesHomeTo).toBe('/srv/app')
    const pointed = planUser(user({ home: '/srv/app' }), undefined, db())
    expect(pointed.calls[0]?.args).toEqual(['-d', '/srv/app', 'app'])
    expect(pointed.movesHomeTo).toBeUndefined()
  })

  it('sets a new password hash through chpasswd\'s stdin and reports "(changed)", never the hash', () => {
    const plan = planUser(user({}), '$6$salt$newhash', db())
    expect(plan.changes).toEqual([{ field: 'password', to: '(changed)' }])
    expect(plan.calls).toEqual([{ tool: 'chpasswd', args: ['-e'], input: 'app:$6$salt$newhash\n', timeoutMs: expect.any(Number) }])
    expect(planUser(user({}), '$6$salt$oldhash', db()).action).toBe('none')
  })

  it('deletes with userdel, -r only when it manages the home; an absent user is left alone', () => {
    expect(planUser(user({ ensure: 'absent' }), undefined, db()).calls[0]?.args).toEqual(['app'])
    const removed = planUser(user({ ensure: 'absent', manage_home: true }), undefined, db())
    expect(removed.calls[0]?.args).toEqual(['-r', 'app'])
    expect(removed.changes).toEqual([{ field: 'ensure', from: 'present', to: 'absent' }, { field: 'home', from: '/home/app', to: '(removed)' }])
    expect(planUser(user({ name: 'ghost', ensure: 'absent' }), undefined, db())).toEqual({ action: 'none', changes: [], calls: [] })
  })

  it('leaves a user as the policy says with nothing to do', () => {
    expect(planUser(user({ uid: 1000, gid: 'app', groups: ['web', 'ops'], home: '/home/app', shell: '/bin/sh', comment: 'App' }), '$6$salt$oldhash', db())).toEqual({ action: 'none', changes: [], calls: [] })
  })
})

describe('planGroup', () => {
  it('creates, changes the gid, deletes, or does nothing', () => {
    const d = db()
    expect(planGroup(group({ name: 'dev', gid: 2000, system: true }), d)).toMatchObject({ action: 'create', changes: [{ field: 'system', to: 'yes' }, { field: 'gid', to: '2000' }], calls: [{ tool: 'groupadd', args: ['-r', '-g', '2000', 'dev'] }] })
    expect(planGroup(group({ gid: 1501 }), d)).toMatchObject({ action: 'modify', changes: [{ field: 'gid', from: '1500', to: '1501' }], calls: [{ tool: 'groupmod', args: ['-g', '1501', 'ops'] }] })
    expect(planGroup(group({ ensure: 'absent' }), d)).toMatchObject({ action: 'delete', calls: [{ tool: 'groupdel', args: ['ops'] }] })
    expect(planGroup(group({ gid: 1500 }), d)).toEqual({ action: 'none', changes: [], calls: [] })
    expect(planGroup(group({}), d).action).toBe('none')
    expect(planGroup(group({ name: 'ghost', ensure: 'absent' }), d).action).toBe('none')
  })
})

describe('toolArgv', () => {
  it('chroots into a sandbox root with --root and runs plainly on /', () => {
    const call = { tool: 'groupadd' as const, args: ['ops'], timeoutMs: 1 }
    expect(toolArgv(call, '/tmp/box')).toEqual(['--root', '/tmp/box', 'ops'])
    expect(toolArgv(call, '/')).toEqual(['ops'])
  })
})

describe('stderrTail', () => {
  it('keeps the last bytes, trimmed, and shows a password hash a tool might echo as (secret)', () => {
    expect(stderrTail('  useradd: UID 33 is not unique\n', undefined)).toBe('useradd: UID 33 is not unique')
    expect(stderrTail('chpasswd: bad line app:$6$s$h\n', '$6$s$h')).toBe('chpasswd: bad line app:(secret)')
    expect(stderrTail(`${'x'.repeat(100)}end`, undefined, 10)).toBe('…xxxxxxxend')
  })
})
