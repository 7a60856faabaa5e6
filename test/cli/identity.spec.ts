import { describe, expect, it } from 'vitest'
import { mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'
import { startMesh } from '../node/fixtures.js'

describe('grapevine identity', () => {
  const dir = useTempDir('grapevine-identity-')

  it('makes the identity key in a new state directory (0600, directory 0700), then prints the same peer id', async () => {
    const state = join(dir(), 'new', 'state')
    const made = await runCli(['identity', '--state', state, '--json'])
    expect(made.code, made.stderr).toBe(0)
    const first = JSON.parse(made.stdout) as { peerId: string, stateDir: string, created: boolean }
    expect(first).toMatchObject({ stateDir: state, created: true })
    expect(first.peerId).toMatch(/^12D3KooW/)
    expect((await stat(join(state, 'identity.key'))).mode & 0o777).toBe(0o600)
    expect((await stat(state)).mode & 0o777).toBe(0o700)
    const again = await runCli(['identity', '--state', state])
    expect(again).toMatchObject({ code: 0, stdout: `${first.peerId}\n`, stderr: '' })
  })

  it('prints a running agent\'s peer id from its state directory', async () => {
    const mesh = await startMesh(1)
    try {
      const r = await runCli(['identity', '--state', join(mesh.dir, 'node-0', 'state')])
      expect(r).toMatchObject({ code: 0, stdout: `${mesh.agents[0]!.peerId.toString()}\n` })
    } finally {
      await mesh.stop()
    }
  })

  it('an identity.key that holds no key: exit 1, naming the file', async () => {
    await mkdir(join(dir(), 'state'))
    await writeFile(join(dir(), 'state', 'identity.key'), 'not a key', { mode: 0o600 })
    const r = await runCli(['identity', '--state', join(dir(), 'state')])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error: .*state\/identity\.key holds no libp2p private key: /)
  })
})
