import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import fc from 'fast-check'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MAX_REMOTE_OUTPUT_BYTES, RemoteStepError, SshSession, sshFailure, shellQuote } from '../../src/enroll/index.js'

// What OpenSSH 9 prints for each failure (ssh -o BatchMode=yes -o StrictHostKeyChecking=yes), and the error it becomes.
const target = { user: 'root', host: '127.0.0.1', port: 2222 }
const opts = { identity: '/k/id_ed25519', knownHosts: '/k/known_hosts' }

describe('sshFailure', () => {
  const cases: Array<[string, string, string, RegExp]> = [
    ['No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n', 'connect', 'HostKeyUnknownError',
      /^the host key for \[127\.0\.0\.1\]:2222 is not in \/k\/known_hosts, .* ssh-keyscan -p 2222 127\.0\.0\.1, check its fingerprint/],
    ['@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n...\nHost key for [127.0.0.1]:2222 has changed and you have requested strict checking.\nHost key verification failed.\n', 'connect', 'HostKeyMismatchError',
      /^the host key \[127\.0\.0\.1\]:2222 offered does not match the one in \/k\/known_hosts/],
    ['root@127.0.0.1: Permission denied (publickey).\r\n', 'connect', 'LoginRefusedError', /^root@127\.0\.0\.1:2222 refused the login as root with \/k\/id_ed25519 \(root@127\.0\.0\.1: Permission denied \(publickey\)\.\)/],
    ['ssh: connect to host 127.0.0.1 port 2222: Connection refused\r\n', 'connect', 'HostUnreachableError', /^cannot reach root@127\.0\.0\.1:2222 over SSH: ssh: connect to host 127\.0\.0\.1 port 2222: Connection refused$/],
    ['ssh: Could not resolve hostname nowhere: Name or service not known\r\n', 'connect', 'HostUnreachableError', /Could not resolve hostname/],
    ['Connection to 127.0.0.1 closed by remote host.\r\n', 'upload', 'ConnectionLostError', /^the SSH connection to root@127\.0\.0\.1:2222 was lost during "upload" \(Connection to 127\.0\.0\.1 closed by remote host\.\): nothing was installed or started/],
    ['', 'config', 'ConnectionLostError', /was lost during "config" \(ssh exited 255, saying nothing more\)/]
  ]
  it.each(cases)('%j during %s is a %s', (stderr, step, name, message) => {
    const err = sshFailure(stderr, step, target, opts)
    expect(err.name).toBe(name)
    expect(err.message).toMatch(message)
  })

  it('names ssh\'s defaults when no identity or known_hosts was given', () => {
    expect(sshFailure('Host key verification failed.', 'connect', { host: 'web-1' }, {}).message).toMatch(/^the host key for web-1 is not in ~\/\.ssh\/known_hosts.* ssh-keyscan web-1,/)
    expect(sshFailure('x@web-1: Permission denied (publickey).', 'connect', { host: 'web-1' }, {}).message).toMatch(/refused the login as your user name with ssh's default identities/)
  })
})

describe('shellQuote', () => {
  it('round-trips any string through sh', () => {
    fc.assert(fc.property(fc.string({ maxLength: 40 }).filter((s) => !s.includes('\0')), (s) => {
      return execFileSync('sh', ['-c', `printf %s ${shellQuote(s)}`]).toString() === s
    }), { numRuns: 50 })
  })
})

describe('SshSession.run against a host that prints without end', () => {
  it('stops the command past MAX_REMOTE_OUTPUT_BYTES and names the step, holding no more than that', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'grapevine-ssh-'))
    // A stand-in ssh whose "remote command" prints forever, as a hostile or broken host could.
    writeFileSync(join(dir, 'ssh'), '#!/bin/sh\nexec yes grapevine\n', { mode: 0o755 })
    const path = process.env.PATH
    process.env.PATH = `${dir}:${path ?? ''}`
    try {
      const session = new SshSession({ host: 'web-1' }, { dir })
      await expect(session.run('probe', 'sh -s')).rejects.toThrow(RemoteStepError)
      await expect(session.run('probe', 'sh -s')).rejects.toThrow(`probe on web-1 printed more than ${MAX_REMOTE_OUTPUT_BYTES / 1048576} MiB, where it prints a few lines: stopped`)
    } finally {
      process.env.PATH = path
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
