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

/** The problems parsePolicy reports for `text`, or a failure if it accepts it. */
export function problemsOf (text: string, file = 'p.yaml'): PolicyProblem[] {
  const o = outcome(text, file)
  if ('problems' in o) return o.problems
  throw new Error('expected the policy to be refused')
}

/** The message parsePolicy refuses `text` with, or a failure if it accepts it. */
export function messageOf (text: string, file = 'p.yaml'): string {
  try {
    parsePolicy(text, file)
  } catch (err) {
    if (err instanceof InvalidPolicyError) return err.message
    throw err
  }
  throw new Error('expected the policy to be refused')
}

/** Lines of a policy file. */
export const lines = (...ls: string[]): string => ls.join('\n') + '\n'
