import { resolve } from 'node:path'
import type { ServiceResource } from '../../policy/schema.js'
import type { Outcome } from '../path-resource.js'
import type { Change } from '../report.js'
import type { SystemContext } from '../system.js'
import { ServiceNotFoundError, ServiceRuntimeUnavailableError } from '../errors.js'
import { describeVerbs, planService, unitName, type ServiceCurrent, type ServicePlan } from './plan.js'
import { describeRuntime, isActive, isEnabled, runtimeChange, runtimeHere, setEnablement, systemctl, type Systemctl } from './systemctl.js'
import { sandboxActive, sandboxChange, sandboxRecordPath } from './sandbox.js'

export { unitName } from './plan.js'
export type { Systemctl } from './systemctl.js'

/**
 * Applies (or plans) one service through systemctl. Enablement goes through `--root`, so it
 * works into a sandbox and without a running systemd; the running state and a notification's
 * restart or reload need systemd as PID 1 on the machine itself, and fail by name elsewhere
 * after the enablement is done, unless the apply opted into the sandbox runtime under a sandbox
 * root (sandbox.ts). A second apply runs only is-enabled (and is-active, or reads the record).
 * `run` is the systemctl to use: tests wrap the real one to see what ran.
 */
export async function serviceOutcome (r: ServiceResource, ctx: SystemContext, run: Systemctl = systemctl(ctx.signal)): Promise<Outcome> {
  const unit = unitName(r.name)
  let current: ServiceCurrent
  try {
    current = { unitFile: await isEnabled(run, ctx.root, unit) }
  } catch (err) {
    // A plan runs before the package that brings the unit is installed: it cannot know yet.
    if (ctx.dryRun && err instanceof ServiceNotFoundError) return notInstalledYet(r, unit, ctx)
    throw err
  }
  // The sandbox runtime is an opt-in for rehearsals, and only under a sandbox root: on / it is systemd's.
  const sandbox = ctx.serviceRuntime === 'sandbox' && resolve(ctx.root) !== '/'
  const runtime = sandbox ? { available: true as const } : await runtimeHere(ctx.root)
  if (runtime.available && (r.state !== undefined || ctx.notified.state !== 'no')) current.active = sandbox ? await sandboxActive(ctx.root, unit) : await isActive(run, unit)
  const plan = planService(r, unit, current, ctx.notified, runtime)
  // Say plainly that no process started: the transition was recorded, not made.
  const label = (c: Change): Change => sandbox && c.field !== 'enabled' ? { ...c, to: `${c.to ?? ''} (sandbox)` } : c
  if (sandbox && plan.runtime.length > 0) plan.reasons.push(`sandbox service runtime: no process ${ctx.dryRun ? 'would start' : 'started'}; the state is recorded in ${sandboxRecordPath(ctx.root, unit)}`)

  const changes: Change[] = []
  const outcome = (): Outcome => {
    const result: Outcome = { action: actionOf(changes), status: 'ok' }
    if (changes.length > 0) result.changes = [...changes]
    if (plan.reasons.length > 0) result.reason = plan.reasons.join('; ')
    if (plan.warnings.length > 0) result.warnings = [...plan.warnings]
    return result
  }

  if (plan.enablement !== undefined) {
    if (!ctx.dryRun) await setEnablement(run, ctx.root, plan.enablement.verb, unit)
    if (plan.enablement.change !== undefined) changes.push(plan.enablement.change)
  }

  if (!runtime.available && plan.runtime.length > 0) {
    const verbs = plan.runtime.map((s) => s.verb)
    const error = new ServiceRuntimeUnavailableError(unit, verbs.map((v) => describeRuntime(v, unit)), runtime.why, describeVerbs(verbs), enablementNote(r, plan, ctx.dryRun))
    return { ...outcome(), status: 'failed', error: { name: error.name, message: error.message } }
  }

  for (const step of plan.runtime) {
    if (!ctx.dryRun) {
      try {
        if (sandbox) await sandboxChange(ctx.root, step.verb, unit)
        else await runtimeChange(run, step.verb, unit)
      } catch (err) {
        // What was done stays reported: the enablement and any earlier step.
        const e = err as Error
        return { ...outcome(), status: 'failed', error: { name: e.name, message: e.message } }
      }
    }
    if (step.change !== undefined) changes.push(label(step.change))
  }

  if (plan.maybe !== undefined) {
    // Only a plan has a maybe: a notifier whose own change it cannot know (an exec).
    if (plan.maybe.change !== undefined) changes.push(label(plan.maybe.change))
    if (!runtime.available) plan.warnings.push(`if notified, ${describeRuntime(plan.maybe.verb, unit)} would fail: ${runtime.why}`)
    return { ...outcome(), status: 'unknown' }
  }
  return outcome()
}

/** Enablement and state are a modification; a restart or reload alone is a run, like an exec's. */
function actionOf (changes: Change[]): Outcome['action'] {
  if (changes.some((c) => c.field === 'enabled' || c.field === 'state')) return 'modify'
  return changes.length > 0 ? 'run' : 'none'
}

/** The end of the runtime error: what happened to the enablement, which still works without systemd. */
function enablementNote (r: ServiceResource, plan: ServicePlan, dryRun: boolean): string {
  if (plan.enablement !== undefined) return `; enablement ${dryRun ? 'would still be' : 'was'} applied (${plan.enablement.verb}d)`
  if (r.enable !== undefined && plan.warnings.length === 0) return `; enablement is as the policy says (${r.enable ? 'enabled' : 'disabled'})`
  return ''
}

/** A plan for a unit that is not installed yet: what the apply would do if an earlier resource installs it. */
function notInstalledYet (r: ServiceResource, unit: string, ctx: SystemContext): Outcome {
  const changes: Change[] = []
  if (r.enable !== undefined) changes.push({ field: 'enabled', to: String(r.enable) })
  if (r.state !== undefined) changes.push({ field: 'state', to: ctx.serviceRuntime === 'sandbox' && resolve(ctx.root) !== '/' ? `${r.state} (sandbox)` : r.state })
  const outcome: Outcome = {
    action: changes.length > 0 ? 'modify' : 'none',
    status: 'unknown',
    reason: `${unit} is not installed under ${ctx.root} yet: if a resource before this one (its package) installs it, the apply manages it as the policy says; otherwise the apply fails (ServiceNotFoundError)`
  }
  if (changes.length > 0) outcome.changes = changes
  return outcome
}
