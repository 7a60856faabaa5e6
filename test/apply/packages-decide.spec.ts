import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compareVersions } from '../../src/apply/packages/version.js'
import { aptArgv, aptLockHeld, parsePolicies, parsePolicy } from '../../src/apply/packages/apt.js'
import { errorTail } from '../../src/apply/packages/tool.js'
import { PACKAGE_ERROR_TAIL_BYTES } from '../../src/apply/packages/constants.js'
import { decide, needsOffer, satisfied } from '../../src/apply/packages/decide.js'
import { lockHeld } from '../../src/apply/packages/dpkg.js'
import { parseInstalled } from '../../src/apply/packages/database.js'
import type { Offer } from '../../src/apply/packages/provider.js'

const run = promisify(execFile)

describe('compareVersions (Debian order)', () => {
  const table: Array<[string, string, -1 | 0 | 1]> = [
    ['1.0', '1.0', 0],
    ['1.0', '1.1', -1],
    ['1.10', '1.9', 1],
    ['1.0-1', '1.0-2', -1],
    ['1.0~rc1', '1.0', -1],
    ['1.0~rc1', '1.0~rc1~1', 1],
    ['1:0.1', '9.9', 1],
    ['0:1.0', '1.0', 0],
    ['1.0a', '1.0', 1],
    ['1.0a', '1.0+', -1],
    ['1.0-1', '1.0', 1],
    ['1.001', '1.1', 0],
    ['5.02-1+b1', '5.02-1', 1],
    ['2.36-9+deb12u4', '2.36-9+deb12u10', -1]
  ]
  it.each(table)('%s vs %s → %i', (a, b, want) => {
    expect(compareVersions(a, b)).toBe(want)
    expect(compareVersions(b, a)).toBe(-want || 0)
  })

  it('agrees with dpkg --compare-versions', async () => {
    // Pairs that share a prefix, so the comparison reaches the interesting characters (~, letters, digit runs).
    const piece = fc.constantFrom('', '~', '~rc1', 'a', 'b', '+', '+b1', '.', '.1', '.10', '1', '01', '9', '-1', '-2', '~~', 'z~')
    const tail = fc.array(piece, { maxLength: 3 }).map((p) => p.join(''))
    const pair = fc.tuple(fc.constantFrom('', '1:'), fc.constantFrom('', '1:'), fc.stringMatching(/^[0-9][0-9a-z.+]{0,3}$/), tail, tail)
      .map(([ea, eb, p, ta, tb]) => [`${ea}${p}${ta}`, `${eb}${p}${tb}`] as const)
    await fc.assert(fc.asyncProperty(pair, async ([a, b]) => {
      const lt = await run('dpkg', ['--compare-versions', a, 'lt', b]).then(() => true, () => false)
      const eq = await run('dpkg', ['--compare-versions', a, 'eq', b]).then(() => true, () => false)
      expect(compareVersions(a, b)).toBe(lt ? -1 : eq ? 0 : 1)
    }), { numRuns: 200 })
  })
})

describe('decide', () => {
  const apt = (candidate: string | undefined, versions: string[] = candidate !== undefined ? [candidate] : []): Offer => ({ ...(candidate !== undefined ? { candidate } : {}), versions })
  const rows: Array<[string, string | undefined, Offer | undefined, string]> = [
    // ensure, installed, offer → verb from→to
    ['present', undefined, apt('1.2-1'), 'install →1.2-1'],
    ['present', '1.0', undefined, 'none'],
    ['absent', '1.0', undefined, 'remove 1.0→'],
    ['absent', undefined, undefined, 'none'],
    ['latest', '1.0', apt('1.2'), 'upgrade 1.0→1.2'],
    ['latest', '1.2', apt('1.2'), 'none'],
    ['latest', '2.0', apt('1.2'), 'none'],
    ['latest', '1.0', apt(undefined), 'none'],
    ['latest', undefined, apt('1.2'), 'install →1.2'],
    ['1.2', '1.0', apt('1.3', ['1.3', '1.2', '1.0']), 'upgrade 1.0→1.2'],
    ['1.0', '1.2', apt('1.3', ['1.3', '1.2', '1.0']), 'downgrade 1.2→1.0'],
    ['1.2', '1.2', undefined, 'none'],
    ['1:1.2', '1:1.2', undefined, 'none']
  ]
  it.each(rows)('ensure %s, installed %s', (ensure, installed, offer, want) => {
    expect(needsOffer(ensure, installed)).toBe(offer !== undefined)
    const plan = decide({ name: 'p', ensure }, installed, offer)
    expect(plan.verb === undefined ? 'none' : `${plan.verb} ${plan.from ?? ''}→${plan.to ?? ''}`).toBe(want)
    if (plan.op !== undefined) expect(satisfied(ensure, plan.to, plan.to)).toBe(true)
    expect(plan.op?.downgrade === true).toBe(plan.verb === 'downgrade')
  })

  it('fails by name when nothing or not that version is offered', () => {
    expect(() => decide({ name: 'p', ensure: 'present' }, undefined, apt(undefined))).toThrow(expect.objectContaining({ name: 'PackageNotFoundError', message: 'package p: no version to install: the package sources do not offer it (is apt-get update needed?)' }))
    expect(() => decide({ name: 'p', ensure: '9.9' }, '1.0', apt('1.2', ['1.2', '1.0']))).toThrow(expect.objectContaining({ name: 'PackageNotFoundError', message: 'package p 9.9: not offered; offered: 1.2, 1.0' }))
  })

  it('pins the version it planned and names the file for a source', () => {
    expect(decide({ name: 'p', ensure: 'present' }, undefined, { candidate: '1', versions: ['1'], file: '/r/p.deb' }).op).toEqual({ name: 'p', version: '1', file: '/r/p.deb' })
  })
})

describe('tool output', () => {
  it('reads apt-cache policy', () => {
    const text = 'sl:\n  Installed: 5.02-1\n  Candidate: 5.02-1+b1\n  Version table:\n     5.02-1+b1 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n *** 5.02-1 100\n        100 /var/lib/dpkg/status\n'
    expect(parsePolicy(text)).toEqual({ candidate: '5.02-1+b1', versions: ['5.02-1+b1', '5.02-1'] })
    expect(parsePolicy('')).toEqual({ versions: [] })
    expect(parsePolicy('x:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n')).toEqual({ versions: [] })
  })

  it('reads apt-cache policy for several packages, by section', () => {
    const text = 'sl:\n  Installed: (none)\n  Candidate: 5.02-1+b1\n  Version table:\n     5.02-1+b1 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n' +
      'dpkg:\n  Installed: 1.21.23\n  Candidate: 1.21.23\n  Version table:\n *** 1.21.23 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n        100 /var/lib/dpkg/status\n'
    expect([...parsePolicies(text)]).toEqual([['sl', { candidate: '5.02-1+b1', versions: ['5.02-1+b1'] }], ['dpkg', { candidate: '1.21.23', versions: ['1.21.23'] }]])
    expect(parsePolicies('').size).toBe(0)
  })

  it('reads dpkg-query: only state "installed" counts', () => {
    const text = 'a\tinstall ok installed\t1.0\nb\tdeinstall ok config-files\t2.0\nc\tinstall reinstreq half-installed\t3\n\n'
    expect([...parseInstalled(text)]).toEqual([['a', '1.0']])
  })

  it('one apt-get line for a whole transaction', () => {
    expect(aptArgv([{ name: 'a', version: '1.0' }, { name: 'b', remove: true }, { name: 'c', version: '2', file: '/srv/c.deb' }, { name: 'd', version: '0.9', downgrade: true }], 7)).toEqual([
      'apt-get', '-y', '-q', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', '-o', 'DPkg::Lock::Timeout=7',
      '--allow-downgrades', 'install', 'a=1.0', 'b-', '/srv/c.deb', 'd=0.9'
    ])
  })

  it('recognises dpkg\'s lock errors', () => {
    expect(lockHeld('dpkg: error: dpkg frontend lock was locked by another process with pid 42\nNote: removing…', '/r/var/lib/dpkg')).toEqual({ lock: '/r/var/lib/dpkg/lock-frontend', holder: 'process 42' })
    expect(lockHeld('dpkg: error: dpkg status database is locked by another process', '/var/lib/dpkg')).toEqual({ lock: '/var/lib/dpkg/lock' })
    expect(lockHeld('dpkg: error processing archive', '/var/lib/dpkg')).toBeUndefined()
  })

  it('recognises apt\'s lock errors, with the holder from its waiting lines', () => {
    expect(aptLockHeld('E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?', 'Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 16483 (perl)...'))
      .toEqual({ lock: '/var/lib/dpkg/lock-frontend', holder: 'process 16483 (perl)' })
    expect(aptLockHeld('E: Could not get lock /var/lib/dpkg/lock. It is held by process 7 (dpkg)\nE: Unable to lock the administration directory (/var/lib/dpkg/), is another process using it?', ''))
      .toEqual({ lock: '/var/lib/dpkg/lock', holder: 'process 7 (dpkg)' })
    expect(aptLockHeld('E: Unable to lock directory /var/cache/apt/archives/', '')).toEqual({ lock: '/var/cache/apt/archives/' })
    expect(aptLockHeld('E: Unable to correct problems, you have held broken packages.', '')).toBeUndefined()
  })

  it('quotes a bounded tail of both streams', () => {
    const long = Array.from({ length: 500 }, (_, i) => `line ${i} é`).join('\n')
    const tail = errorTail({ exitCode: 1, signal: null, stdout: long, stderr: 'E: the error\n', timedOut: false, aborted: false })
    expect(Buffer.byteLength(tail)).toBeLessThanOrEqual(PACKAGE_ERROR_TAIL_BYTES + 4)
    expect(tail).toMatch(/^…line \d+ é\n/)
    expect(tail.endsWith('line 499 é\nE: the error')).toBe(true)
  })
})
