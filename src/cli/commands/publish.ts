import { readFile } from 'node:fs/promises'
import { Option } from '@commander-js/extra-typings'
import type { Register } from '../main.js'
import { CliError, EXIT, colour, print, printJson } from '../output.js'
import { collect } from '../defaults.js'
import { loadPolicyFile } from '../../policy/index.js'
import { readSigningKey } from '../../envelope/index.js'

/** Exit code when another admin's envelope won the same version (see README). */
export const EXIT_CONFLICT_LOST = 3

export const registerPublish: Register = (program, done) => {
  program.command('publish')
    .description('Sign a policy as the next version and publish it to the mesh through any agent.')
    .argument('<policy>', 'policy file (YAML or JSON)')
    .requiredOption('--key <file>', 'admin private key')
    .option('--bootstrap <multiaddr>', 'join the mesh through this agent (repeatable)', collect)
    .option('--agent <url>', 'hand the envelope to this agent\'s local API instead')
    .addOption(new Option('--version <n>', 'sign exactly this version (default: next after the mesh\'s newest)').argParser((v) => {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new CliError(`--version must be a positive integer: got "${v}"`, EXIT.USAGE)
      return Number(v)
    }))
    .option('--mesh <name>', 'mesh name (default "default")')
    .option('--swarm-key <file>', 'pre-shared swarm key of a private mesh')
    .option('--json', 'print the result as JSON')
    .action(async (file, opts) => {
      if ((opts.bootstrap === undefined || opts.bootstrap.length === 0) && opts.agent === undefined) {
        throw new CliError('give --bootstrap MULTIADDR (any agent of the mesh) or --agent URL', EXIT.USAGE)
      }
      const policy = await loadPolicyFile(file)
      const key = await readSigningKey(opts.key)
      const { publishPolicy } = await import('../../node/publisher.js')
      const result = await publishPolicy({
        policy,
        key,
        version: opts.version,
        bootstrap: opts.bootstrap,
        agent: opts.agent,
        mesh: opts.mesh,
        swarmKey: opts.swarmKey !== undefined ? new Uint8Array(await readFile(opts.swarmKey)) : undefined
      })
      const env = result.envelope
      const lost = result.conflict !== undefined && result.conflict.winner !== env.hash
      if (opts.json === true) {
        printJson({ name: env.name, version: env.version, hash: env.hash, id: env.id, signer: env.signer, previous: result.previous ?? null, confirmedBy: result.confirmedBy, conflict: result.conflict ?? null, conflictLost: lost })
      } else {
        print(`published ${colour.bold(env.name)} v${env.version} ${env.hash}${result.previous !== undefined ? ` (mesh had v${result.previous.version})` : ''}`)
        print(`  confirmed by ${result.confirmedBy.length} peer${result.confirmedBy.length === 1 ? '' : 's'}`)
        if (lost) print(colour.red(`  conflict: another admin published different content as v${env.version}; theirs (${result.conflict?.winner}) wins on every node. Publish again to supersede it.`))
      }
      done(lost ? EXIT_CONFLICT_LOST : EXIT.OK)
    })
}
