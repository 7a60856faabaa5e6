import { describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { REPO_ROOT, runCli } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'

// --trust takes a public key. Given the admin's private key file, every command that reads
// --trust (or an agent config's `trust:`) refuses it with one line that says why: a node
// holding the private key lets anyone who reads its config sign policies.
const dir = useTempDir('grapevine-trust-flag-')
const WHY = "is a private key: give its public key instead (the .pub file `grapevine keygen` wrote beside it, or its key id ed25519:…): --trust takes the admin's public key, and giving a node the private key would let anyone who reads the node's config sign policies"

async function keygen (): Promise<{ key: string, pub: string }> {
  const key = join(dir(), 'admin.key')
  const r = await runCli(['keygen', '--out', key])
  expect(r.code, r.stderr).toBe(0)
  return { key, pub: `${key}.pub` }
}

function agentArgs (): string[] {
  return ['agent', '--state', join(dir(), 'state'), '--root', join(dir(), 'root'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-api']
}

describe('--trust given a private key file', () => {
  it('agent --trust refuses it: exit 64, one line saying why, nothing started', async () => {
    const { key } = await keygen()
    const r = await runCli([...agentArgs(), '--trust', key])
    expect(r.code).toBe(64)
    expect(r.stderr).toBe(`error: --trust: ${key} ${WHY}\n`)
    expect(existsSync(join(dir(), 'state', 'agent.lock'))).toBe(false)
  })

  it('an agent config file\'s trust: refuses it the same way, naming the file', async () => {
    const { key } = await keygen()
    const config = join(dir(), 'agent.yaml')
    await writeFile(config, `trust:\n  - ${key}\n`)
    const r = await runCli([...agentArgs(), '--config', config])
    expect(r.code).toBe(64)
    expect(r.stderr).toBe(`error: ${config}: trust: ${key} ${WHY}\n`)
  })

  it('verify --trust refuses it with exit 64; the .pub beside it verifies', async () => {
    const { key, pub } = await keygen()
    const env = join(dir(), 'web.env')
    const s = await runCli(['sign', join(REPO_ROOT, 'policies', 'web.yaml'), '--key', key, '--version', '1', '--out', env])
    expect(s.code, s.stderr).toBe(0)
    const refused = await runCli(['verify', env, '--trust', key])
    expect(refused.code).toBe(64)
    expect(refused.stderr).toBe(`error: --trust: ${key} ${WHY}\n`)
    const ok = await runCli(['verify', env, '--trust', pub])
    expect(ok.code, ok.stderr).toBe(0)
  })
})
