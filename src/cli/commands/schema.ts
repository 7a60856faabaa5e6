import type { Register } from '../main.js'
import { EXIT, printJson } from '../output.js'
import { policyJsonSchema } from '../../policy/index.js'

export const registerSchema: Register = (program, done) => {
  program.command('schema')
    .description('Print the policy format as JSON Schema (the same as policies/schema.json).')
    .action(() => {
      printJson(policyJsonSchema())
      done(EXIT.OK)
    })
}
