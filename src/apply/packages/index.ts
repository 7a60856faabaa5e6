import type { PackageResource } from '../../policy/schema.js'
import { factAt } from '../../policy/target.js'
import type { Outcome } from '../path-resource.js'
import type { SystemContext } from '../system.js'
import { ProviderUnavailableError, VerifyFailedError } from '../errors.js'
import { apt } from './apt.js'
import { dpkg } from './dpkg.js'
import { installedPackages } from './database.js'
import { decide, needsOffer, satisfied, type PackagePlan } from './decide.js'
import type { PackageProvider } from './provider.js'
import { joinTransaction } from './transaction.js'

export { PACKAGE_SETTINGS, type PackageSettings } from './tool.js'
export type { PackageProvider } from './provider.js'

/** Every provider a policy may name (`provider:`). */
const PROVIDERS: Record<NonNullable<PackageResource['provider']>, PackageProvider> = { apt, dpkg }

/**
 * The provider for an `os.family` fact (Facter's names): on `/` the family's manager with
 * package sources, in a sandbox root the one that installs files with --root. dnf or apk would
 * be a line here and one file each.
 */
const FAMILIES: Record<string, (root: string) => PackageProvider> = {
  debian: (root) => root === '/' ? apt : dpkg,
  ubuntu: (root) => root === '/' ? apt : dpkg
}

/** `provider:` if the policy names one, else the one the node's os.family fact and the root choose. */
export function chooseProvider (r: PackageResource, ctx: Pick<SystemContext, 'root' | 'facts'>): PackageProvider {
  if (r.provider !== undefined) return PROVIDERS[r.provider]
  const family = factAt(ctx.facts.facts, 'os.family')
  const choose = typeof family === 'string' ? FAMILIES[family.toLowerCase()] : undefined
  if (choose === undefined) {
    throw new ProviderUnavailableError('package', r.name, family === undefined
      ? 'this node has no os.family fact to choose a package manager by; name one with provider: apt or dpkg'
      : `no package provider for os.family ${JSON.stringify(family)} (known: ${Object.keys(FAMILIES).join(', ')}); name one with provider:`)
  }
  return choose(ctx.root)
}

/**
 * Plans or applies one package: the installed version from the package database (one query per
 * apply), the offered one only when needed, then its part in the apply's transaction.
 */
export async function packageOutcome (r: PackageResource, ctx: SystemContext): Promise<Outcome> {
  const provider = chooseProvider(r, ctx)
  // Joined before anything is awaited, so that every package started with it is in the same transaction.
  const ticket = ctx.dryRun ? undefined : joinTransaction(provider, ctx)
  let plan: PackagePlan
  try {
    plan = await planPackage(r, provider, ctx)
  } catch (err) {
    ticket?.withdraw()
    throw err
  }
  if (ticket === undefined || plan.op === undefined) {
    ticket?.withdraw()
    return outcomeOf(r, plan)
  }
  const { error, installed } = await ticket.submit(plan.op)
  const now = installed.get(r.name)
  if (satisfied(r.ensure, now, plan.to)) {
    const outcome = outcomeOf(r, plan)
    // dpkg goes on with the other files when one fails: this one is done even though the run failed.
    if (error !== undefined) outcome.warnings = [`${r.name} is as the policy wants, but the transaction it was part of failed: ${error.message}`]
    return outcome
  }
  if (error !== undefined) throw error
  throw new VerifyFailedError(`package ${r.name}`, [`version ${now ?? '(not installed)'}`])
}

async function planPackage (r: PackageResource, provider: PackageProvider, ctx: SystemContext): Promise<PackagePlan> {
  const installed = (await installedPackages(ctx)).get(r.name)
  const offer = needsOffer(r.ensure, installed) ? await provider.offer(r, ctx) : undefined
  return decide(r, installed, offer)
}

/** The plan in the report's words: "upgrade 1.0-1 → 2.0-1", and a version change. */
function outcomeOf (r: PackageResource, plan: PackagePlan): Outcome {
  if (plan.verb === undefined) return { action: 'none', status: 'ok' }
  const versions = plan.from !== undefined && plan.to !== undefined ? `${plan.from} → ${plan.to}` : plan.to ?? plan.from ?? ''
  return {
    action: plan.action,
    status: 'ok',
    reason: `${plan.verb} ${r.name} ${versions}`,
    changes: [{ field: 'version', ...(plan.from !== undefined ? { from: plan.from } : {}), ...(plan.to !== undefined ? { to: plan.to } : {}) }]
  }
}
