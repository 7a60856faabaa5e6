import type { Register } from '../register.js'
import { CliError, EXIT, print, printJson, printWarning } from '../output.js'

/** `grapevine facts`: what this node knows about itself, as templates (`{{ facts.* }}`) and targets (`target.facts`) see it. */
export const registerFacts: Register = (program, done) => {
  program.command('facts')
    .description('Print this machine\'s facts (os, kernel, architecture, host names, processors, memory, addresses, init, and custom facts from facts.d) as `dotted.path: value` lines, or one fact by its path. Exit 1: no such fact.')
    .argument('[fact]', 'print only this fact, by its dotted path (os.family)')
    .option('--facts-dir <dir>', 'custom facts: *.json, *.yaml, *.yml maps here (default /etc/grapevine/facts.d)')
    .option('--json', 'print the facts as JSON')
    .action(async (path: string | undefined, opts: { factsDir?: string, json?: boolean }) => {
      const [{ gatherFacts }, { flattenFacts }, { factAt }] = await Promise.all([import('../../facts/gather.js'), import('../../facts/format.js'), import('../../policy/target.js')])
      const gathered = await gatherFacts({ factsDir: opts.factsDir })
      // Warnings name the fact files skipped; the facts are still printed.
      for (const w of gathered.warnings) printWarning(w)
      const value = path === undefined ? gathered.facts : factAt(gathered.facts, path)
      if (value === undefined) throw new CliError(`no fact "${path ?? ''}" on this machine (grapevine facts lists them)`, EXIT.INVALID)
      if (opts.json === true) printJson(value)
      else if (path !== undefined && (value === null || typeof value !== 'object')) print(typeof value === 'string' ? value : JSON.stringify(value))
      else print(flattenFacts(value, path ?? '').join('\n'))
      done(EXIT.OK)
    })
}
