import { z } from '../vendor/zod.js'
import { MAX_RESOURCES, MAX_STRING_LENGTH, MAX_EXEC_TIMEOUT_SECONDS, MAX_CHECKS, MAX_CHECK_TIMEOUT_SECONDS, MAX_CHECK_RETRIES, MAX_CHECK_INTERVAL_SECONDS, MAX_CHECKS_SECONDS } from './constants.js'
import { managedPathProblem, nulProblem } from './paths.js'
import { ROLLOUT_NAME_PREFIX } from '../rollout/constants.js'
import { rolloutRecord } from '../rollout/record.js'
import { policyName, TRUST_POLICY_NAME } from './name.js'
import { SECRET_NAME } from './template.js'
import { AGE_RECIPIENT, MAX_SECRET_RECIPIENTS, MAX_SECRETS, SEALED_FORMAT } from '../secrets/constants.js'

// In name.ts so that the rollout record's schema (src/rollout/record.ts), a member of anyPolicy, can use them.
export { POLICY_NAME, policyName, TRUST_POLICY_NAME } from './name.js'

// The one source of truth for the policy format: the validator uses these
// schemas, and `npm run schema` writes policies/schema.json from them.

const RESOURCE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
const OCTAL_MODE = /^0?[0-7]{3,4}$/
const TAG_KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

const str = z.string().max(MAX_STRING_LENGTH)
const nonEmpty = z.string().min(1).max(MAX_STRING_LENGTH)

const resourceId = z.string().max(100).regex(RESOURCE_ID, {
  error: 'expected letters, digits, "_", "." or "-", starting with a letter or digit'
})

const mode = z.string({
  error: (iss) => `expected an octal string like "0644", got ${JSON.stringify(iss.input)}`
}).regex(OCTAL_MODE, { error: (iss) => `expected an octal string like "0644", got ${JSON.stringify(iss.input)}` })

/** A managed path: the applier's own rules (src/policy/paths.ts), so validate refuses what apply would. */
const absPath = z.string().min(1).max(4096).superRefine((p, ctx) => {
  const problem = managedPathProblem(p)
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem.message, input: p })
})

/** Text passed to a system call as it is (argv, env, a relative symlink target). */
const noNul = (s: string, ctx: z.RefinementCtx): void => {
  const problem = nulProblem(s)
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: s })
}

const ensure = z.enum(['present', 'absent']).default('present')

/** A user name (as in /etc/passwd) or a numeric uid. */
const userName = z.string().regex(/^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|[0-9]{1,10})$/, {
  error: (iss) => `expected a user name like "www-data" or a numeric uid, got ${JSON.stringify(iss.input)}`
})

/** Fields every resource has. */
const common = {
  id: resourceId.describe('Unique within the policy; referenced by requires and notify.'),
  description: str.optional(),
  requires: z.array(resourceId).max(MAX_RESOURCES).optional().describe('Resources that must be applied first.'),
  notify: z.array(resourceId).max(MAX_RESOURCES).optional().describe('Refresh-only resources to run when this one changes.')
}

const ownership = {
  mode: mode.optional().describe('Octal permission string, e.g. "0644".'),
  owner: nonEmpty.optional().describe('User name or numeric uid; applied when running as root.'),
  group: nonEmpty.optional().describe('Group name or numeric gid; applied when running as root.')
}

export const fileResource = z.strictObject({
  ...common,
  type: z.literal('file'),
  path: absPath,
  ensure,
  content: str.optional().describe('File content; node facts and vars are substituted.'),
  source: nonEmpty.optional().describe('A file beside the policy, embedded as content when the policy is signed.'),
  encoding: z.enum(['utf8', 'base64']).default('utf8').describe('How content is encoded; sources that are not UTF-8 embed as base64.'),
  template: z.boolean().default(true).describe('Substitute {{ node.* }} and {{ vars.* }} in content.'),
  ...ownership
}).refine((r) => !(r.content !== undefined && r.source !== undefined), {
  error: 'give either content or source, not both', path: ['source']
})

export const directoryResource = z.strictObject({
  ...common,
  type: z.literal('directory'),
  path: absPath,
  ensure,
  ...ownership
})

export const symlinkResource = z.strictObject({
  ...common,
  type: z.literal('symlink'),
  path: absPath,
  ensure,
  // An absolute target moves under --root like a managed path, so it follows the same rules.
  target: nonEmpty.superRefine((t, ctx) => {
    const problem = t.startsWith('/') ? managedPathProblem(t)?.message : nulProblem(t)
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem, input: t })
  }).optional().describe('What the link points to; required unless ensure is absent.')
}).refine((r) => r.ensure === 'absent' || r.target !== undefined, {
  error: 'a symlink needs a target unless ensure is absent', path: ['target']
})

export const CONFIG_FORMATS = ['json', 'yaml', 'toml', 'ini', 'env'] as const

export const configResource = z.strictObject({
  ...common,
  type: z.literal('config'),
  path: absPath,
  ensure,
  format: z.enum(CONFIG_FORMATS),
  data: z.record(z.string(), z.unknown()).default({}).describe('The structured data to write; strings are templated.'),
  ...ownership
})

const commandLine = z.union([nonEmpty.superRefine(noNul), z.array(nonEmpty.superRefine(noNul)).min(1).max(1000)], {
  error: 'expected a command: a string (run by /bin/sh -c) or a list of strings (an argv)'
})

export const execResource = z.strictObject({
  ...common,
  type: z.literal('exec'),
  command: commandLine.describe('An argv array (run directly) or a string (run by /bin/sh -c).'),
  creates: absPath.optional().describe('Skip when this path exists.'),
  unless: commandLine.optional().describe('Skip when this command exits 0.'),
  onlyif: commandLine.optional().describe('Run only when this command exits 0.'),
  cwd: absPath.optional(),
  env: z.record(z.string(), str.superRefine(noNul)).optional(),
  timeout: z.number().positive().max(MAX_EXEC_TIMEOUT_SECONDS).default(300).describe('Seconds before the command is killed.'),
  run_as: userName.optional().describe('Run the command and its guards as this user (from the host\'s /etc/passwd); needs an agent running as root.'),
  refreshonly: z.boolean().default(false).describe('Run only when notified by a resource that changed.')
})

/** A Debian package name (Debian Policy 5.6.7), or an rpm/apk one: lower case, digits, "+", "-", ".". */
const packageName = z.string().min(2).max(100).regex(/^[a-z0-9][a-z0-9+._-]+$/, {
  error: (iss) => `expected a package name like "nginx" or "libssl3", got ${JSON.stringify(iss.input)}`
})

/** A package version as the package manager spells it ("1.22.1-9", "2:1.0~rc1-1"): starts with a digit. */
const packageVersion = z.string().max(100).regex(/^[0-9][A-Za-z0-9.+~:_-]*$/, {
  error: (iss) => `expected present, absent, latest or a version like "1.22.1-9", got ${JSON.stringify(iss.input)}`
})

export const PACKAGE_PROVIDERS = ['apt', 'dpkg'] as const

export const packageResource = z.strictObject({
  ...common,
  type: z.literal('package'),
  name: packageName.describe('The package, as the package manager names it.'),
  ensure: z.union([z.enum(['present', 'absent', 'latest']), packageVersion]).default('present')
    .describe('present, absent, latest (the newest the package sources offer), or an exact version like "1.22.1-9".'),
  source: absPath.optional().describe('A package file on the managed system (a .deb) to install from, instead of the package sources.'),
  provider: z.enum(PACKAGE_PROVIDERS).optional().describe('Override the provider the node\'s facts choose (apt where the root is /, dpkg for a sandbox root).')
})

/** A systemd unit name; ".service" may be left out. */
const unitName = z.string().min(1).max(256).regex(/^[A-Za-z0-9][A-Za-z0-9:_.@\\-]*$/, {
  error: (iss) => `expected a unit name like "nginx" or "nginx.service", got ${JSON.stringify(iss.input)}`
})

export const serviceResource = z.strictObject({
  ...common,
  type: z.literal('service'),
  name: unitName,
  enable: z.boolean().optional().describe('Start at boot (systemctl enable) or not; omitted leaves it as it is.'),
  state: z.enum(['running', 'stopped']).optional().describe('Running or stopped now; omitted leaves it as it is.'),
  reload_on_notify: z.boolean().default(false).describe('When notified, reload instead of restart.')
})

/** An account name as shadow's useradd accepts it by default (NAME_REGEX). */
const accountName = z.string().min(1).max(32).regex(/^[a-z_][a-z0-9_-]*\$?$/, {
  error: (iss) => `expected an account name like "app" or "www-data", got ${JSON.stringify(iss.input)}`
})

/** A uid or gid: below 2^32 - 1, which means "none" to the kernel. */
const accountId = z.number().int().min(0).max(4_294_967_294)

/** A field of /etc/passwd or /etc/shadow: no ":" or newline, which would split the line. */
const passwdField = (max: number) => z.string().max(max).regex(/^[^:\n\r\0]*$/, { error: 'may not contain ":" or a line break' })

export const userResource = z.strictObject({
  ...common,
  type: z.literal('user'),
  name: accountName,
  ensure,
  uid: accountId.optional(),
  gid: z.union([accountId, accountName]).optional().describe('The primary group, by name or gid.'),
  groups: z.array(accountName).max(100).optional().describe('Supplementary groups.'),
  membership: z.enum(['additive', 'exact']).default('additive').describe('additive: the user is at least in `groups`; exact: in those and no other.'),
  home: absPath.optional(),
  manage_home: z.boolean().default(false).describe('Create the home directory with the user (useradd -m), and move it when home changes.'),
  shell: absPath.optional(),
  system: z.boolean().default(false).describe('A system account (useradd -r): uid from the system range, no aging.'),
  comment: passwdField(255).optional().describe('The GECOS field.'),
  password_hash: passwdField(512).optional().describe('A crypt(3) hash like "$y$…" or "$6$…", never a password; "{{ secrets.NAME }}" seals it (docs/secrets.md).')
})

export const groupResource = z.strictObject({
  ...common,
  type: z.literal('group'),
  name: accountName,
  ensure,
  gid: accountId.optional(),
  system: z.boolean().default(false).describe('A system group (groupadd -r).')
})

/** Fields every health check has. Durations are seconds, as an exec's `timeout`. */
const checkCommon = {
  id: resourceId.describe('Unique among the policy\'s checks; reports and receipts name the check by it.'),
  description: str.optional(),
  timeout: z.number().positive().max(MAX_CHECK_TIMEOUT_SECONDS).default(10).describe('Seconds one attempt may take before it counts as failed.'),
  retries: z.number().int().nonnegative().max(MAX_CHECK_RETRIES).default(0).describe('Attempts after a failed one before the check fails.'),
  interval: z.number().nonnegative().max(MAX_CHECK_INTERVAL_SECONDS).default(2).describe('Seconds between attempts.')
}

export const execCheck = z.strictObject({
  ...checkCommon,
  type: z.literal('exec'),
  command: commandLine.describe('Passes when it exits 0. An argv array (run directly) or a string (run by /bin/sh -c).'),
  cwd: absPath.optional(),
  env: z.record(z.string(), str.superRefine(noNul)).optional(),
  run_as: userName.optional().describe('Run the command as this user; needs an agent running as root.')
})

export const httpCheck = z.strictObject({
  ...checkCommon,
  type: z.literal('http'),
  url: z.url({ protocol: /^https?$/, error: (iss) => `expected an http:// or https:// URL, got ${JSON.stringify(iss.input)}` }).max(4096).describe('GET this URL; redirects are not followed.'),
  status: z.number().int().min(100).max(599).optional().describe('The status that passes; omitted means any 2xx.')
})

export const tcpCheck = z.strictObject({
  ...checkCommon,
  type: z.literal('tcp'),
  host: z.string().min(1).max(253).regex(/^[A-Za-z0-9.:_-]+$/, { error: (iss) => `expected a host name or IP address, got ${JSON.stringify(iss.input)}` }),
  port: z.number().int().min(1).max(65535).describe('Passes when a connection to host:port opens.')
})

export const check = z.discriminatedUnion('type', [execCheck, httpCheck, tcpCheck])

export const resource = z.discriminatedUnion('type', [
  fileResource, directoryResource, symlinkResource, configResource, execResource,
  packageResource, serviceResource, userResource, groupResource
])

/** Every resource type, read from the union itself, so the trust policy's `limits.types` never misses one. */
export const RESOURCE_TYPES = resource.options.map((o) => o.shape.type.value) as [ResourceType, ...ResourceType[]]

const tagMap = z.record(z.string().regex(TAG_KEY), z.string().max(200))

/** A fact's dotted path, like `os.family` or `custom.rack`. */
const FACT_PATH = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/

export const target = z.strictObject({
  tags: tagMap.optional().describe('Every listed tag must match the node\'s tag.'),
  facts: z.record(z.string().max(200).regex(FACT_PATH, { error: 'expected a fact path like "os.family"' }), z.union([z.string().max(200), z.number(), z.boolean()]))
    .optional().describe('Every listed fact (a dotted path, like os.family) must equal the node\'s fact. Facts are the node\'s own word, as tags are.'),
  nodes: z.array(nonEmpty).max(100_000).optional().describe('Node ids (peer ids) or names; any match.')
})

// Nodes keep one envelope per name, so any other kind under the trust policy's name, or under a
// rollout record's (`rollout/<policy>`, docs/rollout.md), would displace it.
const ordinaryName = policyName
  .refine((n) => n !== TRUST_POLICY_NAME, { error: `${TRUST_POLICY_NAME} is reserved for the trust policy (kind: trust)` })
  .refine((n) => !n.startsWith(ROLLOUT_NAME_PREFIX), { error: `names starting with "${ROLLOUT_NAME_PREFIX}" are reserved for rollout records (kind: rollout)` })

/**
 * Secret values sealed at publish time (`publish --secrets`, docs/secrets.md): one age file holding
 * the values as JSON, with one X25519 stanza per recipient, in the order of `recipients`. Every
 * node relays it; only the listed nodes can open it. The envelope's signature covers it all.
 */
export const sealedSecrets = z.strictObject({
  format: z.literal(SEALED_FORMAT),
  names: z.array(z.string().regex(SECRET_NAME, { error: 'expected a secret name: letters, digits, "_" and "-"' })).min(1).max(MAX_SECRETS)
    .refine((n) => n.every((x, i) => i === 0 || (n[i - 1] as string) < x), { error: 'expected the names sorted, each once' }),
  recipients: z.array(z.strictObject({
    node: z.string().min(1).max(128).describe('The recipient\'s peer id.'),
    key: z.string().regex(AGE_RECIPIENT, { error: 'expected an age X25519 recipient (age1...)' }).describe('The encryption key it was sealed to, as the node announced it.')
  })).min(1).max(MAX_SECRET_RECIPIENTS)
    .refine((rs) => new Set(rs.map((r) => r.node)).size === rs.length, { error: 'a node is listed twice' }),
  data: z.string().min(1).max(4 * 1024 * 1024).regex(/^[A-Za-z0-9+/]+={0,2}$/, { error: 'expected base64' })
})

export const configPolicy = z.strictObject({
  kind: z.literal('policy').default('policy'),
  name: ordinaryName,
  description: str.optional(),
  target: target.optional().describe('Which nodes apply this policy; omitted means every node.'),
  vars: z.record(z.string(), z.unknown()).optional(),
  resources: z.array(resource).max(MAX_RESOURCES),
  checks: z.array(check).max(MAX_CHECKS).optional().describe('Health checks run after every apply (and by apply and plan); a failing one makes the node unhealthy.'),
  sealed: sealedSecrets.optional().describe('Written by publish --secrets: the secret values, sealed to the nodes that may read them. Never write it by hand.')
}).superRefine((p, ctx) => {
  const first = new Map<string, number>()
  p.checks?.forEach((c, i) => {
    const j = first.get(c.id)
    if (j === undefined) first.set(c.id, i)
    else ctx.addIssue({ code: 'custom', path: ['checks', i, 'id'], message: `duplicate check id "${c.id}" (also checks[${j}])` })
  })
  const worst = (p.checks ?? []).reduce((sum, c) => sum + (c.retries + 1) * c.timeout + c.retries * c.interval, 0)
  if (worst > MAX_CHECKS_SECONDS) {
    ctx.addIssue({ code: 'custom', path: ['checks'], message: `the checks could take ${Math.ceil(worst)} s when every attempt times out ((retries + 1) × timeout + retries × interval, summed); at most ${MAX_CHECKS_SECONDS} s, since the agent applies one policy at a time` })
  }
})

const keyId = z.string().regex(/^ed25519:[A-Za-z0-9_-]{43}$/, {
  error: (iss) => `expected a public key id like "ed25519:" followed by 43 base64url characters, got ${JSON.stringify(iss.input)}`
})

/** Absolute, with no ".", ".." or empty segment, so a prefix means what it spells. */
const pathPrefix = z.string().min(1).max(4096).refine((p) => p.startsWith('/') && p.split('/').every((seg, i, all) => seg !== '.' && seg !== '..' && (seg !== '' || i === 0 || i === all.length - 1)), {
  error: (iss) => `expected an absolute path prefix with no ".", ".." or "//", like "/etc/nginx/", got ${JSON.stringify(iss.input)}`
})

/** An allowed command: exactly as a policy writes it. An argv[0] with a "/" must be absolute, or the policy's cwd would choose the program. */
const allowedCommand = commandLine.refine((c) => typeof c === 'string' || !(c[0] as string).includes('/') || (c[0] as string).startsWith('/'), {
  error: (iss) => `expected the program as an absolute path or a bare name found on PATH, got ${JSON.stringify((iss.input as string[])[0])}`
})

/**
 * What an admin's policies may do, enforced by every node when it validates them. Each
 * field left out leaves that power unlimited; docs/trust.md says what each one protects.
 */
export const adminLimits = z.strictObject({
  types: z.array(z.enum(RESOURCE_TYPES)).max(RESOURCE_TYPES.length).optional()
    .describe('Resource types the policies may use, e.g. [file, directory, config]; omitted means all.'),
  paths: z.array(pathPrefix).min(1).max(1000).optional()
    .describe('Path prefixes that file, directory, config and symlink resources (and symlink targets) must stay under. "/etc/nginx/" allows what is under it; "/etc/nginx" also the directory itself.'),
  exec: z.strictObject({
    commands: z.array(allowedCommand).min(1).max(1000).optional()
      .describe('The only commands (and unless/onlyif guards) an exec may run, compared exactly: a string with a string, an argv array with an argv array. Exec env is then refused.'),
    run_as: userName.optional()
      .describe('Every exec must declare run_as with this user, so that it never runs as the agent\'s user (root).')
  }).optional().describe('Limits on exec resources.')
})

export const trustPolicy = z.strictObject({
  kind: z.literal('trust'),
  name: z.literal(TRUST_POLICY_NAME),
  description: str.optional(),
  admins: z.array(z.strictObject({
    name: nonEmpty.optional(),
    key: keyId,
    scopes: z.array(z.string().max(200)).min(1).describe('Policy-name prefixes this key may publish, e.g. "web/". "*" means any name except the trust policy.'),
    limits: adminLimits.optional().describe('What this key\'s policies may do. Omitted means anything: such an admin is root on every node its policies target.')
  })).max(1000),
  revoked: z.array(keyId).max(10_000).default([]).describe('Keys refused even if listed above; revocation is a new version of this policy.'),
  enrollers: z.array(keyId).max(1000).default([]).describe('Keys that may admit nodes (sign admission certificates); roots always may. Listing none leaves admission unenforced: every node counts (docs/admission.md).'),
  revokedNodes: z.array(z.string().min(1).max(128)).max(100_000).default([]).describe('Peer ids whose admission is withdrawn: they count as fleet members nowhere.')
}).superRefine((p, ctx) => {
  // The trust store keeps one scope list per key: a second entry would silently replace the first.
  const first = new Map<string, number>()
  p.admins.forEach((a, i) => {
    const j = first.get(a.key)
    if (j === undefined) first.set(a.key, i)
    else ctx.addIssue({ code: 'custom', path: ['admins', i, 'key'], message: `already listed at admins[${j}]; give each key one entry with all its scopes` })
  })
})

/**
 * A tombstone: publishing it as the next version makes nodes stop managing the policy.
 * Its resources stay as they are; publish `ensure: absent` first to remove them.
 */
export const retiredPolicy = z.strictObject({
  kind: z.literal('retired'),
  name: ordinaryName,
  description: str.optional()
})

/** Every kind an envelope may carry. A rollout record (docs/rollout.md) has its schema beside its logic in src/rollout/record.ts. */
export const anyPolicy = z.discriminatedUnion('kind', [configPolicy, trustPolicy, retiredPolicy, rolloutRecord])

export type FileResource = z.output<typeof fileResource>
export type DirectoryResource = z.output<typeof directoryResource>
export type SymlinkResource = z.output<typeof symlinkResource>
export type ConfigResource = z.output<typeof configResource>
export type ExecResource = z.output<typeof execResource>
export type PackageResource = z.output<typeof packageResource>
export type ServiceResource = z.output<typeof serviceResource>
export type UserResource = z.output<typeof userResource>
export type GroupResource = z.output<typeof groupResource>
/** The resources that manage something else than a path: each has a provider (src/apply/system.ts). */
export type SystemResource = PackageResource | ServiceResource | UserResource | GroupResource
export type Resource = z.output<typeof resource>
export type Check = z.output<typeof check>
export type SealedSecrets = z.output<typeof sealedSecrets>
export type ExecCheck = z.output<typeof execCheck>
export type HttpCheck = z.output<typeof httpCheck>
export type TcpCheck = z.output<typeof tcpCheck>
export type ResourceType = Resource['type']
export type ConfigFormat = typeof CONFIG_FORMATS[number]
export type Target = z.output<typeof target>
export type ConfigPolicy = z.output<typeof configPolicy>
export type TrustPolicy = z.output<typeof trustPolicy>
export type AdminLimits = z.output<typeof adminLimits>
export type RetiredPolicy = z.output<typeof retiredPolicy>
export type { RolloutRecord } from '../rollout/record.js'
export type Policy = z.output<typeof anyPolicy>
export type CommandLine = z.output<typeof commandLine>

/** Resources that manage a path under the root (files, directories, links, configs). */
export type PathResource = FileResource | DirectoryResource | SymlinkResource | ConfigResource
