import type { PackageResource } from '../../policy/schema.js'
import type { Outcome } from '../path-resource.js'
import type { SystemContext } from '../system.js'
import { ProviderUnavailableError } from '../errors.js'

/** Placeholder until the package provider lands: a named failure, never a silent success. */
export async function packageOutcome (r: PackageResource, _ctx: SystemContext): Promise<Outcome> {
  throw new ProviderUnavailableError(r.type, r.name, 'no provider is built for this type yet')
}
