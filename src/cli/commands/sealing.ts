import type { Command as BaseCommand } from 'commander'
import { CliError, EXIT, colour, print, printable } from '../output.js'
import { collect } from '../defaults.js'
import type { ConfigPolicy, Policy } from '../../policy/index.js'
import type { MeshClient, SealRequest } from '../../client/index.js'
import type { NamedRecipient, RecipientChoice } from '../../secrets/index.js'

// The secrets flags of publish and reseal (docs/secrets.md): read what they ask for before
// anything is sent, then choose the recipients, print them, and seal, whichever way the policy
// is published (plain or staged): one path for both.

export interface SecretsFlags {
  secrets?: string
  recipient?: string[]
  recipients?: string
  certifiedTags?: boolean
}

/** What publish --json says about the sealing: never a value. */
export interface SealReport {
  names: string[]
  recipients: Array<{ node: string, name: string, key: string, how: string }>
  skipped: RecipientChoice['skipped']
  warnings: string[]
}

export function secretsFlags (cmd: BaseCommand): BaseCommand {
  return cmd
    .option('--secrets <file>', 'the values of the secrets the policy refers to ({{ secrets.NAME }}): a YAML or JSON map, "-" for stdin; sealed to the recipients, never sent in the clear')
    .option('--recipient <peer[=age1…]>', 'with --secrets, seal to this node too (repeatable); a node this publisher never saw needs its key: PEERID=age1…', collect)
    .option('--recipients <file>', 'with --secrets, seal to exactly the nodes this YAML or JSON list names (PEERID, PEERID=age1…, or { node, key, name }), not to the targeted nodes')
    .option('--certified-tags', 'with --secrets, a targeted node is a recipient only when its admission certificate asserts the target\'s tags (tags are otherwise the node\'s own word)')
}

function recipientFlagsGiven (flags: SecretsFlags): string | undefined {
  if ((flags.recipient?.length ?? 0) > 0) return '--recipient'
  if (flags.recipients !== undefined) return '--recipients'
  if (flags.certifiedTags === true) return '--certified-tags'
  return undefined
}

/**
 * Reads what the secrets flags ask for, before anything is signed or sent: undefined when the
 * policy refers to no secret and none were given. Exit 1 for a policy that refers to secrets
 * without --secrets (naming them), 64 for --secrets on a policy that refers to none, or the
 * recipient flags without --secrets. The secrets file's warnings (a file others can read) go to
 * stderr. Only the values the policy refers to are kept.
 */
export async function readSecretsRequest (policy: Policy, flags: SecretsFlags): Promise<SealRequest | undefined> {
  const stray = recipientFlagsGiven(flags)
  if (flags.secrets === undefined) {
    if (stray !== undefined) throw new CliError(`${stray} only means something with --secrets`, EXIT.USAGE)
    if (policy.kind !== 'policy') return undefined
    const { secretReferences } = await import('../../policy/index.js')
    const names = secretReferences(policy)
    if (names.length > 0) throw new CliError(`${policy.name} refers to secret${names.length === 1 ? '' : 's'} ${names.join(', ')}; give their values with --secrets FILE (or --secrets - to read them from stdin)`, EXIT.INVALID)
    return undefined
  }
  if (policy.kind !== 'policy') throw new CliError(`--secrets: a ${policy.kind} policy carries no secrets`, EXIT.USAGE)
  const [{ secretReferences }, secrets] = await Promise.all([import('../../policy/index.js'), import('../../secrets/index.js')])
  const names = secretReferences(policy)
  if (names.length === 0) throw new CliError(`--secrets: ${policy.name} refers to no secret ({{ secrets.NAME }}), so there is nothing to seal`, EXIT.USAGE)
  let add: NamedRecipient[] | undefined
  try {
    add = flags.recipient?.map((r) => secrets.parseRecipientFlag(r))
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.USAGE)
  }
  const pinned = flags.recipients === undefined ? undefined : await secrets.readRecipientsFile(flags.recipients)
  const file = await secrets.readSecretsFile(flags.secrets)
  for (const w of file.warnings) process.stderr.write(`${colour.yellow('warning')}: ${printable(w)}\n`)
  const values = secrets.pickSecrets(file.values, names, flags.secrets === '-' ? 'the secrets on stdin' : flags.secrets)
  return { values, ...(add !== undefined ? { add } : {}), ...(pinned !== undefined ? { pinned } : {}), ...(flags.certifiedTags === true ? { certifiedTags: true } : {}) }
}

/** The recipient list as the publisher prints it before sealing: who, their peer id, how chosen; who was left out and why. */
export function recipientLines (names: readonly string[], choice: RecipientChoice): string[] {
  const n = choice.recipients.length
  const lines = [`sealing ${names.join(', ')} to ${n} recipient${n === 1 ? '' : 's'}:`]
  for (const r of choice.recipients) lines.push(`  ${r.name}  ${r.node}  ${r.how}`)
  if (choice.skipped.length > 0) {
    lines.push(`not sealed to ${choice.skipped.length} targeted node${choice.skipped.length === 1 ? '' : 's'} (they will report "sealed"):`)
    for (const s of choice.skipped) lines.push(`  ${s.name}  ${s.node}  ${s.why}`)
  }
  return lines
}

export function sealReport (names: readonly string[], choice: RecipientChoice): SealReport {
  return {
    names: [...names],
    recipients: choice.recipients.map(({ node, name, key, how }) => ({ node, name, key, how })),
    skipped: choice.skipped,
    warnings: choice.warnings
  }
}

/**
 * After connecting: chooses the recipients from the mesh's fleet view, prints them (in --json,
 * they go in the result instead), and seals. The policy returned is what gets signed.
 */
export async function sealBeforePublish (client: MeshClient, policy: Policy, req: SealRequest, json: boolean): Promise<{ policy: Policy, report: SealReport }> {
  const { sealForMesh } = await import('../../client/index.js')
  const names = Object.keys(req.values).sort()
  let report: SealReport | undefined
  const sealed = await sealForMesh(client, policy as ConfigPolicy, req, (choice) => {
    report = sealReport(names, choice)
    if (json) return
    for (const line of recipientLines(names, choice)) print(line)
    for (const w of choice.warnings) print(colour.yellow(`warning: ${w}`))
  })
  return { policy: sealed.policy, report: report ?? sealReport(names, sealed.choice) }
}

/**
 * rollback and resolve republish a version's sealed secrets as they were: sealed to that
 * version's recipients, with those nodes' keys of the day. Said, so nobody expects a reseal.
 */
export function sealedAsBeforeNote (policy: Policy, version: number): string | undefined {
  if (policy.kind !== 'policy' || policy.sealed === undefined) return undefined
  const n = policy.sealed.recipients.length
  return `v${version} carries secrets (${policy.sealed.names.join(', ')}) sealed to its ${n} recipient${n === 1 ? '' : 's'} as they were then: republished as they are, not resealed. Nodes not among them, or rekeyed since, report "sealed"; \`grapevine reseal ${policy.name} --secrets FILE --key …\` seals the values to today's fleet`
}
