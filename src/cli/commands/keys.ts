import { readFile, writeFile, rename } from 'node:fs/promises'
import { Option } from '@commander-js/extra-typings'
import type { Register } from '../register.js'
import { CliError, EXIT, colour, print, printJson } from '../output.js'
import { collect } from '../defaults.js'

/** keygen, sign and verify: the offline half of publishing. Each action loads what it needs, so the CLI starts fast. */
export const registerKeys: Register = (program, done) => {
  program.command('keygen')
    .description('Write a new Ed25519 admin key (mode 0600) and print its public key id.')
    .requiredOption('--out <file>', 'where to write the private key; the public key id goes to <file>.pub')
    .option('--force', 'overwrite an existing key file')
    .option('--json', 'print the key id as JSON')
    .action(async (opts) => {
      const { generateSigningKey, writePublicKeyFile, writeSigningKey } = await import('../../envelope/index.js')
      const key = generateSigningKey()
      try {
        await writeSigningKey(opts.out, key, opts.force === true)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError(`${opts.out} already exists; use --force to overwrite it`)
        throw cannotWrite(opts.out, err)
      }
      await writePublicKeyFile(`${opts.out}.pub`, key).catch((err: unknown) => { throw cannotWrite(`${opts.out}.pub`, err) })
      if (opts.json === true) printJson({ keyId: key.id, privateKey: opts.out, publicKey: `${opts.out}.pub` })
      else {
        print(key.id)
        process.stderr.write(`wrote ${opts.out} (private, mode 0600) and ${opts.out}.pub\n`)
      }
      done(EXIT.OK)
    })

  program.command('swarm-key')
    .description('Write a new pre-shared swarm key (libp2p pnet): agents started with it only talk to each other.')
    .requiredOption('--out <file>', 'where to write the key (mode 0600)')
    .action(async (opts) => {
      const { generateSwarmKey } = await import('../../net/identity.js')
      const { open } = await import('node:fs/promises')
      let fh
      try {
        fh = await open(opts.out, 'wx', 0o600)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError(`${opts.out} already exists; a swarm key is never overwritten`)
        throw err
      }
      await fh.writeFile(generateSwarmKey())
      await fh.close()
      process.stderr.write(`wrote ${opts.out}; copy it to every node and pass --swarm-key ${opts.out}\n`)
      done(EXIT.OK)
    })

  program.command('sign')
    .description('Validate a policy and sign it as a version, writing a signed envelope.')
    .argument('<policy>', 'policy file (YAML or JSON)')
    .requiredOption('--key <file>', 'admin private key (from keygen)')
    .addOption(new Option('--version <n>', 'version number to sign (a positive integer)').argParser(parseVersion).makeOptionMandatory())
    .option('--out <file>', 'where to write the envelope (default: standard output)')
    .option('--allow-source-outside', 'let source: name files outside the policy file\'s directory (absolute, "..", or through a symlink); whatever a source names is signed and sent to every targeted node')
    .action(async (file, opts) => {
      const [{ loadPolicyFile }, { readSigningKey, signPolicy, validateEnvelope, MAX_ENVELOPE_BYTES }] = await Promise.all([import('../../policy/load.js'), import('../../envelope/index.js')])
      const policy = await loadPolicyFile(file, { allowSourceOutside: opts.allowSourceOutside === true })
      const key = await readSigningKey(opts.key)
      const bytes = signPolicy(policy, { version: opts.version, key })
      if (bytes.byteLength > MAX_ENVELOPE_BYTES) throw new CliError(`the signed envelope is ${bytes.byteLength} bytes, over the ${MAX_ENVELOPE_BYTES}-byte limit nodes accept`)
      const env = validateEnvelope(bytes, { authorize: () => {} })
      if (opts.out === undefined) process.stdout.write(Buffer.from(bytes))
      else {
        const tmp = `${opts.out}.tmp-${process.pid}`
        try {
          await writeFile(tmp, bytes)
          await rename(tmp, opts.out)
        } catch (err) {
          throw cannotWrite(opts.out, err)
        }
      }
      process.stderr.write(`signed ${env.name} v${env.version} (${env.hash}) with ${env.signer}; envelope ${env.id.slice(0, 16)}\n`)
      done(EXIT.OK)
    })

  program.command('verify')
    .description('Check an envelope\'s signature, content hash, and that a trusted key may sign it. Exit 0 valid, 1 refused.')
    .argument('<envelope>', 'signed envelope file')
    .requiredOption('--trust <key>', 'trusted root: a public key id or a file holding one (repeatable)', collect, [] as string[])
    .option('--trust-policy <envelope>', 'a signed trust policy envelope that grants admin keys')
    .option('--json', 'print the verified header as JSON')
    .action(async (file, opts) => {
      const [{ resolveTrustedKey, validateEnvelope, EnvelopeError }, { TrustStore }] = await Promise.all([import('../../envelope/index.js'), import('../../trust/index.js')])
      // As for the agent: a --trust that is no public key (a private key file) is a usage error.
      const roots = await Promise.all(opts.trust.map(async (v) => await resolveTrustedKey(v).catch((err: Error) => { throw new CliError(`--trust: ${err.message}`, EXIT.USAGE) })))
      const trust = new TrustStore(roots)
      if (opts.trustPolicy !== undefined) {
        const tp = validateEnvelope(await readBytes(opts.trustPolicy), trust)
        if (tp.policy.kind !== 'trust') throw new CliError(`${opts.trustPolicy} is not a trust policy`)
        trust.update(tp.policy)
      }
      try {
        const env = validateEnvelope(await readBytes(file), trust)
        const summary = { valid: true, id: env.id, name: env.name, version: env.version, hash: env.hash, signer: env.signer, issuedAt: env.issuedAt }
        if (opts.json === true) printJson(summary)
        else print(`${colour.green('valid')} ${env.name} v${env.version} ${env.hash}\n  signed by ${env.signer} at ${env.issuedAt}\n  envelope id ${env.id}`)
        done(EXIT.OK)
      } catch (err) {
        if (!(err instanceof EnvelopeError)) throw err
        if (opts.json === true) printJson({ valid: false, reason: err.reason, error: err.message })
        else process.stderr.write(`${colour.red('refused')} ${file}: ${err.message} (${err.reason})\n`)
        done(EXIT.INVALID)
      }
    })
}

function parseVersion (value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new CliError(`--version must be a positive integer: got "${value}"`, EXIT.USAGE)
  return n
}

/** A file the user named cannot be written (no such directory, no permission): their problem to fix, not a bug. */
function cannotWrite (file: string, err: unknown): CliError {
  return new CliError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.UNAVAILABLE)
}

async function readBytes (file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file))
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.UNAVAILABLE)
  }
}
