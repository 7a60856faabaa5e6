import fc from 'fast-check'
import { TRUST_POLICY_NAME, validatePolicyObject, type Policy } from '../../src/policy/index.js'

/**
 * fast-check generators for *valid* policies (unique ids and paths, acyclic requires and
 * notify, templates that only name declared vars), for round-trip and store properties.
 */

const segment = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,10}$/)
export const arbPolicyName = fc.array(segment, { minLength: 1, maxLength: 3 })
  .map((s) => s.join('/'))
  .filter((n) => n !== TRUST_POLICY_NAME && n.length <= 200)

/** Any text without template syntax: full Unicode, but never a lone surrogate. */
export const arbText = fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('{'))

const arbMode = fc.stringMatching(/^0[0-7]{3}$/)
const arbKeyId = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `ed25519:${Buffer.from(b).toString('base64url')}`)

/**
 * JSON data whose strings hold no template syntax and whose objects have no `__proto__` key (so
 * it is valid as config data or vars: validation refuses that key, which nodes could not write).
 */
const arbData = fc.dictionary(
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/),
  fc.jsonValue({ maxDepth: 2 }).filter((v) => !JSON.stringify(v).includes('{{') && !JSON.stringify(v).includes('"__proto__":'))
, { maxKeys: 4 })

type Kind = 'file' | 'directory' | 'symlink' | 'config' | 'exec'

const arbResourceBody = (kind: Kind, path: string, varNames: string[]): fc.Arbitrary<Record<string, unknown>> => {
  switch (kind) {
    case 'file':
      return fc.record({
        type: fc.constant('file'),
        path: fc.constant(path),
        content: varNames.length === 0
          ? arbText
          : fc.tuple(arbText, fc.constantFrom(...varNames)).map(([t, v]) => `${t}{{ vars.${v} }}`),
        mode: arbMode,
        owner: fc.constantFrom('root', 'www-data', '1000')
      }, { requiredKeys: ['type', 'path', 'content'] })
    case 'directory':
      return fc.record({ type: fc.constant('directory'), path: fc.constant(path), mode: arbMode, ensure: fc.constantFrom('present', 'absent') }, { requiredKeys: ['type', 'path'] })
    case 'symlink':
      return fc.record({ type: fc.constant('symlink'), path: fc.constant(path), target: fc.constant('/srv/target') })
    case 'config':
      return fc.record({ type: fc.constant('config'), path: fc.constant(path), format: fc.constantFrom('json', 'yaml', 'toml', 'ini', 'env'), data: arbData })
    case 'exec':
      return fc.record({
        type: fc.constant('exec'),
        // An argv cannot hold a NUL byte: validation refuses one (the system could not pass it on).
        command: fc.oneof(fc.constant('true'), fc.array(arbText.filter((s) => s.length > 0 && !s.includes('\0')), { minLength: 1, maxLength: 3 })),
        timeout: fc.integer({ min: 1, max: 3600 }),
        refreshonly: fc.boolean()
      }, { requiredKeys: ['type', 'command'] })
  }
}

/** A valid ordinary policy as plain input data (before defaults are filled in). */
export const arbConfigPolicyInput: fc.Arbitrary<Record<string, unknown>> = fc.record({
  name: arbPolicyName,
  description: arbText,
  vars: arbData,
  kinds: fc.array(fc.constantFrom<Kind>('file', 'directory', 'symlink', 'config', 'exec'), { maxLength: 6 }),
  edges: fc.array(fc.tuple(fc.nat(), fc.nat(), fc.boolean()), { maxLength: 6 })
}, { requiredKeys: ['name', 'kinds', 'edges', 'vars'] }).chain(({ name, description, vars, kinds, edges }) => {
  const varNames = Object.keys(vars)
  return fc.tuple(...kinds.map((k, i) => arbResourceBody(k, `/srv/r${i}`, varNames))).map((bodies) => {
    const resources: Array<Record<string, unknown>> = bodies.map((b, i) => ({ id: `r${i}`, ...b }))
    // Edges only point forward in the list (requires an earlier one, notify a later one), so there is never a cycle.
    for (const [a, b, asNotify] of edges) {
      if (resources.length < 2) break
      const lo = Math.min(a % resources.length, b % resources.length)
      const hi = Math.max(a % resources.length, b % resources.length)
      if (lo === hi) continue
      const field = asNotify ? 'notify' : 'requires'
      const from = asNotify ? resources[lo]! : resources[hi]!
      const to = `r${asNotify ? hi : lo}`
      const list = (from[field] as string[] | undefined) ?? []
      if (!list.includes(to)) from[field] = [...list, to]
    }
    return { name, ...(description === undefined ? {} : { description }), vars, resources }
  })
})

export const arbTrustPolicyInput: fc.Arbitrary<Record<string, unknown>> = fc.record({
  kind: fc.constant('trust'),
  name: fc.constant(TRUST_POLICY_NAME),
  admins: fc.array(fc.record({
    name: arbText.filter((s) => s.length > 0),
    key: arbKeyId,
    scopes: fc.array(fc.oneof(fc.constant('*'), arbPolicyName, arbPolicyName.map((n) => `${n}/`)), { minLength: 1, maxLength: 3 })
  }, { requiredKeys: ['key', 'scopes'] }), { maxLength: 4 }),
  revoked: fc.array(arbKeyId, { maxLength: 3 })
})

/** A tombstone that retires a policy name. */
export const arbRetiredPolicyInput: fc.Arbitrary<Record<string, unknown>> = fc.record({
  kind: fc.constant('retired'),
  name: arbPolicyName,
  description: arbText
}, { requiredKeys: ['kind', 'name'] })

/** A valid policy of any kind, already validated (defaults filled in). */
export const arbPolicy: fc.Arbitrary<Policy> = fc.oneof(
  { arbitrary: arbConfigPolicyInput.map((p) => ({ kind: 'policy', ...p })), weight: 4 },
  { arbitrary: arbTrustPolicyInput, weight: 1 },
  { arbitrary: arbRetiredPolicyInput, weight: 1 }
).map((input) => validatePolicyObject(input, '<arbitrary>'))
