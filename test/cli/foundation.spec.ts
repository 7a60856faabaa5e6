import { readFile, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { MAX_POLICY_FILE_BYTES } from '../../src/policy/index.js'
import { REPO_ROOT, runCli } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'

// The foundation commands as a user runs them: validate, keygen, sign, verify, schema.
// Exit codes (src/cli/output.ts): 0 ok, 1 invalid or refused, 64 usage, 69 unavailable.

const WEB = join(REPO_ROOT, 'policies', 'web.yaml')
const APP = join(REPO_ROOT, 'policies', 'app.yaml')
const KEY_ID = /^ed25519:[A-Za-z0-9_-]{43}$/

beforeAll(async () => {
  // A clear failure instead of 40 confusing ones when dist/ was never built.
  await runCli(['--version']).then((r) => expect(r.code, r.stderr).toBe(0))
})

/** Runs keygen and returns the key file and its id. */
async function keygen (dir: string, name: string): Promise<{ file: string, pub: string, id: string }> {
  const file = join(dir, name)
  const r = await runCli(['keygen', '--out', file])
  expect(r.code, r.stderr).toBe(0)
  return { file, pub: `${file}.pub`, id: r.stdout.trim() }
}

async function sign (policy: string, key: string, version: number, out: string): Promise<void> {
  const r = await runCli(['sign', policy, '--key', key, '--version', String(version), '--out', out])
  expect(r.code, r.stderr).toBe(0)
}

describe('grapevine validate', () => {
  const dir = useTempDir()

  it('exits 0 and says ok for every example policy', async () => {
    const r = await runCli(['validate', 'policies/web.yaml', 'policies/app.yaml', 'policies/trust.yaml'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      'ok    policies/web.yaml: policy "web/nginx", 9 resources',
      'ok    policies/app.yaml: policy "app/settings", 4 resources',
      'ok    policies/trust.yaml: trust "grapevine/trust"'
    ])
  })

  it('exits 1 on a bad policy and prints file:line:col: path: message for each problem', async () => {
    const file = join(dir(), 'bad.yaml')
    await writeFile(file, [
      'name: web/bad',
      'resources:',
      '  - id: site',
      '    type: file',
      '    path: /etc/site.conf',
      '    mode: 644',
      '  - id: www',
      '    type: directory',
      '    path: /srv',
      '    colour: blue',
      ''
    ].join('\n'))
    const r = await runCli(['validate', file, WEB])
    expect(r.code).toBe(1)
    const out = r.stdout.trimEnd().split('\n')
    expect(out).toEqual([
      `error ${file}: 2 problems`,
      `  ${file}:6:11: resources[0].mode: expected an octal string like "0644", got 644`,
      `  ${file}:10:13: resources[1].colour: unknown field`,
      `ok    ${WEB}: policy "web/nginx", 9 resources`
    ])
  })

  it('prints results a script can read with --json', async () => {
    const file = join(dir(), 'bad.json')
    await writeFile(file, JSON.stringify({ name: 'a', resources: [{ id: 'x', type: 'pkg' }] }, null, 2))
    const r = await runCli(['validate', '--json', WEB, file])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout)).toEqual([
      { file: WEB, valid: true, name: 'web/nginx', kind: 'policy', resources: 9, problems: [] },
      {
        file,
        valid: false,
        problems: [{ path: 'resources[0].type', line: 6, column: 15, message: 'expected type to be file, directory, symlink, config, exec, package, service, user or group, got "pkg"' }]
      }
    ])
  })

  it('exits 69 for a file that does not exist, naming it (a file the command needs is unavailable)', async () => {
    const file = join(dir(), 'missing.yaml')
    const r = await runCli(['validate', file, WEB])
    expect(r.code).toBe(69)
    expect(r.stderr).toBe(`error: cannot read the policy file ${file}: no such file or directory [ENOENT]\n`)
  })

  it('exits 1 for a policy over the size limit, naming the file once', async () => {
    const file = join(dir(), 'huge.yaml')
    await writeFile(file, '')
    await truncate(file, MAX_POLICY_FILE_BYTES + 1)
    const r = await runCli(['validate', file])
    expect(r.code).toBe(1)
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      `error ${file}: 1 problem`,
      `  ${file}: ${MAX_POLICY_FILE_BYTES + 1} bytes is over the ${MAX_POLICY_FILE_BYTES}-byte limit for a policy`
    ])
  })

  it('exits 64 without a policy to validate', async () => {
    const r = await runCli(['validate'])
    expect(r.code).toBe(64)
    expect(r.stderr).toMatch(/missing required argument/)
  })
})

describe('grapevine keygen', () => {
  const dir = useTempDir()

  it('writes a 0600 PEM key and a .pub file, and prints the key id', async () => {
    const file = join(dir(), 'admin.key')
    const r = await runCli(['keygen', '--out', file])
    expect(r.code, r.stderr).toBe(0)
    const id = r.stdout.trim()
    expect(id).toMatch(KEY_ID)
    expect(r.stdout).toBe(`${id}\n`)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(await readFile(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PRIVATE KEY-----\n$/)
    expect(await readFile(`${file}.pub`, 'utf8')).toBe(`${id}\n`)
  })

  it('refuses to overwrite a key without --force, and replaces it with --force', async () => {
    const first = await keygen(dir(), 'admin.key')
    const pem = await readFile(first.file, 'utf8')

    const again = await runCli(['keygen', '--out', first.file])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain(`${first.file} already exists; use --force to overwrite it`)
    expect(again.stdout).toBe('')
    expect(await readFile(first.file, 'utf8')).toBe(pem)
    expect(await readFile(first.pub, 'utf8')).toBe(`${first.id}\n`)

    const forced = await runCli(['keygen', '--out', first.file, '--force'])
    expect(forced.code, forced.stderr).toBe(0)
    const id = forced.stdout.trim()
    expect(id).toMatch(KEY_ID)
    expect(id).not.toBe(first.id)
    expect(await readFile(first.pub, 'utf8')).toBe(`${id}\n`)
    expect((await stat(first.file)).mode & 0o777).toBe(0o600)
  })

  it('prints JSON with --json', async () => {
    const file = join(dir(), 'k')
    const r = await runCli(['keygen', '--out', file, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as { keyId: string, privateKey: string, publicKey: string }
    expect(out).toEqual({ keyId: expect.stringMatching(KEY_ID), privateKey: file, publicKey: `${file}.pub` })
  })
})

describe('grapevine sign and verify', () => {
  const dir = useTempDir()

  it('round-trips: sign writes an envelope, verify accepts it with exit 0', async () => {
    const admin = await keygen(dir(), 'admin.key')
    const env = join(dir(), 'web.env')
    const s = await runCli(['sign', WEB, '--key', admin.file, '--version', '3', '--out', env])
    expect(s.code, s.stderr).toBe(0)
    expect(s.stderr).toMatch(new RegExp(`^signed web/nginx v3 \\(sha256:[0-9a-f]{64}\\) with ${admin.id}; envelope [0-9a-f]{16}\\n$`))

    const envelope = JSON.parse(await readFile(env, 'utf8')) as Record<string, unknown>
    expect(envelope).toMatchObject({ format: 1, name: 'web/nginx', version: 3, signer: admin.id })

    const v = await runCli(['verify', env, '--trust', admin.pub])
    expect(v.code, v.stderr).toBe(0)
    expect(v.stdout).toMatch(/^valid web\/nginx v3 sha256:[0-9a-f]{64}\n {2}signed by ed25519:\S+ at \S+\n {2}envelope id [0-9a-f]{64}\n$/)

    const j = await runCli(['verify', env, '--trust', admin.id, '--json'])
    expect(j.code, j.stderr).toBe(0)
    expect(JSON.parse(j.stdout)).toMatchObject({ valid: true, name: 'web/nginx', version: 3, signer: admin.id, hash: envelope.hash })
  })

  it('signs to standard output when no --out is given, embedding source files', async () => {
    const admin = await keygen(dir(), 'admin.key')
    const r = await runCli(['sign', WEB, '--key', admin.file, '--version', '1'], { cwd: dir() })
    expect(r.code, r.stderr).toBe(0)
    const envelope = JSON.parse(r.stdout) as { policy: { resources: Array<{ id: string, content?: string, source?: string }> } }
    const site = envelope.policy.resources.find((x) => x.id === 'site')
    expect(site?.source).toBeUndefined()
    expect(site?.content).toBe(await readFile(join(REPO_ROOT, 'policies', 'files', 'app.conf'), 'utf8'))
  })

  it('refuses a tampered envelope with exit 1 and says why', async () => {
    const admin = await keygen(dir(), 'admin.key')
    const env = join(dir(), 'web.env')
    await sign(WEB, admin.file, 1, env)
    const tampered = join(dir(), 'tampered.env')
    const text = await readFile(env, 'utf8')
    expect(text).toContain('"port":8080')
    await writeFile(tampered, text.replace('"port":8080', '"port":8081'))

    const r = await runCli(['verify', tampered, '--trust', admin.pub])
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toBe(`refused ${tampered}: policy content of web/nginx v1 does not match the signed hash (hash-mismatch)\n`)

    const j = await runCli(['verify', tampered, '--trust', admin.pub, '--json'])
    expect(j.code).toBe(1)
    expect(JSON.parse(j.stdout)).toEqual({ valid: false, reason: 'hash-mismatch', error: expect.stringContaining('does not match the signed hash') })
  })

  it('refuses an envelope whose signer is not trusted', async () => {
    const admin = await keygen(dir(), 'admin.key')
    const other = await keygen(dir(), 'other.key')
    const env = join(dir(), 'web.env')
    await sign(WEB, admin.file, 1, env)
    const r = await runCli(['verify', env, '--trust', other.id])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`key ${admin.id} is not a root and not an admin in the trust policy (untrusted)`)
  })

  it('verifies with a root-signed trust policy that grants an admin a scope', async () => {
    const root = await keygen(dir(), 'root.key')
    const admin = await keygen(dir(), 'admin.key')
    const trustYaml = join(dir(), 'trust.yaml')
    await writeFile(trustYaml, `kind: trust\nname: grapevine/trust\nadmins:\n  - { name: web team, key: ${admin.id}, scopes: ["web/"] }\n`)
    const trustEnv = join(dir(), 'trust.env')
    await sign(trustYaml, root.file, 1, trustEnv)
    const webEnv = join(dir(), 'web.env')
    await sign(WEB, admin.file, 5, webEnv)

    const ok = await runCli(['verify', webEnv, '--trust', root.pub, '--trust-policy', trustEnv])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toContain(`valid web/nginx v5`)
    expect(ok.stdout).toContain(`signed by ${admin.id}`)

    // Without the trust policy, the admin is nobody.
    const bare = await runCli(['verify', webEnv, '--trust', root.pub])
    expect(bare.code).toBe(1)
    expect(bare.stderr).toContain('(untrusted)')

    // Outside its scope, the admin is refused.
    const appEnv = join(dir(), 'app.env')
    await sign(APP, admin.file, 1, appEnv)
    const out = await runCli(['verify', appEnv, '--trust', root.pub, '--trust-policy', trustEnv])
    expect(out.code).toBe(1)
    expect(out.stderr).toContain(`key ${admin.id} may publish "web/", not "app/settings" (out-of-scope)`)
  })

  it('refuses a trust policy signed by an admin: an admin cannot replace the roots', async () => {
    const root = await keygen(dir(), 'root.key')
    const admin = await keygen(dir(), 'admin.key')
    const trustYaml = join(dir(), 'trust.yaml')
    await writeFile(trustYaml, `kind: trust\nname: grapevine/trust\nadmins:\n  - { key: ${admin.id}, scopes: ["*"] }\n`)
    const forged = join(dir(), 'trust.env')
    await sign(trustYaml, admin.file, 2, forged)
    const webEnv = join(dir(), 'web.env')
    await sign(WEB, admin.file, 1, webEnv)

    const r = await runCli(['verify', webEnv, '--trust', root.id, '--trust-policy', forged])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`grapevine/trust must be signed by a root key; ${admin.id} is not one`)
    expect(r.stdout).toBe('')
  })

  it.each([
    ['a version that is not a number', ['--version', 'x'], /--version must be a positive integer: got "x"/],
    ['version zero', ['--version', '0'], /--version must be a positive integer: got "0"/],
    ['a fractional version', ['--version', '1.5'], /--version must be a positive integer: got "1.5"/],
    ['no version', [], /required option '--version <n>' not specified/]
  ])('sign exits 64 for %s', async (_, args, message) => {
    const admin = await keygen(dir(), 'admin.key')
    const r = await runCli(['sign', WEB, '--key', admin.file, ...args])
    expect(r.code).toBe(64)
    expect(r.stderr).toMatch(message)
    expect(r.stdout).toBe('')
  })

  it('sign exits 1 for an invalid policy, listing its problems', async () => {
    const admin = await keygen(dir(), 'admin.key')
    const bad = join(dir(), 'bad.yaml')
    await writeFile(bad, 'name: a\nresources:\n  - { id: f, type: file, path: /x, mode: 644 }\n')
    const out = join(dir(), 'bad.env')
    const r = await runCli(['sign', bad, '--key', admin.file, '--version', '1', '--out', out])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`${bad}:3:42: resources[0].mode: expected an octal string like "0644", got 644`)
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it.each([
    ['keygen', (d: string, _key: string) => ['keygen', '--out', join(d, 'no', 'such', 'dir', 'k')]],
    ['sign --out', (d: string, key: string) => ['sign', WEB, '--key', key, '--version', '1', '--out', join(d, 'no', 'such', 'dir', 'web.env')]]
  ])('%s exits 69 with a plain message when it cannot write its file', async (_, args) => {
    const admin = await keygen(dir(), 'admin.key')
    const r = await runCli(args(dir(), admin.file))
    expect(r.code).toBe(69)
    expect(r.stderr).toMatch(/^error: cannot write .*\/no\/such\/dir\/\S+: ENOENT\n$/)
  })

  it('verify exits 69 when the envelope file cannot be read', async () => {
    const r = await runCli(['verify', join(dir(), 'nope.env'), '--trust', `ed25519:${'A'.repeat(43)}`])
    expect(r.code).toBe(69)
    expect(r.stderr).toMatch(/cannot read .*nope\.env: ENOENT/)
  })
})

describe('grapevine schema', () => {
  it('prints the JSON Schema that policies/schema.json holds', async () => {
    const r = await runCli(['schema'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(await readFile(join(REPO_ROOT, 'policies', 'schema.json'), 'utf8'))
  })
})

describe('usage errors', () => {
  it('exits 64 for an unknown command', async () => {
    const r = await runCli(['frobnicate'])
    expect(r.code).toBe(64)
    expect(r.stderr).toContain("unknown command 'frobnicate'")
  })
})
