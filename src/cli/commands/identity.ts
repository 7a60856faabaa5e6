import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Register } from '../register.js'
import { CliError, EXIT, print, printJson } from '../output.js'
import { defaultStateDir } from '../defaults.js'

/**
 * `grapevine identity`: the node's peer id, offline, from its state directory, making the
 * identity key there first if it has none, as the agent would at its first start. `enroll`
 * asks the node this way, so the private key is made on the node and never leaves it.
 */
export const registerIdentity: Register = (program, done) => {
  program.command('identity')
    .description('Print this node\'s peer id from its state directory, making its identity key there first if it has none (offline; an agent may be running).')
    .option('--state <dir>', `state directory (default: ${defaultStateDir()})`)
    .option('--json', 'print { peerId, stateDir, created } as JSON')
    .action(async (opts) => {
      const stateDir = resolve(opts.state ?? defaultStateDir())
      const [{ StateStore }, { loadIdentity, peerIdOf }] = await Promise.all([import('../../store/index.js'), import('../../net/identity.js')])
      try {
        await mkdir(stateDir, { recursive: true, mode: 0o700 })
      } catch (err) {
        throw new CliError(`cannot make the state directory ${stateDir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.UNAVAILABLE)
      }
      // The store's constructor only: open() tidies the directory (stale temp files), which a running agent may be writing.
      const store = new StateStore(stateDir)
      let identity: Awaited<ReturnType<typeof loadIdentity>>
      try {
        identity = await loadIdentity(store)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code !== undefined) throw new CliError(`cannot read or write ${stateDir}/identity.key: ${code}`, EXIT.UNAVAILABLE)
        throw new CliError(`${stateDir}/identity.key holds no libp2p private key: ${(err as Error).message}`)
      }
      const { created } = identity
      const peerId = peerIdOf(identity.key).toString()
      if (opts.json === true) printJson({ peerId, stateDir, created })
      else {
        print(peerId)
        if (created) process.stderr.write(`made a new identity key: ${stateDir}/identity.key (mode 0600)\n`)
      }
      done(EXIT.OK)
    })
}
