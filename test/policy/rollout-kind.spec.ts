import { describe, expect, it } from 'vitest'
import { InvalidPolicyError, parsePolicy, validatePolicyObject, anyPolicy, policyJsonSchema } from '../../src/policy/index.js'
import { rolloutRecord, type RolloutRecord } from '../../src/rollout/index.js'
import { rolloutRecordOf } from '../helpers/rollout.js'

// `kind: rollout` is a policy kind (docs/rollout.md, "The record"): the validator reads it with
// the record's own schema (src/rollout/record.ts), a member of anyPolicy.

const record = (policy = 'web/nginx'): RolloutRecord => rolloutRecordOf({ policy, bakeMs: 60_000 })

/** The first problem validatePolicyObject refuses `data` with. */
function refusal (data: unknown): string {
  try {
    validatePolicyObject(data, 'r')
  } catch (err) {
    if (err instanceof InvalidPolicyError) return `${err.problems[0]?.path ?? ''}: ${err.problems[0]?.message ?? ''}`
    throw err
  }
  throw new Error('expected the record to be refused')
}

describe('kind: rollout in the policy union', () => {
  it('is one schema: anyPolicy reads a rollout record with rolloutRecord itself', () => {
    expect(anyPolicy.options).toContain(rolloutRecord)
  })

  it.each([
    ['a running record', record()],
    ['a record of a one-segment policy', record('site')],
    ['a record of a deep policy name', record('web/eu/nginx')],
    ['a paused record with a reason', { ...record(), state: 'paused', reason: 'lunch' }],
    ['a halted, rolled-back record', { ...record(), state: 'halted', reason: 'too many failures', rolledBack: true }],
    ['a done record at its last stage', { ...record(), state: 'done', stage: 1 }]
  ])('accepts %s, as it was written', (_, data) => {
    expect(validatePolicyObject(data)).toEqual(data)
  })

  it.each([
    ['a name that is not rollout/<policy>', { ...record(), name: 'rollout/web/other' }, 'name: expected "rollout/web/nginx", the rollout of the policy it names'],
    ['a name without the prefix', { ...record(), name: 'web/nginx' }, 'name: expected "rollout/web/nginx", the rollout of the policy it names'],
    ['a record of a rollout record', { ...record('x'), policy: 'rollout/x', name: 'rollout/rollout/x' }, 'policy: a rollout record cannot roll out another rollout record'],
    ['a record of the trust policy', { ...record('x'), policy: 'grapevine/trust', name: 'rollout/grapevine/trust' }, 'policy: grapevine/trust is not rolled out in stages'],
    ['a policy name that is not path-like', { ...record('x'), policy: 'Web', name: 'rollout/Web' }, 'policy: expected a path-like lower-case name such as "web/nginx"'],
    ['a stage index past the last stage', { ...record(), stage: 2 }, 'stage: expected a stage index below 2'],
    ['a halted record with no reason', { ...record(), state: 'halted' }, 'reason: a halted rollout says why'],
    ['an unknown field', { ...record(), resources: [] }, 'resources: unknown field'],
    ['a missing target', (({ target: _, ...r }) => r)(record()), 'target: required field is missing (expected object)']
  ])('refuses %s', (_, data, message) => {
    expect(refusal(data)).toMatch(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
  })

  it('reads a rollout record file like any policy file (JSON or YAML), naming the kinds when one is wrong', () => {
    const r = record()
    expect(parsePolicy(JSON.stringify(r), 'r.json')).toEqual(r)
    expect(() => parsePolicy(JSON.stringify({ ...r, kind: 'rolout' }), 'r.json')).toThrow(/kind: expected kind to be "policy", "trust", "retired" or "rollout", got "rolout"/)
  })

  it('is in the JSON Schema that policies/schema.json is written from', () => {
    expect(JSON.stringify(policyJsonSchema())).toContain('"const":"rollout"')
  })
})
