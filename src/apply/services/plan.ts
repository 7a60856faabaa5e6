import type { ServiceResource } from '../../policy/schema.js'
import type { Change } from '../report.js'
import type { Notified } from '../exec.js'
import { ServiceMaskedError } from '../errors.js'
import { UNIT_SUFFIXES } from './constants.js'

/** `systemctl enable|disable`: unit files only, works into any root. */
export type EnablementVerb = 'enable' | 'disable'

/**
 * What needs the running manager. A notification uses the `try-` verbs, which do nothing to a
 * unit that is not running: notifying a stopped service must not start it.
 * `try-reload-or-restart` reloads a unit that has ExecReload= and restarts one that has not.
 */
export type RuntimeVerb = 'start' | 'stop' | 'try-restart' | 'try-reload-or-restart'

export type Running = 'running' | 'stopped'

export interface Step<V extends string> {
  verb: V
  /** Absent for a runtime step whose current state could not be read (no running systemd). */
  change?: Change
}

/** What the unit looks like now. */
export interface ServiceCurrent {
  /** `systemctl is-enabled`'s word: enabled, disabled, static, masked... */
  unitFile: string
  /** `systemctl is-active`, read only where systemd runs and the policy needs it. */
  active?: Running
}

/** Whether the running state can be read and changed here, and why not. */
export type Runtime = { available: true } | { available: false, why: string }

export interface ServicePlan {
  enablement?: Step<EnablementVerb>
  /** In order: start or stop, then a notification's restart or reload. */
  runtime: Array<Step<RuntimeVerb>>
  /** A plan's restart that happens only if a notifier whose own change is unknown changes. */
  maybe?: Step<RuntimeVerb>
  warnings: string[]
  reasons: string[]
}

/** Words for which `enable` means nothing: systemctl enable and disable do not touch such units. */
const FIXED: Readonly<Record<string, string>> = {
  static: 'it has no [Install] section; it starts when another unit needs it',
  generated: 'a generator made it from other configuration, such as fstab or an init script',
  transient: 'it was made at run time and goes away at the next boot',
  alias: 'the name is an alias; manage the unit it names'
}

/** Unit-file states that count as enabled. Puppet's systemd provider reads them the same way. */
const ENABLED = new Set(['enabled', 'enabled-runtime'])

/** Unit-file states that count as not enabled; `systemctl enable` makes them enabled. */
const NOT_ENABLED = new Set(['disabled', 'linked', 'linked-runtime', 'indirect', 'masked', 'masked-runtime'])

/** The unit systemctl is given: `nginx` means `nginx.service`, as systemctl itself assumes. */
export function unitName (name: string): string {
  const dot = name.lastIndexOf('.')
  return dot > 0 && (UNIT_SUFFIXES as readonly string[]).includes(name.slice(dot + 1)) ? name : `${name}.service`
}

/** Whether `is-enabled`'s word is one this provider knows how to compare. */
export function knownUnitFileState (word: string): boolean {
  return ENABLED.has(word) || NOT_ENABLED.has(word) || word in FIXED
}

const list = (ids: string[]): string => ids.map((id) => `"${id}"`).join(', ')

/**
 * Decides what a service needs, from what systemctl said: pure, so that the transitions are
 * tested with tables on machines where systemd does not run. A runtime step is planned even
 * where the runtime is unavailable; the caller turns it into the error after the enablement.
 */
export function planService (r: ServiceResource, unit: string, current: ServiceCurrent, notified: Notified, runtime: Runtime): ServicePlan {
  const plan: ServicePlan = { runtime: [], warnings: [], reasons: [] }
  const word = current.unitFile
  if (word.startsWith('masked') && (r.enable === true || r.state === 'running')) throw new ServiceMaskedError(unit, r.enable === true ? 'enabled' : 'started')

  if (r.enable !== undefined) {
    const fixed = FIXED[word]
    if (fixed !== undefined) plan.warnings.push(`${unit} is ${word}: "enable: ${String(r.enable)}" has no effect (${fixed})`)
    else if (ENABLED.has(word) !== r.enable) {
      plan.enablement = { verb: r.enable ? 'enable' : 'disable', change: { field: 'enabled', from: String(!r.enable), to: String(r.enable) } }
    }
  }

  let starting = false
  if (r.state !== undefined) {
    const verb = r.state === 'running' ? 'start' : 'stop'
    if (!runtime.available) plan.runtime.push({ verb })
    else if (current.active !== r.state) {
      plan.runtime.push({ verb, change: { field: 'state', from: current.active ?? 'unknown', to: r.state } })
      starting = verb === 'start'
    }
  }

  if (notified.state !== 'no') {
    const [verb, what] = r.reload_on_notify ? ['try-reload-or-restart', 'reload'] as const : ['try-restart', 'restart'] as const
    const by = list(notified.by)
    if (r.state === 'stopped') plan.reasons.push(`notified by ${by}; not a ${what}: the policy keeps it stopped`)
    else if (starting) plan.reasons.push(`notified by ${by}; it starts with the new configuration, no ${what} needed`)
    else if (runtime.available && current.active === 'stopped') plan.reasons.push(`notified by ${by}; not a ${what}: it is not running`)
    else if (notified.state === 'yes') plan.runtime.push({ verb, change: { field: what, to: `notified by ${by}` } })
    else plan.maybe = { verb, change: { field: what, to: `if ${by} change${notified.by.length === 1 ? 's' : ''}` } }
  }
  return plan
}

/** The verbs in words, for "cannot start nginx.service". */
export function describeVerbs (verbs: RuntimeVerb[]): string {
  const words: Record<RuntimeVerb, string> = { start: 'start', stop: 'stop', 'try-restart': 'restart', 'try-reload-or-restart': 'reload' }
  return [...new Set(verbs.map((v) => words[v]))].join(' or ')
}
