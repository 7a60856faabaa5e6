import type { PackageResource } from '../../policy/schema.js'
import { PackageNotFoundError } from '../errors.js'
import type { Offer, PackageOp } from './provider.js'
import { compareVersions } from './version.js'

export type PackageVerb = 'install' | 'upgrade' | 'downgrade' | 'remove'

/** What one package resource needs, in the report's words, and the op that does it. */
export interface PackagePlan {
  action: 'create' | 'modify' | 'delete' | 'none'
  verb?: PackageVerb
  from?: string
  to?: string
  op?: PackageOp
}

const ACTION: Record<PackageVerb, PackagePlan['action']> = { install: 'create', upgrade: 'modify', downgrade: 'modify', remove: 'delete' }

/** Whether deciding needs the provider's offer (a read of apt-cache or the .deb): not for absent, nor present when installed. */
export function needsOffer (ensure: PackageResource['ensure'], installed: string | undefined): boolean {
  if (ensure === 'absent') return false
  if (ensure === 'present') return installed === undefined
  if (ensure === 'latest') return true
  return installed === undefined || compareVersions(installed, ensure) !== 0
}

/** Pure: what to do for `ensure` given the installed version and (when needsOffer) the offer. */
export function decide (r: Pick<PackageResource, 'name' | 'ensure'>, installed: string | undefined, offer: Offer | undefined): PackagePlan {
  const ensure = r.ensure
  if (ensure === 'absent') return installed === undefined ? { action: 'none' } : plan('remove', installed, undefined, { name: r.name, remove: true })
  if (ensure === 'present' && installed !== undefined) return { action: 'none' }
  let target: string
  if (ensure === 'present' || ensure === 'latest') {
    const candidate = offer?.candidate
    if (candidate === undefined) {
      if (installed !== undefined) return { action: 'none' } // latest: nothing offered beyond what is there
      throw new PackageNotFoundError(r.name, undefined, 'no version to install: the package sources do not offer it (is apt-get update needed?)')
    }
    target = candidate
  } else {
    target = ensure
    if (installed !== undefined && compareVersions(installed, target) === 0) return { action: 'none' }
    const found = offer?.versions.find((v) => compareVersions(v, target) === 0)
    if (found === undefined) throw new PackageNotFoundError(r.name, target, `not offered; ${offer === undefined || offer.versions.length === 0 ? 'no version is' : `offered: ${offer.versions.slice(0, 10).join(', ')}`}`)
    target = found
  }
  const order = installed === undefined ? 1 : compareVersions(target, installed)
  if (order === 0 || (order < 0 && (ensure === 'latest' || ensure === 'present'))) return { action: 'none' }
  const verb: PackageVerb = installed === undefined ? 'install' : order > 0 ? 'upgrade' : 'downgrade'
  return plan(verb, installed, target, {
    name: r.name,
    version: target,
    ...(offer?.file !== undefined ? { file: offer.file } : {}),
    ...(verb === 'downgrade' ? { downgrade: true } : {})
  })
}

function plan (verb: PackageVerb, from: string | undefined, to: string | undefined, op: PackageOp): PackagePlan {
  return { action: ACTION[verb], verb, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), op }
}

/** Whether the installed version now satisfies `ensure` (checked after a transaction). */
export function satisfied (ensure: PackageResource['ensure'], installed: string | undefined, target: string | undefined): boolean {
  if (ensure === 'absent') return installed === undefined
  if (installed === undefined) return false
  if (ensure === 'present') return true
  return target === undefined || compareVersions(installed, target) === 0
}
