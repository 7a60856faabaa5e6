import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { validatePolicyObject, type ConfigPolicy } from '../../src/policy/index.js'
import { applyPolicy, type ApplyOptions, type ApplyReport, type ResourceResult } from '../../src/apply/index.js'
import { useTempDir } from '../helpers/tmp.js'
import type { SystemContext } from '../../src/apply/system.js'

/** A validated policy from resource objects, with the validator's defaults filled in. */
export function policyOf (resources: unknown[], extra: Record<string, unknown> = {}): ConfigPolicy {
  return validatePolicyObject({ name: 'test/apply', ...extra, resources }, '<test>') as ConfigPolicy
}

export interface Sandbox {
  root: string
  state: string
  /** Host path of a policy path under the root. */
  at: (path: string) => string
  apply: (policy: ConfigPolicy, opts?: Partial<ApplyOptions>) => Promise<ApplyReport>
  plan: (policy: ConfigPolicy, opts?: Partial<ApplyOptions>) => Promise<ApplyReport>
}

/** A fresh root (created) and state directory (not created) per test, under the system temp dir. */
export function useSandbox (): () => Sandbox {
  const dir = useTempDir('grapevine-apply-')
  return () => {
    const root = join(dir(), 'root')
    const state = join(dir(), 'state')
    mkdirSync(root, { recursive: true })
    const run = async (policy: ConfigPolicy, opts: Partial<ApplyOptions>): Promise<ApplyReport> => {
      return await applyPolicy(policy, { root, stateDir: state, facts: { id: 'node-1', name: 'web1', tags: { role: 'web' } }, ...opts })
    }
    return {
      root,
      state,
      at: (path) => join(root, path),
      apply: async (policy, opts = {}) => await run(policy, opts),
      plan: async (policy, opts = {}) => await run(policy, { ...opts, dryRun: true })
    }
  }
}

/** The result for one resource id; fails the test when it is missing. */
export function result (report: ApplyReport, id: string): ResourceResult {
  const r = report.resources.find((x) => x.id === id)
  if (r === undefined) throw new Error(`no result for "${id}" in ${JSON.stringify(report.resources.map((x) => x.id))}`)
  return r
}

/** `id:action/status` for every resource, in apply order: compact to assert on. */
export function summary (report: ApplyReport): string[] {
  return report.resources.map((r) => `${r.id}:${r.action}/${r.status}`)
}

/** What a provider gets from a run, for calling one directly: root `root`, no notification, templates as they are. */
export function contextFor (root: string, fields: Partial<SystemContext> = {}): SystemContext {
  return {
    root,
    dryRun: false,
    facts: { id: 'node-1', name: 'web1', tags: {} },
    notified: { state: 'no', by: [] },
    run: new Map(),
    render: (text) => text,
    where: 'resources[0]',
    now: Date.now,
    ...fields
  }
}
