import type { ServiceResource } from '../../policy/schema.js'
import type { Outcome } from '../path-resource.js'
import type { SystemContext } from '../system.js'
import { ProviderUnavailableError } from '../errors.js'

/** Placeholder until the service provider lands: a named failure, never a silent success. */
export async function serviceOutcome (r: ServiceResource, _ctx: SystemContext): Promise<Outcome> {
  throw new ProviderUnavailableError(r.type, r.name, 'no provider is built for this type yet')
}
