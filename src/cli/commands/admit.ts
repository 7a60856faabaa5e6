import { writeFile } from 'node:fs/promises'
import type { Command as BaseCommand } from 'commander'
import type { Register } from '../register.js'
import { CliError, EXIT, print } from '../output.js'
import { collect, parseTags } from '../defaults.js'
import { parseDuration as durationMs } from '../duration.js'
import { connect } from './mesh.js'
import { publishAndReport, publishFlags, type PublishFlags } from './publish.js'

/** The longest lifetime `--expires` takes. */
const MAX_LIFETIME_MS = 100 * 365 * 86_400_000

/** `90d`, `12h`, `2w`, `1y`, `3600s`: a certificate's lifetime. */
export function parseDuration (value: string): number {
  const ms = durationMs(value)
  if (ms === undefined || ms < 1000) throw new CliError(`--expires expects a duration like 90d, 12h, 2w or 1y: got "${value}"`, EXIT.USAGE)
  // Past this a date is no ISO date any more (and no certificate should outlive its fleet).
  if (ms > MAX_LIFETIME_MS) throw new CliError(`--expires: at most 100y: got "${value}"`, EXIT.USAGE)
  return ms
}

async function checkPeerId (peer: string): Promise<void> {
  const { keyIdOfPeer } = await import('../../net/identity.js')
  if (keyIdOfPeer(peer) === undefined) throw new CliError(`"${peer}" is not an Ed25519 libp2p peer id (like 12D3KooW…; \`grapevine status\` on the node shows its id)`, EXIT.USAGE)
}

interface AdmitFlags extends PublishFlags {
  revoke?: boolean
  name?: string
  tag?: string[]
  out?: string
  expires?: string
}

/** Issues a certificate: stdout, or a file (0644: it is not secret, the node shows it to everyone). */
async function issue (peer: string, opts: AdmitFlags): Promise<void> {
  let tags: Record<string, string>
  try {
    tags = parseTags(opts.tag)
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.USAGE)
  }
  const lifetime = opts.expires !== undefined ? parseDuration(opts.expires) : undefined
  const [{ readSigningKey }, { signAdmission, InvalidAdmissionError }] = await Promise.all([import('../../envelope/index.js'), import('../../admission/index.js')])
  const key = await readSigningKey(opts.key)
  const now = Date.now()
  let bytes: Uint8Array
  try {
    bytes = signAdmission({ peer, name: opts.name ?? peer, tags, key, issuedAt: now, ...(lifetime !== undefined ? { expires: now + lifetime } : {}) })
  } catch (err) {
    if (err instanceof InvalidAdmissionError) throw new CliError(err.message, EXIT.USAGE)
    throw err
  }
  if (opts.out === undefined) {
    process.stdout.write(`${new TextDecoder().decode(bytes)}\n`)
    return
  }
  await writeFile(opts.out, bytes, { mode: 0o644 })
  print(`admitted ${peer} as "${opts.name ?? peer}"${lifetime !== undefined ? `, until ${new Date(now + lifetime).toISOString()}` : ''}, signed by ${key.id}: ${opts.out}`)
  print(`give it to the node: grapevine agent --admission ${opts.out} (or copy it to <state>/admission.cert). Nodes count it once the trust policy lists ${key.id} under enrollers, or if it is a root key`)
}

/** Withdraws an admission: the current trust policy, with the peer id added to revokedNodes, published as the next version. */
async function revoke (peer: string, opts: AdmitFlags, done: (code: number) => void): Promise<void> {
  const [{ TRUST_POLICY_NAME }, { validatePolicyObject }, { validateEnvelope }] = await Promise.all([
    import('../../policy/index.js'), import('../../policy/parse.js'), import('../../envelope/index.js')
  ])
  const client = await connect(opts)
  let current: Record<string, unknown> | undefined
  try {
    const head = await client.current(TRUST_POLICY_NAME)
    const bytes = head === undefined ? undefined : await client.envelope(TRUST_POLICY_NAME, head.version)
    if (head !== undefined && bytes === undefined) throw new CliError(`the agent reached names ${TRUST_POLICY_NAME} v${head.version} but did not hand it over`, EXIT.UNAVAILABLE)
    if (bytes !== undefined) current = validateEnvelope(bytes, { authorize: () => {} }).policy as unknown as Record<string, unknown>
  } finally {
    await client.close()
  }
  const base = current ?? { kind: 'trust', name: TRUST_POLICY_NAME, admins: [] }
  const revokedNodes = (base.revokedNodes as string[] | undefined) ?? []
  if (revokedNodes.includes(peer)) {
    print(`${peer} is already in ${TRUST_POLICY_NAME}'s revokedNodes; nothing published`)
    done(EXIT.OK)
    return
  }
  const policy = validatePolicyObject({ ...base, revokedNodes: [...revokedNodes, peer] })
  await publishAndReport(policy, opts, done, `revoked the admission of ${peer}:`)
}

export const registerAdmit: Register = (program, done) => {
  const admit = program.command('admit')
    .description('Admit a node to the fleet: sign a certificate binding its peer id, name and tags to your enroller key; or --revoke an admission through the trust policy.')
    .argument('<peer-id>', 'the node\'s libp2p peer id (grapevine status on the node shows it)')
    .option('--revoke', 'withdraw this node\'s admission: publish the trust policy with the peer id in revokedNodes (needs a root --key and the mesh)')
    .option('--name <name>', 'the node\'s name, as the certificate asserts it (default: the peer id)')
    .option('--tag <k=v>', 'a tag the certificate asserts, repeatable', collect)
    .option('--out <file>', 'write the certificate to this file (mode 0644) instead of standard output')
    .option('--expires <duration>', 'the certificate expires after this long: 90d, 12h, 2w, 1y (default: never)')
  // The mesh flags, --key and --wait serve --revoke; issuing needs only --key.
  publishFlags(admit as unknown as BaseCommand)
  admit.action(async (peer: string, opts: Record<string, unknown>) => {
    const flags = opts as unknown as AdmitFlags
    await checkPeerId(peer)
    if (flags.revoke === true) {
      if (flags.out !== undefined || flags.tag !== undefined || flags.expires !== undefined || flags.name !== undefined) {
        throw new CliError('--revoke takes no --name, --tag, --out or --expires', EXIT.USAGE)
      }
      await revoke(peer, flags, done)
      return
    }
    await issue(peer, flags)
    done(EXIT.OK)
  })
}
