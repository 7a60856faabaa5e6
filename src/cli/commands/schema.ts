import type { Register } from '../register.js'
import { EXIT, printJson } from '../output.js'

export const registerSchema: Register = (program, done) => {
  program.command('schema')
    .description('Print the policy format as JSON Schema (the same as policies/schema.json).')
    .action(async () => {
      const { policyJsonSchema } = await import('../../policy/json-schema.js')
      printJson(policyJsonSchema())
      done(EXIT.OK)
    })
}
