import type { GroupResource, UserResource } from '../../policy/schema.js'
import type { Outcome } from '../path-resource.js'
import type { SystemContext } from '../system.js'
import { ProviderUnavailableError } from '../errors.js'

/** Placeholders until the shadow-tools provider lands: a named failure, never a silent success. */
export async function userOutcome (r: UserResource, _ctx: SystemContext): Promise<Outcome> {
  throw new ProviderUnavailableError(r.type, r.name, 'no provider is built for this type yet')
}

export async function groupOutcome (r: GroupResource, _ctx: SystemContext): Promise<Outcome> {
  throw new ProviderUnavailableError(r.type, r.name, 'no provider is built for this type yet')
}
