import { describe, expect, it } from 'vitest'
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { hostPath, isInside, RootGuard } from '../../src/apply/paths.js'
import { useTempDir } from '../helpers/tmp.js'

describe('hostPath', () => {
  it.each([
    ['/', '/etc/motd', '/etc/motd'],
    ['/srv/root', '/etc/motd', '/srv/root/etc/motd'],
    ['/srv/root', '/etc//nginx/./x.conf', '/srv/root/etc/nginx/x.conf'],
    ['/srv/root', '/etc/nginx/', '/srv/root/etc/nginx'],
    ['/srv/root', '/', '/srv/root']
  ])('under %s, %s is %s', (root, path, expected) => {
    expect(hostPath(root, path)).toBe(expected)
  })

  it.each(['/../etc/passwd', '/etc/../../x', '/a/..', 'relative/path'])('refuses %s', (path) => {
    expect(() => hostPath('/srv/root', path)).toThrow(expect.objectContaining({ name: 'PathEscapesRootError' }))
  })

  it.each([
    ['/srv/root', '/srv/root', true],
    ['/srv/root', '/srv/root/x', true],
    ['/srv/root', '/srv/rootkit', false],
    ['/srv/root', '/srv', false],
    ['/', '/anything', true]
  ])('isInside(%s, %s) is %s', (root, p, inside) => {
    expect(isInside(root, p)).toBe(inside)
  })
})

describe('RootGuard', () => {
  const dir = useTempDir('grapevine-paths-')

  it('refuses a path whose directory is a symlink out of the root', async () => {
    const root = join(dir(), 'root')
    await mkdir(join(root, 'etc'), { recursive: true })
    await mkdir(join(dir(), 'outside'))
    await symlink(join(dir(), 'outside'), join(root, 'etc', 'evil'))
    const guard = await RootGuard.open(root)
    await expect(guard.check('/etc/evil/passwd', guard.host('/etc/evil/passwd'))).rejects.toThrow(/\/etc\/evil is a symlink to .*outside, outside the root/)
  })

  it('allows a symlink that stays inside the root', async () => {
    const root = join(dir(), 'root')
    await mkdir(join(root, 'opt', 'app-1.2'), { recursive: true })
    await symlink(join(root, 'opt', 'app-1.2'), join(root, 'opt', 'app'))
    const guard = await RootGuard.open(root)
    expect(await guard.check('/opt/app/config', guard.host('/opt/app/config'))).toBe(true)
  })

  it('says when the parent directory does not exist', async () => {
    const root = join(dir(), 'root')
    await mkdir(root)
    const guard = await RootGuard.open(root)
    expect(await guard.check('/etc/motd', guard.host('/etc/motd'))).toBe(false)
    await mkdir(join(root, 'etc'))
    // Missing is not remembered: a directory resource may create it during the apply.
    expect(await guard.check('/etc/motd', guard.host('/etc/motd'))).toBe(true)
  })

  it('refuses a root that does not exist', async () => {
    await expect(RootGuard.open(join(dir(), 'nope'))).rejects.toThrow(expect.objectContaining({ name: 'RootNotFoundError' }))
  })
})
