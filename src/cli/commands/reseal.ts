import type { Command as BaseCommand } from 'commander'
import type { Register } from '../register.js'
import { CliError, EXIT } from '../output.js'
import { connect } from './mesh.js'
import { publishAndReport, publishFlags, type PublishFlags } from './publish.js'
import { readSecretsRequest, secretsFlags, type SecretsFlags } from './sealing.js'

/**
 * `grapevine reseal NAME --secrets FILE --key K`: the mesh's newest version of NAME, its
 * secrets sealed again to today's choice of recipients (nodes that joined or rekeyed since),
 * published as the next version. The values come from the admin again: nobody else can open them.
 */
export const registerReseal: Register = (program, done) => {
  const reseal = program.command('reseal')
    .description('Seal a policy\'s secrets again, to today\'s fleet (nodes that joined or rekeyed since), and publish it as the next version.')
    .argument('<name>', 'policy name, e.g. db/postgres')
  publishFlags(reseal as unknown as BaseCommand)
  secretsFlags(reseal as unknown as BaseCommand)
  reseal.action(async (name: string, opts: Record<string, unknown>) => {
    const flags = opts as unknown as PublishFlags & SecretsFlags
    if (flags.secrets === undefined) throw new CliError('reseal needs the values again: --secrets FILE (or - for stdin)', EXIT.USAGE)
    const [{ validateEnvelope }, { validatePolicyObject }, { withoutSealed }] = await Promise.all([
      import('../../envelope/index.js'), import('../../policy/parse.js'), import('../../client/index.js')
    ])
    const client = await connect(flags)
    let bytes: Uint8Array | undefined
    let version: number
    try {
      const head = await client.current(name)
      if (head === undefined) throw new CliError(`the mesh holds no policy named ${name} (\`grapevine status\` lists the policies an agent holds)`, EXIT.INVALID)
      version = head.version
      bytes = await client.envelope(name, head.version)
    } finally {
      await client.close()
    }
    if (bytes === undefined) throw new CliError(`the mesh says ${name} v${version} is its newest, but no agent reached serves it`)
    // Signature and form checked, as rollback does; the agents judge the signer when the next version arrives.
    const head = validateEnvelope(bytes, { authorize: () => {} })
    if (head.name !== name || head.version !== version) throw new CliError(`the agent answered with ${head.name} v${head.version}, not ${name} v${version}`)
    const policy = validatePolicyObject(head.policy)
    if (policy.kind !== 'policy' || policy.sealed === undefined) {
      throw new CliError(`${name} v${version} carries no sealed secrets, so there is nothing to reseal (publish a policy that refers to {{ secrets.NAME }} with --secrets)`, EXIT.INVALID)
    }
    const bare = withoutSealed(policy)
    const secrets = await readSecretsRequest(bare, flags)
    if (secrets === undefined) throw new CliError(`${name} v${version} refers to no secret, though it carries sealed ones; publish it again from its file`, EXIT.INVALID)
    await publishAndReport(bare, flags, done, 'resealed', { secrets })
  })
}
