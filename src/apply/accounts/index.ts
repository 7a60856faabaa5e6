import { stat } from 'node:fs/promises'
import { join, posix } from 'node:path'
import type { GroupResource, UserResource } from '../../policy/schema.js'
import type { Outcome } from '../path-resource.js'
import type { SystemContext } from '../system.js'
import { HomeParentMissingError, NotAPasswordHashError, VerifyFailedError } from '../errors.js'
import { cachedAccounts, forgetAccounts } from './database.js'
import { isCryptHash } from './hash.js'
import { planGroup, planUser, type AccountPlan } from './plan.js'
import { shadowTools, type ToolRunner } from './tool.js'

export { accountDb, loadAccountDb, parseGroup, parsePasswd, parseShadow, type AccountDb, type GroupEntry, type UserEntry } from './database.js'
export { isCryptHash } from './hash.js'
export { planGroup, planUser, type AccountPlan, type ToolCall } from './plan.js'
export { shadowTools, stderrTail, toolArgv, type ToolRunner } from './tool.js'

/**
 * A user through the shadow tools (useradd, usermod, userdel, chpasswd) against the root's own
 * /etc/passwd, /etc/group and /etc/shadow, which are read directly: a user already as the
 * policy says runs no command at all. `tools` replaces the runner (tests count the calls).
 */
export async function userOutcome (r: UserResource, ctx: SystemContext, tools: ToolRunner = shadowTools(ctx.root, 'user', r.name)): Promise<Outcome> {
  let hash: string | undefined
  if (r.ensure === 'present' && r.password_hash !== undefined) {
    const where = `${ctx.where}.password_hash`
    hash = ctx.render(r.password_hash, where)
    if (!isCryptHash(hash)) throw new NotAPasswordHashError(where)
  }
  const plan = planUser(r, hash, await cachedAccounts(ctx.run, ctx.root))
  if (!ctx.dryRun && plan.movesHomeTo !== undefined) await homeParentExists(r.name, plan.movesHomeTo, ctx.root)
  return await carryOut(plan, ctx, tools, async () => planUser(r, hash, await cachedAccounts(ctx.run, ctx.root)), `user ${r.name}`)
}

/** A group through groupadd, groupmod and groupdel, read from the root's /etc/group. */
export async function groupOutcome (r: GroupResource, ctx: SystemContext, tools: ToolRunner = shadowTools(ctx.root, 'group', r.name)): Promise<Outcome> {
  const plan = planGroup(r, await cachedAccounts(ctx.run, ctx.root))
  return await carryOut(plan, ctx, tools, async () => planGroup(r, await cachedAccounts(ctx.run, ctx.root)), `group ${r.name}`)
}

/** Runs the plan's tools in order (unless planning), then reads the files again to check nothing still differs. */
async function carryOut (plan: AccountPlan, ctx: SystemContext, tools: ToolRunner, replan: () => Promise<AccountPlan>, subject: string): Promise<Outcome> {
  const outcome: Outcome = { action: plan.action, status: 'ok' }
  if (plan.changes.length > 0) outcome.changes = plan.changes
  if (ctx.dryRun || plan.calls.length === 0) return outcome
  try {
    for (const call of plan.calls) await tools(call, ctx.signal)
  } finally {
    // Even a failed tool may have changed something (usermod edits passwd before it moves a home).
    forgetAccounts(ctx.run)
  }
  const after = await replan()
  if (after.calls.length > 0) throw new VerifyFailedError(subject, after.changes.map((c) => c.field))
  return outcome
}

/**
 * usermod -d -m writes the new home to passwd before it moves the directory, and a move into
 * a directory that does not exist then fails with passwd already changed: check first.
 */
async function homeParentExists (user: string, home: string, root: string): Promise<void> {
  const parent = posix.dirname(posix.normalize(home))
  try {
    if ((await stat(join(root, parent))).isDirectory()) return
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err
  }
  throw new HomeParentMissingError(user, home, parent)
}
