import { mkdir, readFile, readdir, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  InvalidPolicyError, MAX_POLICY_FILE_BYTES, MAX_SOURCE_BYTES, PolicyTooLargeError, loadPolicyFile, renderString, type FileResource, type Policy
} from '../../src/policy/index.js'
import { generateSigningKey, validateEnvelope } from '../../src/envelope/index.js'
import { TrustStore } from '../../src/trust/index.js'
import { REPO_ROOT } from '../helpers/cli.js'
import { signed } from '../helpers/envelope.js'
import { useTempDir } from '../helpers/tmp.js'

const EXAMPLES = join(REPO_ROOT, 'policies')

async function problemsOf (file: string): Promise<InvalidPolicyError['problems']> {
  const err = await loadPolicyFile(file).then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(InvalidPolicyError)
  return (err as InvalidPolicyError).problems
}

const fileResource = (p: Policy, i: number): FileResource => {
  if (p.kind !== 'policy') throw new Error('expected an ordinary policy')
  const r = p.resources[i]
  if (r?.type !== 'file') throw new Error(`resources[${i}] is not a file`)
  return r
}

describe('loadPolicyFile', () => {
  const dir = useTempDir()

  it('embeds a UTF-8 source file beside the policy as content, wherever the caller runs', async () => {
    await mkdir(join(dir(), 'files'))
    await writeFile(join(dir(), 'files', 'site.conf'), 'listen {{ vars.port }}; # café\n')
    await writeFile(join(dir(), 'p.yaml'), 'name: a\nvars: { port: 80 }\nresources:\n  - { id: f, type: file, path: /x, source: files/site.conf, mode: "0644" }\n')
    const p = await loadPolicyFile(join(dir(), 'p.yaml'))
    expect(fileResource(p, 0)).toEqual({
      id: 'f', type: 'file', path: '/x', mode: '0644', ensure: 'present', content: 'listen {{ vars.port }}; # café\n', encoding: 'utf8', template: true
    })
    expect(fileResource(p, 0)).not.toHaveProperty('source')
  })

  it('embeds a source that is not UTF-8 as base64, byte for byte, and never templates it', async () => {
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff, 0x7b, 0x7b])
    await writeFile(join(dir(), 'logo.png'), bytes)
    await writeFile(join(dir(), 'p.yaml'), 'name: a\nresources:\n  - { id: f, type: file, path: /logo.png, source: logo.png }\n')
    const r = fileResource(await loadPolicyFile(join(dir(), 'p.yaml')), 0)
    expect(r).toMatchObject({ encoding: 'base64', template: false })
    expect(Buffer.from(r.content!, 'base64')).toEqual(bytes)
  })

  it.each([
    ['a missing source', async (d: string) => { await writeFile(join(d, 'p.yaml'), 'name: a\nresources:\n  - { id: f, type: file, path: /x, source: nope.conf }\n') },
      /^resource "f": source "nope\.conf" cannot be embedded: no such file: \/.*\/nope\.conf$/],
    ['a source that is a directory', async (d: string) => {
      await mkdir(join(d, 'sub'))
      await writeFile(join(d, 'p.yaml'), 'name: a\nresources:\n  - { id: f, type: file, path: /x, source: sub }\n')
    }, /^resource "f": source "sub" cannot be embedded: \/.*\/sub is not a regular file$/],
    ['a source over the size limit', async (d: string) => {
      await writeFile(join(d, 'big.bin'), '')
      await truncate(join(d, 'big.bin'), MAX_SOURCE_BYTES + 1)
      await writeFile(join(d, 'p.yaml'), 'name: a\nresources:\n  - { id: f, type: file, path: /x, source: big.bin }\n')
    }, new RegExp(`${MAX_SOURCE_BYTES + 1} bytes is over the ${MAX_SOURCE_BYTES}-byte limit for a source$`)],
    ['a template error inside a source', async (d: string) => {
      await writeFile(join(d, 't.conf'), 'upstream {{ vars.upstream }};\n')
      await writeFile(join(d, 'p.yaml'), 'name: a\nvars: { port: 1 }\nresources:\n  - { id: f, type: file, path: /x, source: t.conf }\n')
    }, /^in "t\.conf": \{\{ vars\.upstream \}\} names nothing: the policy's vars have no "upstream"$/]
  ])('reports %s against resources[0].source', async (_, setup, message) => {
    await setup(dir())
    const problems = await problemsOf(join(dir(), 'p.yaml'))
    expect(problems).toHaveLength(1)
    // On the line of the resource's source, whichever line that is.
    expect(problems[0]).toMatchObject({ path: 'resources[0].source', line: expect.any(Number), message: expect.stringMatching(message) })
  })

  it('leaves a source with template: false alone, braces and all', async () => {
    await writeFile(join(dir(), 'chart.tpl'), '{{ .Values.image }}\n')
    await writeFile(join(dir(), 'p.yaml'), 'name: a\nresources:\n  - { id: f, type: file, path: /x, source: chart.tpl, template: false }\n')
    expect(fileResource(await loadPolicyFile(join(dir(), 'p.yaml')), 0).content).toBe('{{ .Values.image }}\n')
  })

  it('refuses a missing policy file with a message naming it', async () => {
    const file = join(dir(), 'missing.yaml')
    expect(await problemsOf(file)).toEqual([{ path: '', message: 'cannot read the policy file: ENOENT' }])
  })

  it('refuses a policy file over the limit without reading it', async () => {
    const file = join(dir(), 'huge.yaml')
    await writeFile(file, '')
    await truncate(file, MAX_POLICY_FILE_BYTES + 1)
    await expect(loadPolicyFile(file)).rejects.toThrow(PolicyTooLargeError)
  })
})

describe('example policies', async () => {
  const files = (await readdir(EXAMPLES)).filter((f) => /\.(ya?ml|json)$/.test(f) && f !== 'schema.json').sort()

  it('include the documented examples', () => {
    expect(files).toEqual(expect.arrayContaining(['app.yaml', 'trust.yaml', 'web.yaml']))
  })

  it.each(files)('%s validates, signs and verifies', async (name) => {
    const policy = await loadPolicyFile(join(EXAMPLES, name))
    const root = generateSigningKey()
    const env = validateEnvelope(signed(policy, { key: root }), new TrustStore([root.id]))
    expect(env.policy).toEqual(policy)
  })

  it('web.yaml embeds files/app.conf and renders for a node', async () => {
    const web = await loadPolicyFile(join(EXAMPLES, 'web.yaml'))
    expect(web.kind === 'policy' && web.vars).toEqual({ port: 8080, upstream: '127.0.0.1:3000' })
    const site = fileResource(web, web.kind === 'policy' ? web.resources.findIndex((r) => r.id === 'site') : -1)
    expect(site.content).toBe(await readFile(join(EXAMPLES, 'files', 'app.conf'), 'utf8'))
    const rendered = renderString(site.content!, { node: { id: 'x', name: 'web-1', tags: { role: 'web' } }, vars: { port: 8080, upstream: '127.0.0.1:3000' } }, 'site')
    expect(rendered).toContain('listen 8080;')
    expect(rendered).toContain('server_name web-1;')
    expect(rendered).toContain('proxy_pass http://127.0.0.1:3000;')
  })

  it('trust.yaml is a trust policy whose keys are well-formed placeholders', async () => {
    const trust = await loadPolicyFile(join(EXAMPLES, 'trust.yaml'))
    if (trust.kind !== 'trust') throw new Error('policies/trust.yaml must be kind: trust')
    expect(trust.admins.length).toBeGreaterThan(0)
    for (const a of [...trust.admins.map((x) => x.key), ...trust.revoked]) expect(a).toMatch(/^ed25519:REPLACE-/)
  })
})

describe('loadPolicyFile with a cache directory', () => {
  const dir = useTempDir()
  const policyText = (content: string): string => `name: app/x\nresources:\n  - { id: f, type: file, path: /x, content: ${JSON.stringify(content)} }\n`
  const entries = async (): Promise<string[]> => await readdir(join(dir(), 'cache'))

  it('gives the same policy as a fresh load, and reads the entry on the next load of the same text', async () => {
    const file = join(dir(), 'p.yaml')
    await writeFile(file, policyText('one'))
    const fresh = await loadPolicyFile(file)
    const cacheDir = join(dir(), 'cache')
    expect(await loadPolicyFile(file, { cacheDir })).toEqual(fresh)
    const [entry] = await entries()
    expect(entry).toBeDefined()
    // Change the policy inside the entry (not the file): the next load shows it, so it came from the cache.
    const path = join(cacheDir, entry as string)
    const stored = JSON.parse(await readFile(path, 'utf8')) as { policy: Policy }
    fileResource(stored.policy, 0).content = 'from the cache'
    await writeFile(path, JSON.stringify(stored))
    expect(fileResource(await loadPolicyFile(file, { cacheDir }), 0).content).toBe('from the cache')
  })

  it('validates again when the file changes, keeping one entry per file', async () => {
    const file = join(dir(), 'p.yaml')
    const cacheDir = join(dir(), 'cache')
    await writeFile(file, policyText('one'))
    await loadPolicyFile(file, { cacheDir })
    await writeFile(file, policyText('two'))
    expect(fileResource(await loadPolicyFile(file, { cacheDir }), 0).content).toBe('two')
    expect(await entries()).toHaveLength(1)
    // An invalid edit is reported as always, never served from the cache.
    await writeFile(file, 'name: app/x\nresources:\n  - { id: f, type: file, path: /x, mode: 644 }\n')
    const err = await loadPolicyFile(file, { cacheDir }).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidPolicyError)
    expect((err as InvalidPolicyError).message).toContain('p.yaml:3:')
  })

  it('ignores a torn or garbage entry, and loads without a writable cache', async () => {
    const file = join(dir(), 'p.yaml')
    const cacheDir = join(dir(), 'cache')
    await writeFile(file, policyText('one'))
    await loadPolicyFile(file, { cacheDir })
    const [entry] = await entries()
    await writeFile(join(cacheDir, entry as string), '{"build": "x", "sha')
    expect(fileResource(await loadPolicyFile(file, { cacheDir }), 0).content).toBe('one')
    // The cache path is a file, so no directory can be made there.
    await writeFile(join(dir(), 'not-a-dir'), '')
    expect(fileResource(await loadPolicyFile(file, { cacheDir: join(dir(), 'not-a-dir') }), 0).content).toBe('one')
  })
})

describe('loadPolicyFile with a read-only cache', () => {
  const dir = useTempDir()

  it('uses an entry but writes none (plan changes nothing on disk)', async () => {
    const file = join(dir(), 'p.yaml')
    await writeFile(file, 'name: app/x\nresources: []\n')
    const cacheDir = join(dir(), 'cache')
    expect(await loadPolicyFile(file, { cacheDir, readOnlyCache: true })).toMatchObject({ name: 'app/x' })
    await expect(readdir(cacheDir)).rejects.toThrow(/ENOENT/)
  })
})
