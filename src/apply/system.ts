import type { GroupResource, PackageResource, ServiceResource, SystemResource, UserResource } from '../policy/schema.js'
import type { NodeFacts } from '../policy/template.js'
import type { Outcome } from './path-resource.js'
import type { Notified } from './exec.js'

/**
 * What a package, service, user or group provider gets from the run. Providers are one module
 * per resource type (src/apply/packages/, services/, accounts/), loaded only by policies that
 * use them; each chooses its tool from the node's facts and the root.
 */
export interface SystemContext {
  /** `/` on a real node, a sandbox directory in tests and the demo (tools run with --root). */
  root: string
  /** Plan only: read the package database, passwd, unit state; change nothing. */
  dryRun: boolean
  signal?: AbortSignal
  /** This node, with its gathered facts (os family: which package manager). */
  facts: NodeFacts
  /** Whether the resources that notify this one changed: a service restarts or reloads. */
  notified: Notified
  /**
   * State one apply shares among the resources of one type, by key: the package transaction
   * that gathers every package ready at the same time into one apt call.
   */
  run: Map<string, unknown>
  /** Renders a templated field (a user's password_hash from secrets); `where` is its path. */
  render: (text: string, where: string) => string
  /** The resource's path in the policy, like `resources[3]`, for error messages. */
  where: string
  now: () => number
  /**
   * How a service's running state is managed: `systemd` (the default: systemctl, where systemd
   * runs as PID 1) or `sandbox`, an opt-in for rehearsals in a sandbox root, which records it
   * under ROOT/run/grapevine/services/ (src/apply/services/sandbox.ts).
   */
  serviceRuntime?: ServiceRuntime
}

/** `sandbox` only by choice (`--sandbox-services`), and only under a sandbox root; never the default. */
export type ServiceRuntime = 'systemd' | 'sandbox'

export type SystemOutcome<R extends SystemResource> = (r: R, ctx: SystemContext) => Promise<Outcome>

/** Applies (or plans) one package, service, user or group through its provider. */
export async function systemOutcome (r: SystemResource, ctx: SystemContext): Promise<Outcome> {
  switch (r.type) {
    case 'package': return await (await import('./packages/index.js')).packageOutcome(r as PackageResource, ctx)
    case 'service': return await (await import('./services/index.js')).serviceOutcome(r as ServiceResource, ctx)
    case 'user': return await (await import('./accounts/index.js')).userOutcome(r as UserResource, ctx)
    case 'group': return await (await import('./accounts/index.js')).groupOutcome(r as GroupResource, ctx)
  }
}
