import { InvalidPolicyError, parsePolicy, type Policy, type PolicyProblem } from '../../src/policy/index.js'

/** What parsing a policy text gives: the policy, or the problems it was refused for. */
export type Outcome = { policy: Policy } | { problems: PolicyProblem[] }

/** parsePolicy, with a refusal as a value, so that two ways of reading a text compare with toEqual. */
export function outcome (text: string, file: string): Outcome {
  try {
    return { policy: parsePolicy(text, file) }
  } catch (err) {
    if (err instanceof InvalidPolicyError) return { problems: err.problems }
    throw err
  }
}
