import { z } from '../vendor/zod.js'
import { anyPolicy } from './schema.js'

/** JSON Schema for policy files, generated from the validator's own schemas. */
export function policyJsonSchema (): Record<string, unknown> {
  const schema = z.toJSONSchema(anyPolicy, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
  return {
    $schema: schema.$schema,
    $id: 'https://grapevine.dev/schema/policy.json',
    title: 'Grapevine policy',
    description: 'A signed, versioned desired state for a set of nodes. See README.md, "Policy format".',
    ...schema
  }
}
