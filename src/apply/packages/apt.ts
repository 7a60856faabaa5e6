import type { PackageResource } from '../../policy/schema.js'
import type { SystemContext } from '../system.js'
import { PackageLockedError, ProviderUnavailableError } from '../errors.js'
import { PACKAGE_COMMAND_TIMEOUT_MS, PACKAGE_QUERY_TIMEOUT_MS } from './constants.js'
import type { Offer, PackageOp, PackageProvider } from './provider.js'
import { debOffer } from './source.js'
import { failureOf, packageSettings } from './tool.js'

/**
 * apt on the real machine (root `/`): candidates from `apt-cache policy`, one `apt-get
 * install` per transaction that also removes (`name-`), pins versions (`name=1.2-3`) and takes
 * local .deb files, resolving their dependencies from the package sources.
 */
export const apt: PackageProvider = {
  name: 'apt',

  async offer (r, ctx) {
    onlyOnRealRoot(r, ctx)
    if (r.source !== undefined) return await debOffer({ ...r, source: r.source }, ctx)
    return (await askPolicy(r.name, ctx)).get(r.name) ?? { versions: [] }
  },

  async commit (ops, ctx) {
    const { lockWaitS, run } = packageSettings(ctx.run)
    const argv = aptArgv(ops, lockWaitS)
    const res = await run(argv, { timeoutMs: PACKAGE_COMMAND_TIMEOUT_MS, ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) })
    const names = ops.map((o) => o.name)
    if (res.exitCode !== 0) {
      // apt-get waited lockWaitS for the lock itself (DPkg::Lock::Timeout), then gave up.
      const held = aptLockHeld(res.stderr, res.stdout)
      if (held !== undefined) throw new PackageLockedError(held.lock, lockWaitS, held.holder, names)
    }
    const failed = failureOf(`apt-get install ${names.join(' ')}`, res, names)
    if (failed !== undefined) throw failed
  }
}

/** The one apt-get call of a transaction. Recommends follow the node's apt configuration (Debian's default installs them). */
export function aptArgv (ops: PackageOp[], lockWaitS: number): string[] {
  return [
    'apt-get', '-y', '-q',
    // Keep a locally changed config file and take the package's default for the rest: never prompt.
    '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold',
    '-o', `DPkg::Lock::Timeout=${lockWaitS}`,
    ...(ops.some((o) => o.downgrade === true) ? ['--allow-downgrades'] : []),
    'install',
    ...ops.map((o) => o.remove === true ? `${o.name}-` : o.file ?? (o.version !== undefined ? `${o.name}=${o.version}` : o.name))
  ]
}

/**
 * apt's lock errors (on stderr: "Unable to acquire the dpkg frontend lock (…)", "Could not get
 * lock …", "Unable to lock directory …") → which lock; whose it is comes from its "Waiting for
 * cache lock: … held by process N (name)" lines or the error itself.
 */
export function aptLockHeld (stderr: string, stdout: string): { lock: string, holder?: string } | undefined {
  const lock = /E: Unable to acquire the dpkg frontend lock \((\S+)\)/.exec(stderr)?.[1] ??
    /E: Could not get lock (\S+?)\.?(?:\s|$)/.exec(stderr)?.[1] ??
    /E: Unable to lock (?:the administration )?directory \(?(\S+?)\)?[,.]?(?:\s|$)/.exec(stderr)?.[1]
  if (lock === undefined) return undefined
  const holders = [...`${stdout}\n${stderr}`.matchAll(/held by (process \d+(?: \([^)]*\))?)/g)]
  const holder = holders.at(-1)?.[1]
  return { lock, ...(holder !== undefined ? { holder } : {}) }
}

/**
 * One `apt-cache policy` for every package that asks in the same event-loop turn: each run
 * loads apt's whole cache (about 0.3 s here), so twenty packages asking alone cost six seconds.
 */
async function askPolicy (name: string, ctx: SystemContext): Promise<ReadonlyMap<string, Offer>> {
  let batch = ctx.run.get(POLICY_BATCH) as PolicyBatch | undefined
  if (batch === undefined) {
    const names: string[] = []
    const result = new Promise<ReadonlyMap<string, Offer>>((resolve, reject) => {
      setImmediate(() => {
        if ((ctx.run.get(POLICY_BATCH) as PolicyBatch | undefined)?.names === names) ctx.run.delete(POLICY_BATCH)
        packageSettings(ctx.run).run(['apt-cache', 'policy', ...names], { timeoutMs: PACKAGE_QUERY_TIMEOUT_MS, ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) }).then((res) => {
          const failed = failureOf('apt-cache policy', res, names)
          if (failed !== undefined) throw failed
          return parsePolicies(res.stdout)
        }).then(resolve, reject)
      })
    })
    batch = { names, result }
    ctx.run.set(POLICY_BATCH, batch)
  }
  if (!batch.names.includes(name)) batch.names.push(name)
  return await batch.result
}

const POLICY_BATCH = 'packages.apt-cache-policy'

interface PolicyBatch {
  names: string[]
  result: Promise<ReadonlyMap<string, Offer>>
}

/** `apt-cache policy A B …` → each package's offer, by the `name:` line that starts its section. Unknown packages print nothing. */
export function parsePolicies (text: string): ReadonlyMap<string, Offer> {
  const offers = new Map<string, Offer>()
  const sections = text.split(/^(?=\S[^\n]*:\s*$)/m)
  for (const section of sections) {
    const name = /^(\S+?):\s*$/m.exec(section)?.[1]
    if (name !== undefined && !offers.has(name)) offers.set(name, parsePolicy(section))
  }
  return offers
}

/** One package's `apt-cache policy` section → the candidate and every version in its table. */
export function parsePolicy (text: string): Offer {
  const candidate = /^\s*Candidate: (\S+)/m.exec(text)?.[1]
  const versions = [...text.matchAll(/^ (?:\*\*\*| {3}) (\S+) -?\d+$/gm)].map((m) => m[1] as string)
  return { ...(candidate !== undefined && candidate !== '(none)' ? { candidate } : {}), versions }
}

function onlyOnRealRoot (r: PackageResource, ctx: SystemContext): void {
  if (ctx.root !== '/') throw new ProviderUnavailableError('package', r.name, `apt manages only the root / (this apply's root is ${ctx.root}); in a sandbox root use provider dpkg with a source .deb`)
}
