import type { SystemContext } from '../system.js'
import { refreshInstalled, type InstalledPackages } from './database.js'
import type { PackageOp, PackageProvider } from './provider.js'

/** How a transaction ended, for each member: the tool's error if it failed, and the database read after it. */
export interface Committed {
  error?: Error
  installed: InstalledPackages
}

/** A member's place in a transaction: it says once what it needs (or nothing) and learns how it ended. */
export interface Ticket {
  submit: (op: PackageOp) => Promise<Committed>
  /** Nothing to do (or its read failed): the transaction stops waiting for it. */
  withdraw: () => void
}

interface Transaction {
  joined: number
  ops: PackageOp[]
  waiters: Array<(c: Committed) => void>
  open: boolean
  started: boolean
}

/**
 * Gathers every package resource that starts at the same time (the applier starts adjacent
 * packages together) into one provider commit: one apt-get, or one dpkg per kind of change.
 * Members join synchronously when they start; joining closes once an event-loop turn passes
 * with no new member, and the commit runs when every member has submitted or withdrawn.
 */
export function joinTransaction (provider: PackageProvider, ctx: SystemContext): Ticket {
  const key = `packages.transaction.${provider.name}`
  let tx = ctx.run.get(key) as Transaction | undefined
  if (tx === undefined) {
    const fresh: Transaction = { joined: 0, ops: [], waiters: [], open: true, started: false }
    tx = fresh
    ctx.run.set(key, fresh)
    let seen = -1
    const closeWhenQuiet = (): void => {
      if (fresh.joined !== seen) {
        // A member arrived during the last turn (its start may cross a module load): wait one more.
        seen = fresh.joined
        setImmediate(closeWhenQuiet)
        return
      }
      fresh.open = false
      if (ctx.run.get(key) === fresh) ctx.run.delete(key)
      commitWhenReady(fresh, provider, ctx)
    }
    setImmediate(closeWhenQuiet)
  }
  const joined = tx
  joined.joined++
  let done = false
  return {
    submit: async (op) => {
      if (done) throw new Error('a package ticket was submitted twice')
      done = true
      return await new Promise<Committed>((resolve) => {
        joined.ops.push(op)
        joined.waiters.push(resolve)
        commitWhenReady(joined, provider, ctx)
      })
    },
    withdraw: () => {
      if (done) return
      done = true
      joined.joined--
      commitWhenReady(joined, provider, ctx)
    }
  }
}

function commitWhenReady (tx: Transaction, provider: PackageProvider, ctx: SystemContext): void {
  if (tx.open || tx.started || tx.ops.length < tx.joined) return
  tx.started = true
  if (tx.ops.length === 0) return
  void (async () => {
    let error: Error | undefined
    try {
      // By name: the same policy gives the same command line, whichever read finished first.
      await provider.commit([...tx.ops].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0), ctx)
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err))
    }
    // One read of the database after the change, for every member to check itself against.
    let installed: InstalledPackages
    try {
      installed = await refreshInstalled(ctx)
    } catch (err) {
      error ??= err instanceof Error ? err : new Error(String(err))
      installed = new Map()
    }
    for (const w of tx.waiters) w(error !== undefined ? { error, installed } : { installed })
  })()
}
