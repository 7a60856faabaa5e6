import { createRequire } from 'node:module'
import { readFile } from 'node:fs/promises'
import type * as JsYaml from 'js-yaml'
import { matchesTarget } from '../policy/target.js'
import type { ConfigPolicy } from '../policy/schema.js'
import type { FleetNode } from '../receipt/fleet.js'
import { AGE_RECIPIENT } from './constants.js'
import { RecipientError } from './errors.js'
import type { SecretRecipient } from './seal.js'

/** A recipient as the publisher prints it before sealing: who, and how it was chosen. */
export interface ChosenRecipient extends SecretRecipient {
  name: string
  how: string
}

export interface RecipientChoice {
  recipients: ChosenRecipient[]
  /** Targeted nodes left out, and why (not admitted, no key announced, tags not certified). */
  skipped: Array<{ node: string, name: string, why: string }>
  warnings: string[]
}

/** A node named by `--recipient PEERID[=age1…]` or a `--recipients FILE` entry. */
export interface NamedRecipient {
  node: string
  key?: string
  name?: string
}

export interface RecipientOptions {
  /** `--recipient`: added to the default choice; a node never seen needs its key given. */
  add?: readonly NamedRecipient[]
  /** `--recipients FILE`: exactly these nodes (with any `add`), instead of the default choice. */
  pinned?: readonly NamedRecipient[]
  /** `--certified-tags`: a node counts as targeted only when its admission certificate asserts the target's tags. */
  certifiedTags?: boolean
}

/**
 * Pure: who a policy's secrets are sealed to. By default, the admitted nodes of the publisher's
 * fleet view that the policy targets and that announce an encryption key in their signed
 * reports. Tags are the node's own word, so each recipient says whether its admission
 * certificate backs the tags it was chosen by. Throws RecipientError for a node named but never
 * seen without a key, or when nobody is left.
 */
export function chooseRecipients (policy: ConfigPolicy, fleet: readonly FleetNode[], opts: RecipientOptions = {}): RecipientChoice {
  const byId = new Map(fleet.map((n) => [n.id, n]))
  const chosen = new Map<string, ChosenRecipient>()
  const skipped: RecipientChoice['skipped'] = []
  const warnings: string[] = []
  const targetTags = Object.entries(policy.target?.tags ?? {})
  const certified = (n: FleetNode): boolean => targetTags.every(([k, v]) => n.admission?.tags[k] === v)

  const named = (r: NamedRecipient, flag: string): void => {
    const seen = byId.get(r.node)
    const key = r.key ?? seen?.recipient
    if (key === undefined) {
      throw new RecipientError(seen === undefined
        ? `${flag} ${r.node}: never seen by this publisher, and no key given; write ${r.node}=age1… (a node prints its key with grapevine status)`
        : `${flag} ${r.node} (${seen.name}): it announces no encryption key (an agent older than secrets?); give it as ${r.node}=age1…`)
    }
    if (!AGE_RECIPIENT.test(key)) throw new RecipientError(`${flag} ${r.node}: "${key}" is not an age X25519 recipient (age1…)`)
    if (seen?.recipient !== undefined && seen.recipient !== key) warnings.push(`${r.node} (${seen.name}) now announces the key ${seen.recipient.slice(0, 16)}…, not the ${key.slice(0, 16)}… given; sealed to the one given`)
    if (seen !== undefined && !seen.admitted) warnings.push(`${r.node} (${seen.name}) is not admitted (${seen.unadmitted ?? 'no certificate'}); sealed to it because ${flag} names it`)
    const how = `named by ${flag}${r.key !== undefined ? ' with its key' : ''}${seen === undefined ? ' (never seen)' : ''}`
    const had = chosen.get(r.node)
    chosen.set(r.node, { node: r.node, key, name: r.name ?? seen?.name ?? r.node, how: had !== undefined ? `${had.how}; ${how}` : how })
  }

  if (opts.pinned !== undefined) {
    for (const r of opts.pinned) named(r, '--recipients')
  } else {
    for (const n of fleet) {
      if (!matchesTarget(policy, n)) continue
      if (!n.admitted) { skipped.push({ node: n.id, name: n.name, why: `not admitted (${n.unadmitted ?? 'no certificate'})` }); continue }
      if (opts.certifiedTags === true && !certified(n)) { skipped.push({ node: n.id, name: n.name, why: 'its admission certificate does not assert the target\'s tags (--certified-tags)' }); continue }
      if (n.recipient === undefined) { skipped.push({ node: n.id, name: n.name, why: 'announces no encryption key (an agent older than secrets)' }); continue }
      const tags = targetTags.length === 0 ? '' : `; tags ${targetTags.map(([k, v]) => `${k}=${v}`).join(',')} ${certified(n) ? 'certified by its admission' : 'self-asserted'}`
      chosen.set(n.id, { node: n.id, key: n.recipient, name: n.name, how: `admitted, targeted${tags}` })
    }
  }
  for (const r of opts.add ?? []) named(r, '--recipient')
  const recipients = [...chosen.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : a.node < b.node ? -1 : 1)
  if (recipients.length === 0) {
    const why = skipped.length > 0 ? `; ${skipped.length} targeted node(s) left out: ${skipped.slice(0, 5).map((s) => `${s.name} (${s.why})`).join(', ')}` : '; no node this publisher knows of matches the target'
    throw new RecipientError(`no recipient for ${policy.name}'s secrets${why}. Name nodes with --recipient PEERID[=age1…] or --recipients FILE`)
  }
  return { recipients, skipped, warnings }
}

/** Parses `--recipient PEERID` or `--recipient PEERID=age1…`. */
export function parseRecipientFlag (text: string): NamedRecipient {
  const [node, key, ...rest] = text.split('=')
  if (node === undefined || node === '' || rest.length > 0 || (key !== undefined && !AGE_RECIPIENT.test(key))) {
    throw new RecipientError(`--recipient expects PEERID or PEERID=age1… (an age X25519 recipient): got "${text}"`)
  }
  return { node, ...(key !== undefined ? { key } : {}) }
}

/**
 * Reads `--recipients FILE`: a YAML or JSON list whose entries are `PEERID`, `PEERID=age1…`, or
 * maps `{ node, key?, name? }` (`id` and `recipient`, as `grapevine fleet --json` writes nodes,
 * work too); or such a map with the list under `nodes`.
 */
export async function readRecipientsFile (path: string): Promise<NamedRecipient[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new RecipientError(`cannot read the recipients file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
  }
  let data: unknown
  try {
    const yaml = createRequire(import.meta.url)('js-yaml') as typeof JsYaml
    data = yaml.load(text, { schema: yaml.CORE_SCHEMA, json: true })
  } catch (err) {
    throw new RecipientError(`${path}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0] ?? ''}`)
  }
  if (data !== null && typeof data === 'object' && !Array.isArray(data) && Array.isArray((data as { nodes?: unknown }).nodes)) data = (data as { nodes: unknown[] }).nodes
  if (!Array.isArray(data)) throw new RecipientError(`${path}: expected a list of recipients (PEERID, PEERID=age1…, or { node, key, name })`)
  return data.map((e, i) => {
    if (typeof e === 'string') {
      try { return parseRecipientFlag(e) } catch (err) { throw new RecipientError(`${path}: entry ${i + 1}: ${(err as Error).message.replace('--recipient expects', 'expected')}`) }
    }
    if (e === null || typeof e !== 'object') throw new RecipientError(`${path}: entry ${i + 1}: expected PEERID or a map { node, key, name }`)
    const m = e as Record<string, unknown>
    const node = m.node ?? m.id
    const key = m.key ?? m.recipient
    if (typeof node !== 'string' || node === '') throw new RecipientError(`${path}: entry ${i + 1}: no node (its peer id)`)
    if (key !== undefined && (typeof key !== 'string' || !AGE_RECIPIENT.test(key))) throw new RecipientError(`${path}: entry ${i + 1}: key is not an age X25519 recipient (age1…)`)
    return { node, ...(typeof key === 'string' ? { key } : {}), ...(typeof m.name === 'string' ? { name: m.name } : {}) }
  })
}
