import { describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'
import { generateSigningKey, writeSigningKey } from '../../src/envelope/index.js'

// What enroll refuses before it connects anywhere: nothing here needs an SSH server (port 1
// on loopback would refuse a connection, and none of these get that far).

describe('grapevine enroll: refused before connecting', () => {
  const dir = useTempDir('grapevine-enroll-usage-')
  const root = generateSigningKey().id
  const peer = '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWE3Qo3kJgbUjyfybffpSL6t3YMsn9vfLMPgCbbi5bMmLC'

  const cases: Array<[string, () => string[], number, RegExp]> = [
    ['a target that is no ssh:// address', () => ['root@web-1', '--trust', root, '--bootstrap', peer], 64, /^error: expected ssh:\/\/\[user@\]host\[:port\], like ssh:\/\/root@web-1\.example\.com or ssh:\/\/admin@10\.0\.0\.5:2222: got "root@web-1"$/m],
    ['no --trust', () => ['ssh://root@127.0.0.1:1', '--bootstrap', peer], 64, /^error: give at least one --trust root public key: an agent that trusts nobody would accept nothing$/m],
    ['a relative --prefix', () => ['ssh://root@127.0.0.1:1', '--trust', root, '--bootstrap', peer, '--prefix', 'opt/gv'], 64, /^error: --prefix must be an absolute path on the host: got "opt\/gv"$/m],
    ['a --timeout that is no duration', () => ['ssh://root@127.0.0.1:1', '--trust', root, '--bootstrap', peer, '--timeout', 'soon'], 64, /^error: --timeout expects a duration like 90s or 5m: got "soon"$/m],
    ['--expires without --key', () => ['ssh://root@127.0.0.1:1', '--trust', root, '--bootstrap', peer, '--expires', '1y'], 64, /^error: --expires is the admission certificate's lifetime: give --key too$/m],
    ['an --expires that is no duration', () => ['ssh://root@127.0.0.1:1', '--trust', root, '--bootstrap', peer, '--key', join(dir(), 'enroller.key'), '--expires', 'forever'], 64, /^error: --expires expects a duration like 90d, 12h, 2w or 1y: got "forever"$/m],
    ['a --bootstrap without /p2p/', () => ['ssh://root@127.0.0.1:1', '--trust', root, '--bootstrap', '/ip4/127.0.0.1/tcp/1'], 64, /--bootstrap/],
    ['a --binary that is not an ELF executable', () => ['ssh://root@127.0.0.1:1', '--trust', root, '--bootstrap', peer, '--binary', join(dir(), 'script.sh')], 64, /^error: .*script\.sh is not an executable for Linux \(no ELF header\): give the single binary \(npm run release\)$/m],
    ['a --binary that is not there', () => ['ssh://root@127.0.0.1:1', '--trust', root, '--bootstrap', peer, '--binary', join(dir(), 'nothing')], 69, /^error: cannot read --binary .*nothing: ENOENT$/m],
    ['no --bootstrap, and no local agent to take its addresses from', () => ['ssh://root@127.0.0.1:1', '--trust', root, '--binary', process.execPath, '--agent', `unix:${join(dir(), 'api.sock')}`], 69, /^error: no --bootstrap given, and the local agent's API at unix:.*api\.sock did not answer: /],
    ['--wait, and no local agent to wait through', () => ['ssh://root@127.0.0.1:1', '--trust', root, '--bootstrap', peer, '--binary', process.execPath, '--wait', '--agent', `unix:${join(dir(), 'api.sock')}`], 69, /^error: --wait needs the local agent, but the local agent's API at unix:.*api\.sock did not answer: /]
  ]

  it.each(cases)('%s', async (_, args, code, message) => {
    await writeFile(join(dir(), 'script.sh'), '#!/bin/sh\n')
    await writeSigningKey(join(dir(), 'enroller.key'), generateSigningKey())
    const r = await runCli(['enroll', ...args()])
    expect(r.stderr).toMatch(message)
    expect(r.stderr).not.toMatch(/^connect:/m)
    expect(r.code).toBe(code)
  })
})
