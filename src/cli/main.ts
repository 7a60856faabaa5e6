import { readFileSync } from 'node:fs'
import { Command, CommanderError } from '@commander-js/extra-typings'
import { CliError, EXIT, exitQuietlyOnClosedStdout, printError, reportRusageAtExit } from './output.js'
import { checkBootstrapFlags, checkPolicyFiles, environmentProblem } from './environment.js'
// errors.js, not the policy index: the index loads zod and yaml, which most commands never need.
import { InvalidPolicyError, PolicyTooLargeError, TemplateError } from '../policy/errors.js'
import { registerValidate } from './commands/validate.js'
import { registerKeys } from './commands/keys.js'
import { registerSchema } from './commands/schema.js'
import { registerAgent } from './commands/agent.js'
import { registerStatus } from './commands/status.js'
import { registerPublish } from './commands/publish.js'
import { registerApply } from './commands/apply.js'
import { registerSim } from './commands/sim.js'
import { registerDemo } from './commands/demo.js'
import { registerAdmit } from './commands/admit.js'
import { registerRollout } from './commands/rollout.js'
import { registerReseal } from './commands/reseal.js'
import { registerRekey } from './commands/rekey.js'
import { registerFacts } from './commands/facts.js'
import { registerIdentity } from './commands/identity.js'
import { registerEnroll } from './commands/enroll.js'
import type { Register } from './register.js'

const COMMANDS: Register[] = [registerValidate, registerKeys, registerSchema, registerAgent, registerStatus, registerPublish, registerApply, registerSim, registerDemo, registerAdmit, registerRollout, registerReseal, registerRekey, registerFacts, registerIdentity, registerEnroll]

/** Commands whose arguments are policy files: each is checked before the command runs (environment.ts). */
const POLICY_FILE_COMMANDS = new Set(['validate', 'sign', 'plan', 'apply', 'publish'])

export async function main (argv: string[]): Promise<number> {
  if (process.env.GRAPEVINE_RUSAGE === '1') reportRusageAtExit()
  exitQuietlyOnClosedStdout()
  let code: number = EXIT.OK
  const program = new Command()
    .name('grapevine')
    .description('Peer-to-peer configuration management: signed, versioned policies gossiped over libp2p.')
    .version(version(), '-V, --version')
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  for (const register of COMMANDS) register(program as unknown as Command, (c) => { code = c })
  program.hook('preAction', async (_, command) => {
    if (POLICY_FILE_COMMANDS.has(command.name())) await checkPolicyFiles(command.processedArgs.flat().filter((a): a is string => typeof a === 'string'))
    const bootstrap = (command.opts() as { bootstrap?: unknown }).bootstrap
    if (Array.isArray(bootstrap) && bootstrap.length > 0) await checkBootstrapFlags(bootstrap as string[])
  })

  try {
    await program.parseAsync(argv)
    return code
  } catch (err) {
    return handleError(err)
  }
}

function handleError (err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.OK
    return EXIT.USAGE
  }
  if (err instanceof CliError) {
    printError(err.message)
    return err.exitCode
  }
  if (err instanceof InvalidPolicyError) {
    process.stderr.write(`${err.problems.length} problem${err.problems.length === 1 ? '' : 's'} in ${err.file}:\n${err.message}\n`)
    return EXIT.INVALID
  }
  if (err instanceof PolicyTooLargeError || err instanceof TemplateError) {
    printError(err.message)
    return EXIT.INVALID
  }
  const e = err as Error & { code?: string }
  // A named error over a file the machine would not give (a key file missing or unreadable): unavailable, not invalid.
  if (e instanceof Error && e.name.endsWith('Error') && environmentProblem(e.cause) !== undefined) {
    printError(e.message)
    return EXIT.UNAVAILABLE
  }
  if (e?.name !== undefined && e.name.endsWith('Error') && e.name !== 'Error' && e.name !== 'TypeError' && e.name !== 'RangeError' && e.name !== 'ReferenceError') {
    // Named domain errors (envelope, trust, ...) carry messages meant for people.
    printError(e.message)
    return EXIT.INVALID
  }
  // The machine's doing (permissions, a port in use), not a bug: one line, no stack.
  const problem = environmentProblem(err)
  if (problem !== undefined) {
    printError(problem)
    return EXIT.UNAVAILABLE
  }
  printError(`internal error: ${e?.stack ?? String(err)}`)
  return EXIT.INTERNAL
}

function version (): string {
  // Synchronous: a 2 KB read costs microseconds, a trip through the thread pool more.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}
