import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { parse as parseYaml } from 'yaml'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parsePolicy, policyJsonSchema } from '../../src/policy/index.js'
import { REPO_ROOT } from '../helpers/cli.js'
import { arbConfigPolicyInput, arbRetiredPolicyInput, arbTrustPolicyInput } from '../helpers/policy-arbitraries.js'

const EXAMPLES = join(REPO_ROOT, 'policies')
const SCHEMA_FILE = join(EXAMPLES, 'schema.json')

describe('policies/schema.json', () => {
  it('is exactly what `npm run schema` writes now, so it cannot go stale', async () => {
    const onDisk = await readFile(SCHEMA_FILE, 'utf8')
    // `grapevine schema` prints JSON.stringify(schema, null, 2) and a newline.
    expect(onDisk).toBe(JSON.stringify(policyJsonSchema(), null, 2) + '\n')
  })

  it('describes both kinds of policy', () => {
    const schema = policyJsonSchema()
    expect(schema).toMatchObject({ $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'https://grapevine.dev/schema/policy.json' })
    expect(JSON.stringify(schema)).toContain('"const":"trust"')
  })
})

describe('policies validate against the JSON Schema (checked by ajv)', async () => {
  const ajv = new Ajv2020({ allErrors: true, strict: false })
  const validate = ajv.compile(JSON.parse(await readFile(SCHEMA_FILE, 'utf8')) as object)
  const files = (await readdir(EXAMPLES)).filter((f) => /\.(ya?ml|json)$/.test(f) && f !== 'schema.json').sort()

  it.each(files)('%s', async (name) => {
    const data: unknown = parseYaml(await readFile(join(EXAMPLES, name), 'utf8'))
    const ok = validate(data)
    expect(validate.errors ?? []).toEqual([])
    expect(ok).toBe(true)
  })

  // The schema is for editors; it must refuse what the validator refuses in the common cases,
  // or an editor would show a broken policy as fine.
  it.each([
    ['a mode written as a number', { name: 'a', resources: [{ id: 'f', type: 'file', path: '/x', mode: 644 }] }],
    ['an unknown field', { name: 'a', resources: [{ id: 'f', type: 'file', path: '/x', colour: 'blue' }] }],
    ['an unknown resource type', { name: 'a', resources: [{ id: 'f', type: 'package' }] }],
    ['a missing resources list', { name: 'a' }],
    ['an upper-case name', { name: 'Web', resources: [] }],
    ['a trust policy with a bad key id', { kind: 'trust', name: 'grapevine/trust', admins: [{ key: 'ed25519:short', scopes: ['*'] }] }],
    ['a trust policy under another name', { kind: 'trust', name: 'web/trust', admins: [] }]
  ])('refuses %s, like parsePolicy', (_, data) => {
    expect(validate(data)).toBe(false)
    expect(() => parsePolicy(JSON.stringify(data))).toThrow()
  })

  it('accepts every policy parsePolicy accepts, as written or with defaults filled in (property)', () => {
    fc.assert(fc.property(fc.oneof(arbConfigPolicyInput, arbTrustPolicyInput, arbRetiredPolicyInput), (input) => {
      const parsed = parsePolicy(JSON.stringify(input))
      expect(validate(input), JSON.stringify(validate.errors)).toBe(true)
      expect(validate(parsed), JSON.stringify(validate.errors)).toBe(true)
    }), { numRuns: 300 })
  })

  it('accepts a policy without kind, like parsePolicy', () => {
    const data = { name: 'a', resources: [{ id: 'e', type: 'exec', command: ['true'] }] }
    expect(validate(data)).toBe(true)
    expect(parsePolicy(JSON.stringify(data)).kind).toBe('policy')
  })
})
