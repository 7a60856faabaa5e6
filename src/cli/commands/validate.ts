import type { Register } from '../register.js'
import { formatProblem, InvalidPolicyError, PolicyTooLargeError } from '../../policy/errors.js'
import { EXIT, colour, print, printJson } from '../output.js'

export const registerValidate: Register = (program, done) => {
  program.command('validate')
    .description('Check policy files against the format; exit 0 when all are valid, 1 when any is not.')
    .argument('<policy...>', 'policy files (YAML or JSON)')
    .option('--json', 'print results as JSON')
    .option('--allow-source-outside', 'let source: name files outside the policy file\'s directory (absolute, "..", or through a symlink); whatever a source names is signed and sent to every targeted node')
    .action(async (files: string[], opts: { json?: boolean, allowSourceOutside?: boolean }) => {
      const { loadPolicyFile } = await import('../../policy/load.js')
      const results = []
      for (const file of files) {
        try {
          const policy = await loadPolicyFile(file, { allowSourceOutside: opts.allowSourceOutside === true })
          results.push({ file, valid: true, name: policy.name, kind: policy.kind, resources: policy.kind === 'policy' ? policy.resources.length : 0, problems: [] })
        } catch (err) {
          if (err instanceof InvalidPolicyError) results.push({ file, valid: false, problems: err.problems })
          // The problem line names the file already; the error's own message would name it twice.
          else if (err instanceof PolicyTooLargeError) results.push({ file, valid: false, problems: [{ path: '', message: `${err.size} bytes is over the ${err.limit}-byte limit for a policy` }] })
          else throw err
        }
      }
      if (opts.json === true) printJson(results)
      else {
        for (const r of results) {
          if (r.valid) print(`${colour.green('ok')}    ${r.file}: ${r.kind} "${r.name}"${r.kind === 'policy' ? `, ${r.resources} resource${r.resources === 1 ? '' : 's'}` : ''}`)
          else {
            print(`${colour.red('error')} ${r.file}: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`)
            for (const p of r.problems) print(`  ${formatProblem(r.file, p)}`)
          }
        }
      }
      done(results.every((r) => r.valid) ? EXIT.OK : EXIT.INVALID)
    })
}
