import { join } from 'node:path'
import type { SystemContext } from '../system.js'
import { DPKG_ADMINDIR, PACKAGE_QUERY_TIMEOUT_MS } from './constants.js'
import { failureOf, packageSettings } from './tool.js'

/** Installed packages by name → version: only those dpkg calls "installed" (not removed-with-config, not half-installed). */
export type InstalledPackages = ReadonlyMap<string, string>

const CACHE = 'packages.installed'

/**
 * Every installed package under the root, read once per apply with one dpkg-query (read-only,
 * no lock) and shared by every package resource; a transaction replaces it when it commits.
 */
export async function installedPackages (ctx: Pick<SystemContext, 'root' | 'run' | 'signal'>): Promise<InstalledPackages> {
  let p = ctx.run.get(CACHE) as Promise<InstalledPackages> | undefined
  if (p === undefined) {
    p = queryInstalled(ctx)
    ctx.run.set(CACHE, p)
    // A failed read is not kept: the next resource asks again.
    p.catch(() => { if (ctx.run.get(CACHE) === p) ctx.run.delete(CACHE) })
  }
  return await p
}

/** Reads the database again (after a transaction) and makes that the apply's view. */
export async function refreshInstalled (ctx: Pick<SystemContext, 'root' | 'run' | 'signal'>): Promise<InstalledPackages> {
  ctx.run.delete(CACHE)
  return await installedPackages(ctx)
}

async function queryInstalled (ctx: Pick<SystemContext, 'root' | 'run' | 'signal'>): Promise<InstalledPackages> {
  const argv = ['dpkg-query', `--admindir=${join(ctx.root, DPKG_ADMINDIR)}`, '-W', '-f', '${Package}\\t${Status}\\t${Version}\\n']
  const r = await packageSettings(ctx.run).run(argv, { timeoutMs: PACKAGE_QUERY_TIMEOUT_MS, ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) })
  // A root without a package database (a fresh sandbox) has nothing installed: dpkg-query says so with exit 0.
  const failed = failureOf('dpkg-query -W', r, ['(package database)'])
  if (failed !== undefined) throw failed
  return parseInstalled(r.stdout)
}

/** dpkg-query's `name\tstatus\tversion` lines → the installed ones. */
export function parseInstalled (text: string): InstalledPackages {
  const installed = new Map<string, string>()
  for (const line of text.split('\n')) {
    const [name, status, version] = line.split('\t')
    if (name === undefined || version === undefined || name === '') continue
    // Status is "want flag state": only state "installed" counts.
    if (status?.split(' ')[2] === 'installed' && !installed.has(name)) installed.set(name, version)
  }
  return installed
}
