import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SystemContext } from '../system.js'
import { PackageCommandFailedError, PackageLockedError, PackageSourceError } from '../errors.js'
import { DPKG_ADMINDIR, PACKAGE_COMMAND_TIMEOUT_MS, PACKAGE_LOCK_RETRY_MS } from './constants.js'
import type { PackageProvider } from './provider.js'
import { debOffer } from './source.js'
import { archiveOffer } from './archive.js'
import { failureOf, packageSettings } from './tool.js'

/**
 * dpkg with `--root`: works in a sandbox root (tests, the demo) and on `/`. It has no package
 * sources, so installing needs the resource's `source` .deb, or in a sandbox root a file in the
 * root's own apt archive cache (archive.ts); it does not resolve dependencies.
 * A transaction is at most two runs: `dpkg --remove` of every removal, then `dpkg --install`
 * of every file.
 */
export const dpkg: PackageProvider = {
  name: 'dpkg',

  async offer (r, ctx) {
    // A sandbox root is a rehearsal of a machine: its own archive cache stands in for apt's sources.
    if (r.source === undefined && ctx.root !== '/') return await archiveOffer(r, ctx)
    if (r.source === undefined) throw new PackageSourceError(r.name, `the dpkg provider installs only from a package file: give source (a .deb path under the root${ctx.root !== '/' ? ` ${ctx.root}` : ''})`)
    return await debOffer({ ...r, source: r.source }, ctx)
  },

  async commit (ops, ctx) {
    const base = ['dpkg', `--root=${ctx.root}`]
    if (ctx.root !== '/') {
      // dpkg logs to the host's /var/log/dpkg.log even with --root: keep a sandbox's log in the sandbox.
      await mkdir(join(ctx.root, 'var/log'), { recursive: true })
      base.push(`--log=${join(ctx.root, 'var/log/dpkg.log')}`)
    }
    const removals = ops.filter((o) => o.remove === true).map((o) => o.name)
    const files = ops.flatMap((o) => o.remove !== true && o.file !== undefined ? [o.file] : [])
    if (removals.length > 0) await runLocked([...base, '--remove', ...removals], removals, ctx)
    if (files.length > 0) await runLocked([...base, '--force-confdef', '--force-confold', '--install', ...files], ops.filter((o) => o.remove !== true).map((o) => o.name), ctx)
  }
}

/**
 * dpkg fails at once when another apt or dpkg holds its lock; try again until the bound, then
 * fail by name (apt-get does the same waiting itself, see apt.ts).
 */
async function runLocked (argv: string[], names: string[], ctx: SystemContext): Promise<void> {
  const { lockWaitS, run } = packageSettings(ctx.run)
  const deadline = ctx.now() + lockWaitS * 1000
  const label = `dpkg ${argv.includes('--remove') ? '--remove' : '--install'} ${names.join(' ')}`
  for (;;) {
    const res = await run(argv, { timeoutMs: PACKAGE_COMMAND_TIMEOUT_MS, ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) })
    const held = res.exitCode !== 0 ? lockHeld(res.stderr, join(ctx.root, DPKG_ADMINDIR)) : undefined
    if (held === undefined) {
      const failed = failureOf(label, res, names)
      if (failed !== undefined) throw failed
      return
    }
    if (ctx.signal?.aborted === true) throw new PackageCommandFailedError(label, null, `stopped while waiting for ${held.lock}: the apply was aborted`, '')
    if (ctx.now() >= deadline) throw new PackageLockedError(held.lock, lockWaitS, held.holder, names)
    await sleep(PACKAGE_LOCK_RETRY_MS, undefined, ctx.signal !== undefined ? { signal: ctx.signal } : {}).catch(() => {})
  }
}

/** dpkg's "locked by another process" errors → which lock, and whose. */
export function lockHeld (stderr: string, admindir: string): { lock: string, holder?: string } | undefined {
  const frontend = /dpkg frontend lock (?:was|is) locked by another process(?: with pid (\d+))?/.exec(stderr)
  if (frontend !== null) return { lock: join(admindir, 'lock-frontend'), ...(frontend[1] !== undefined ? { holder: `process ${frontend[1]}` } : {}) }
  const status = /dpkg status database is locked by another process(?: with pid (\d+))?/.exec(stderr)
  if (status !== null) return { lock: join(admindir, 'lock'), ...(status[1] !== undefined ? { holder: `process ${status[1]}` } : {}) }
  return undefined
}
