import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'

const policy = (resource: string): string => `name: web/site\nresources:\n  - id: f\n    type: file\n${resource}`

describe('grapevine validate: policies mean what they say (issue 15)', () => {
  const dir = useTempDir()

  it('refuses /opt/../../etc/evil, as plan and apply do, with the line', async () => {
    const file = join(dir(), 'p.yaml')
    await writeFile(file, policy('    path: /opt/../../etc/evil\n    content: x\n'))
    const r = await runCli(['validate', file])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`${file}:5:11: resources[0].path: ".." is not allowed in a managed path`)
  })

  it('refuses a NUL byte in a path at validation', async () => {
    const file = join(dir(), 'p.json')
    await writeFile(file, JSON.stringify({ name: 'web/site', resources: [{ id: 'f', type: 'file', path: '/etc/a\u0000b', content: 'x' }] }))
    const r = await runCli(['validate', file])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/resources\[0\]\.path: a NUL byte cannot be part of a file name/)
  })

  it.each([
    ['an absolute source', async (_d: string) => '/etc/passwd', /source "\/etc\/passwd" is outside the policy file's directory .*never an absolute path/],
    ['a source climbing out with ..', async (_d: string) => '../../../../etc/passwd', /source "\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd" is outside the policy file's directory .*"\.\." climbs out/],
    ['a symlink resolving out', async (d: string) => {
      await writeFile(join(d, 'secret'), 'root:x:0:0\n')
      await symlink(join(d, 'secret'), join(d, 'pol', 'innocent.conf'))
      return 'innocent.conf'
    }, /source "innocent\.conf" is outside the policy file's directory .*resolves through a symlink/]
  ])('refuses %s, naming the resource and line; --allow-source-outside lets it in', async (_, setup, message) => {
    await mkdir(join(dir(), 'pol'))
    const source = await setup(dir())
    const file = join(dir(), 'pol', 'p.yaml')
    await writeFile(file, policy(`    path: /etc/x\n    source: ${source}\n`))
    const r = await runCli(['validate', file])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`${file}:6:13: resources[0].source: resource "f": `)
    expect(r.stdout).toMatch(message)
    expect(r.stdout).toContain('--allow-source-outside')

    const allowed = await runCli(['validate', '--allow-source-outside', file])
    expect(allowed.stdout).toContain(`ok    ${file}: policy "web/site", 1 resource`)
    expect(allowed.code).toBe(0)
  })

  it('plan refuses a source outside the policy directory too, before reading it', async () => {
    await mkdir(join(dir(), 'pol'))
    await mkdir(join(dir(), 'root'))
    const file = join(dir(), 'pol', 'p.yaml')
    await writeFile(file, policy('    path: /etc/x\n    source: /etc/hostname\n'))
    const r = await runCli(['plan', file, '--root', join(dir(), 'root'), '--state', join(dir(), 'state')])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/resources\[0\]\.source: resource "f": source "\/etc\/hostname" is outside the policy file's directory/)
  })

  it('a missing source is a named problem with the resource and line, not a raw ENOENT', async () => {
    const file = join(dir(), 'p.yaml')
    await writeFile(file, policy('    path: /etc/x\n    source: files/nope.conf\n'))
    const r = await runCli(['validate', file])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`${file}:6:13: resources[0].source: resource "f": source "files/nope.conf" cannot be embedded: no such file: ${join(dir(), 'files', 'nope.conf')}`)
    expect(r.stdout).not.toContain('ENOENT')
  })
})
