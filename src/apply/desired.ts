import { dataRendersSecret, renderData, renderString, rendersSecret, type TemplateContext } from '../policy/template.js'
import type { ConfigResource, DirectoryResource, FileResource, SymlinkResource } from '../policy/schema.js'
import { isExistsOnlyDirectory } from '../policy/exists-only.js'
import { configCodec, stringifyConfig, sameConfig } from './config-format.js'
import { parseMode, type Desired, type Ownership } from './fs-plan.js'
import { UnknownUserError } from './errors.js'
import { SECRET_FILE_MODE } from './constants.js'
import { hostPath } from './paths.js'
import type { UserDb } from './owners.js'

export type PathResource = FileResource | DirectoryResource | SymlinkResource | ConfigResource

export interface DesiredContext {
  template: TemplateContext
  /** Field path prefix for template errors, like `resources[3]`. */
  where: string
  root: string
  users: UserDb
  enforceOwnership: boolean
  /** In a plan: users and groups this policy creates before the resource (not there yet). */
  planned?: { users: ReadonlySet<string>, groups: ReadonlySet<string> }
}

/**
 * Whether what a resource writes is rendered from a secret: a templated file's content or a
 * config's data that says `{{ secrets.NAME }}`. Such a file defaults to mode 0600, is never
 * diffed or described by a hash in a report, and its old content is never copied to backups.
 * Decided from the policy, not from the values, so it holds when the resource is removed too.
 */
export function isSecretResource (r: PathResource): boolean {
  if (r.type === 'file') return r.content !== undefined && r.template && r.encoding === 'utf8' && rendersSecret(r.content)
  if (r.type === 'config') return dataRendersSecret(r.data)
  return false
}

/** The mode the policy names, else SECRET_FILE_MODE for a secret file, else undefined (the planner's default, or what is there). */
function fileMode (r: FileResource | ConfigResource, secret: boolean): number | undefined {
  return parseMode(r.mode) ?? (secret ? SECRET_FILE_MODE : undefined)
}

/**
 * The state a resource asks for on this node: templates rendered, config serialised,
 * owner names resolved. Throws TemplateError, ConfigFormatError or UnknownUserError.
 */
export async function desiredState (r: PathResource, ctx: DesiredContext): Promise<{ desired: Desired, warnings: string[] }> {
  const warnings: string[] = []
  if (r.ensure === 'absent') return { desired: { kind: 'absent', type: r.type === 'config' ? 'file' : r.type }, warnings }
  switch (r.type) {
    case 'file': {
      let content: Uint8Array | undefined
      if (r.content !== undefined) {
        content = r.encoding === 'base64'
          ? Buffer.from(r.content, 'base64')
          : Buffer.from(r.template ? renderString(r.content, ctx.template, `${ctx.where}.content`) : r.content, 'utf8')
      }
      const secret = isSecretResource(r)
      return { desired: { kind: 'file', content, mode: fileMode(r, secret), ...(secret ? { secret } : {}), ...await ownership(r, ctx, warnings) }, warnings }
    }
    case 'config': {
      const data = renderData(r.data, ctx.template, `${ctx.where}.data`) as Record<string, unknown>
      const codec = await configCodec(r.format)
      const text = stringifyConfig(codec, r.format, data)
      const secret = isSecretResource(r)
      return {
        desired: {
          kind: 'file',
          content: Buffer.from(text, 'utf8'),
          mode: fileMode(r, secret),
          ...(secret ? { secret } : {}),
          same: (existing) => sameConfig(codec, Buffer.from(existing).toString('utf8'), text),
          ...await ownership(r, ctx, warnings)
        },
        warnings
      }
    }
    case 'directory':
      return { desired: { kind: 'directory', mode: parseMode(r.mode), existsOnly: isExistsOnlyDirectory(r), ...await ownership(r, ctx, warnings) }, warnings }
    case 'symlink': {
      const target = r.target as string
      // An absolute target is a path on the managed system, so it moves under the root with everything else.
      return { desired: { kind: 'symlink', target: target.startsWith('/') ? hostPath(ctx.root, target) : target, shown: target }, warnings }
    }
  }
}

async function ownership (r: { owner?: string, group?: string }, ctx: DesiredContext, warnings: string[]): Promise<Ownership> {
  const out: Ownership = {}
  try {
    if (r.owner !== undefined) out.owner = { label: r.owner, id: await ctx.users.uid(r.owner) }
    if (r.group !== undefined) out.group = { label: r.group, id: await ctx.users.gid(r.group) }
  } catch (err) {
    if (!(err instanceof UnknownUserError)) throw err
    // A plan of a policy that creates the account first: its id is known once applied.
    const planned = err.kind === 'user' ? ctx.planned?.users : ctx.planned?.groups
    if (planned?.has(err.value) === true) {
      warnings.push(`${err.kind} ${err.value} is created by this policy's ${err.kind} resource; ownership is set once it exists`)
      return out
    }
    // Without root, ownership is only reported, so a name this machine lacks is a warning.
    if (ctx.enforceOwnership) throw err
    warnings.push(`${err.message}; not enforced (not running as root)`)
  }
  return out
}
