import { z } from '../vendor/zod.js'

// Names on their own, with no other schema: src/rollout/record.ts needs them, and schema.ts needs
// that record's schema, so keeping them in schema.ts would make an import cycle.

/** Path-like policy name, e.g. `web/nginx`. Lower case so names never differ only by case. */
export const POLICY_NAME = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/

export const policyName = z.string().max(200).regex(POLICY_NAME, {
  error: 'expected a path-like lower-case name such as "web/nginx"'
})

export const TRUST_POLICY_NAME = 'grapevine/trust'
