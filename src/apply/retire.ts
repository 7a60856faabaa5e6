import type { ConfigPolicy, Resource } from '../policy/index.js'

/**
 * The policy that undoes `policy` on a node it no longer targets: every file, config and
 * symlink it manages becomes `ensure: absent` (backed up as usual), in reverse dependency
 * order. Directories are kept, because they may hold things the policy never managed,
 * and execs are dropped, because a command cannot be undone. Packages, services, users and
 * groups stay as they are: removing a package or an account is a decision, not an undo.
 * Apply the result with applyPolicy.
 */
export function retirementPolicy (policy: ConfigPolicy): ConfigPolicy {
  const kept = policy.resources.filter((r) => r.type === 'file' || r.type === 'config' || r.type === 'symlink')
  const ids = new Set(kept.map((r) => r.id))
  const reversed = new Map<string, string[]>(kept.map((r) => [r.id, []]))
  for (const r of kept) for (const dep of r.requires ?? []) if (ids.has(dep)) reversed.get(dep)?.push(r.id)
  const resources = kept.map((r): Resource => {
    const { requires: _requires, notify: _notify, ...rest } = r
    const requires = reversed.get(r.id) ?? []
    return { ...rest, ensure: 'absent', ...(requires.length > 0 ? { requires } : {}) } as Resource
  })
  return { ...policy, resources }
}
