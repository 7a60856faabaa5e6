import { mkdirSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { VerifiedEnvelope } from '../../src/envelope/index.js'
import type { ApplyReport } from '../../src/apply/index.js'
import type { NodeFacts, Policy } from '../../src/policy/index.js'
import { ApplyQueue, FAILURES_LOGGED, pathClaims, type ConfigEnvelope, type PathClaim } from '../../src/node/apply-queue.js'
import type { ConflictRecord } from '../../src/node/book.js'
import { Journal } from '../../src/node/journal.js'
import { configPolicy, makeKeys, policy, trustPolicy } from '../helpers/envelope.js'
import { useTempDir } from '../helpers/tmp.js'
import { fakeMetrics, FakeTime, MemoryStore, RecordingLogger, trustedBook, verified } from './fakes.js'

const keys = makeKeys()
const key = keys.root
const facts: NodeFacts = { id: 'node-1', name: 'web1', tags: { role: 'web' } }

const file = (id: string, path: string, content = `${id}\n`): Record<string, unknown> => ({ id, type: 'file', path, content })
const dir = (id: string, path: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ id, type: 'directory', path, ...extra })
const exec = (id: string): Record<string, unknown> => ({ id, type: 'exec', command: ['true'] })
const config = (name: string, resources: unknown[], version = 1, extra: Record<string, unknown> = {}): ConfigEnvelope =>
  verified(configPolicy(name, resources, extra), { key, version }) as ConfigEnvelope

describe('pathClaims', () => {
  type Case = 'nothing else held' | 'an earlier name shares a path' | 'a later name shares it' | 'an older version of itself' |
    'commands manage no path' | 'only the shared resources' | 'a directory at a file\'s path' | 'two earlier names: the first keeps it, whatever the order held' |
    'two exists-only directories share it' | 'exists-only after a full directory' | 'a full directory after an exists-only one' |
    'two full directories' | 'exists-only after a file' | 'exists-only after a directory to remove' | 'a mode makes it full' | 'an owner makes it full' |
    'a shared one first, then a full one that keeps it'
  interface Row { env: ConfigEnvelope, held: ConfigEnvelope[], claims: Record<string, PathClaim> }

  const table = {
    'nothing else held': { env: config('b', [file('f', '/etc/motd')]), held: [], claims: {} },
    'an earlier name shares a path': { env: config('b', [file('f', '/etc/motd')]), held: [config('a', [file('x', '/etc/motd')])], claims: { f: { path: '/etc/motd', owner: 'a' } } },
    'a later name shares it': { env: config('b', [file('f', '/etc/motd')]), held: [config('c', [file('x', '/etc/motd')])], claims: {} },
    'an older version of itself': { env: config('b', [file('f', '/etc/motd')], 2), held: [config('b', [file('f', '/etc/motd')], 1)], claims: {} },
    'commands manage no path': { env: config('b', [exec('run')]), held: [config('a', [exec('run')])], claims: {} },
    'only the shared resources': {
      env: config('b', [file('mine', '/etc/b'), file('shared', '/etc/motd')]),
      held: [config('a', [file('x', '/etc/a'), file('y', '/etc/motd')])],
      claims: { shared: { path: '/etc/motd', owner: 'a' } }
    },
    'a directory at a file\'s path': { env: config('b', [{ id: 'd', type: 'directory', path: '/etc/motd' }]), held: [config('a', [file('x', '/etc/motd')])], claims: { d: { path: '/etc/motd', owner: 'a' } } },
    'two earlier names: the first keeps it, whatever the order held': {
      env: config('c', [file('f', '/etc/motd')]),
      held: [config('b', [file('x', '/etc/motd')]), config('a', [file('y', '/etc/motd')])],
      claims: { f: { path: '/etc/motd', owner: 'a' } }
    },
    // A parent directory several policies make sure of (web/nginx and base/* both need /etc).
    'two exists-only directories share it': { env: config('web/nginx', [dir('etc', '/etc')]), held: [config('base/motd', [dir('etc', '/etc')])], claims: {} },
    'exists-only after a full directory': { env: config('b', [dir('etc', '/etc')]), held: [config('a', [dir('etc', '/etc', { mode: '0755' })])], claims: {} },
    'a full directory after an exists-only one': { env: config('b', [dir('etc', '/etc', { mode: '0755' })]), held: [config('a', [dir('etc', '/etc')])], claims: {} },
    'two full directories': { env: config('b', [dir('etc', '/etc', { mode: '0755' })]), held: [config('a', [dir('etc', '/etc', { mode: '0700' })])], claims: { etc: { path: '/etc', owner: 'a' } } },
    'exists-only after a file': { env: config('b', [dir('d', '/etc/motd')]), held: [config('a', [file('x', '/etc/motd')])], claims: { d: { path: '/etc/motd', owner: 'a' } } },
    'exists-only after a directory to remove': { env: config('b', [dir('d', '/srv/old')]), held: [config('a', [dir('x', '/srv/old', { ensure: 'absent' })])], claims: { d: { path: '/srv/old', owner: 'a' } } },
    'a mode makes it full': { env: config('b', [dir('etc', '/etc', { mode: '0755' })]), held: [config('a', [dir('etc', '/etc', { mode: '0755' })])], claims: { etc: { path: '/etc', owner: 'a' } } },
    'an owner makes it full': { env: config('b', [dir('etc', '/etc', { owner: 'root' })]), held: [config('a', [dir('etc', '/etc', { group: 'root' })])], claims: { etc: { path: '/etc', owner: 'a' } } },
    'a shared one first, then a full one that keeps it': {
      env: config('c', [dir('etc', '/etc', { mode: '0700' })]),
      held: [config('a', [dir('etc', '/etc')]), config('b', [dir('etc', '/etc', { mode: '0755' })])],
      claims: { etc: { path: '/etc', owner: 'b' } }
    }
  } satisfies Record<Case, Row>

  it.each(Object.entries(table) as Array<[Case, Row]>)('%s', (_, { env, held, claims }) => {
    expect(Object.fromEntries(pathClaims(env, held))).toEqual(claims)
    expect(Object.fromEntries(pathClaims(env, [...held].reverse()))).toEqual(claims)
  })
})

/** An ApplyQueue applying for real into a temp root, with a real book and journal over a memory store. */
function useQueue () {
  const dir = useTempDir('grapevine-queue-')
  return (opts: { root?: string } = {}) => {
    const time = new FakeTime()
    const { book } = trustedBook({ keys, now: time.now })
    const store = new MemoryStore(join(dir(), 'state'))
    const log = new RecordingLogger()
    const journal = new Journal({ store, log, now: time.now })
    const { metrics, m } = fakeMetrics('applies', 'applyDuration')
    const root = opts.root ?? join(dir(), 'root')
    mkdirSync(join(dir(), 'root'), { recursive: true })
    const seen = {
      applied: [] as Array<{ env: VerifiedEnvelope, report: ApplyReport }>,
      notTargeted: [] as VerifiedEnvelope[],
      retired: [] as VerifiedEnvelope[],
      conflict: [] as ConflictRecord[],
      /** Every event, as `kind name vN`. */
      order: [] as string[]
    }
    const note = (kind: string, env: VerifiedEnvelope): void => { seen.order.push(`${kind} ${env.name} v${env.version}`) }
    const stopping = new AbortController()
    const queue = new ApplyQueue({
      book,
      journal,
      store,
      metrics,
      log,
      now: time.now,
      facts,
      root,
      signal: stopping.signal,
      saving: () => undefined,
      events: {
        applied: (env, report) => { seen.applied.push({ env, report }); note('applied', env) },
        notTargeted: (env) => { seen.notTargeted.push(env); note('not-targeted', env) },
        retired: (env) => { seen.retired.push(env); note('retired', env) },
        conflict: (record) => { seen.conflict.push(record) }
      }
    })
    /** Puts a policy in the book (as the intake would), signed as `version`. */
    const hold = (p: Policy, version = 1): VerifiedEnvelope => {
      const env = verified(p, { key, version })
      book.offer(env)
      return env
    }
    const settled = async (): Promise<void> => {
      await queue.idle()
      await journal.idle()
    }
    const at = (path: string): string => join(root, path)
    return { queue, book, store, log, journal, m, seen, hold, settled, at, stopping, time }
  }
}

describe('ApplyQueue', () => {
  const setup = useQueue()
  const motd = (content: string, extra: Record<string, unknown> = {}): Policy => configPolicy('site/motd', [file('motd', '/motd', content)], extra)

  it('applies a targeted policy into the root, records it and says so', async () => {
    const { queue, store, m, seen, hold, settled, at } = setup()
    const env = hold(motd('hello\n'))
    queue.schedule('site/motd')
    expect(queue.busy).toBe(true)
    await settled()
    expect(queue.busy).toBe(false)
    expect(await readFile(at('/motd'), 'utf8')).toBe('hello\n')
    expect(seen.order).toEqual(['applied site/motd v1'])
    expect(seen.applied[0]?.report.outcome).toBe('changes')
    expect(queue.applied['site/motd']).toMatchObject({ name: 'site/motd', version: 1, hash: env.hash, outcome: 'changes', changed: 1, failed: 0 })
    expect(m.applies.count({ outcome: 'changes' })).toBe(1)
    expect(m.applyDuration.observed).toHaveLength(1)
    expect(store.appliedSaves.at(-1)).toEqual(queue.applied)
    expect(store.history).toMatchObject([{ event: 'applied', name: 'site/motd', version: 1, outcome: 'changes', changed: 1, failed: 0 }])
  })

  it('writes no history for a quiet drift check, but does for a repair and for a new version', async () => {
    const { queue, store, seen, hold, settled, at } = setup()
    hold(motd('hello\n'))
    queue.schedule('site/motd')
    await settled()
    queue.schedule('site/motd')
    await settled()
    expect(seen.applied.map((a) => a.report.outcome)).toEqual(['changes', 'no-changes'])
    expect(store.history).toHaveLength(1)

    await writeFile(at('/motd'), 'drifted\n')
    queue.schedule('site/motd')
    await settled()
    expect(await readFile(at('/motd'), 'utf8')).toBe('hello\n')
    expect(store.history.map((h) => h.changed)).toEqual([1, 1])

    // A new version that changes nothing on disk is still news.
    hold(motd('hello\n', { description: 'same file' }), 2)
    queue.schedule('site/motd')
    await settled()
    expect(store.history.map((h) => [h.version, h.changed])).toEqual([[1, 1], [1, 1], [2, 0]])
  })

  it('records failed resources, logs a warning and keeps the errors in history', async () => {
    const { queue, store, log, seen, hold, settled, at } = setup()
    await writeFile(at('/blocker'), 'a file, not a directory\n')
    hold(configPolicy('site/broken', [file('inner', '/blocker/inner')]))
    queue.schedule('site/broken')
    await settled()
    expect(seen.applied[0]?.report.counts.failed).toBe(1)
    expect(queue.applied['site/broken']).toMatchObject({ failed: 1, errors: [{ resource: 'inner' }] })
    expect(log.at('warn').map((l) => l.msg)).toEqual(['policy applied'])
    expect(store.history[0]).toMatchObject({ event: 'applied', failed: 1, detail: [{ resource: 'inner' }] })
  })

  it('puts the failing resources\' error text in the log line, the first few and how many more (issue 15)', async () => {
    const { queue, log, hold, settled, at } = setup()
    await writeFile(at('/blocker'), 'a file, not a directory\n')
    const ids = Array.from({ length: FAILURES_LOGGED + 2 }, (_, i) => `inner${i}`)
    hold(configPolicy('site/broken', ids.map((id) => file(id, `/blocker/${id}`))))
    queue.schedule('site/broken')
    await settled()
    const line = log.at('warn')[0]?.obj
    expect(line).toMatchObject({ name: 'site/broken', failed: ids.length, moreErrors: 2 })
    const errors = line?.errors as string[]
    expect(errors).toHaveLength(FAILURES_LOGGED)
    for (const [i, e] of errors.entries()) expect(e).toMatch(new RegExp(`^inner${i}: .*/blocker.*`))
    expect(errors.join('\n')).toContain(queue.applied['site/broken']?.errors?.[0]?.error)
  })

  it('does not apply a policy that does not target this node', async () => {
    const { queue, store, seen, hold, settled, at } = setup()
    hold(motd('db only\n', { target: { tags: { role: 'db' } } }))
    queue.schedule('site/motd')
    await settled()
    expect(seen.order).toEqual(['not-targeted site/motd v1'])
    await expect(readFile(at('/motd'))).rejects.toThrow(/ENOENT/)
    expect(queue.applied).toEqual({})
    expect(store.history).toEqual([])
  })

  it('stops managing a retired policy and leaves its files as they are', async () => {
    const { queue, store, seen, hold, settled, at } = setup()
    hold(motd('hello\n'))
    queue.schedule('site/motd')
    await settled()
    hold(policy({ kind: 'retired', name: 'site/motd' }), 2)
    queue.schedule('site/motd')
    await settled()
    expect(seen.order).toEqual(['applied site/motd v1', 'retired site/motd v2'])
    expect(queue.applied).toEqual({})
    expect(store.appliedSaves.at(-1)).toEqual({})
    expect(await readFile(at('/motd'), 'utf8')).toBe('hello\n')

    const saves = store.appliedSaves.length
    queue.schedule('site/motd')
    await settled()
    expect(seen.retired).toHaveLength(2)
    expect(store.appliedSaves).toHaveLength(saves)
  })

  it('applies every held policy but the trust policy, one at a time', async () => {
    const { queue, seen, hold, settled } = setup()
    hold(trustPolicy([]))
    for (const name of ['site/a', 'site/b', 'site/c']) hold(configPolicy(name, [file(name.slice(5), `/${name.slice(5)}`)]))
    queue.scheduleAll()
    queue.schedule('grapevine/trust')
    await settled()
    // Two applies at once would collide on the state directory's apply lock and fail.
    expect(seen.order).toEqual(['applied site/a v1', 'applied site/b v1', 'applied site/c v1'])
    expect(seen.applied.map((a) => a.report.outcome)).toEqual(['changes', 'changes', 'changes'])
  })

  it('applies the version held at its turn, skipping those superseded while it waited', async () => {
    const { queue, seen, hold, settled, at } = setup()
    hold(motd('one\n'))
    queue.schedule('site/motd')
    hold(motd('two\n'), 2)
    queue.schedule('site/motd')
    hold(motd('three\n'), 3)
    queue.schedule('site/motd')
    await settled()
    expect(seen.order).toEqual(['applied site/motd v1', 'applied site/motd v3'])
    expect(await readFile(at('/motd'), 'utf8')).toBe('three\n')
  })

  it('leaves a path two policies claim to the name that sorts first, and reports the conflict once', async () => {
    const { queue, seen, hold, settled, at } = setup()
    hold(configPolicy('site/b', [file('motd', '/motd', 'from b\n')]))
    hold(configPolicy('site/a', [file('motd', '/motd', 'from a\n')]))
    queue.scheduleAll()
    await settled()
    queue.schedule('site/b')
    await settled()
    expect(await readFile(at('/motd'), 'utf8')).toBe('from a\n')
    expect(seen.conflict).toMatchObject([{ kind: 'path', name: 'site/b', path: '/motd', policies: ['site/a', 'site/b'] }])
    const b = seen.applied.filter((a) => a.env.name === 'site/b').map((a) => a.report.resources[0])
    expect(b).toHaveLength(2)
    for (const r of b) expect(r).toMatchObject({ id: 'motd', status: 'failed' })
    expect(b[0]?.error?.message).toMatch(/also managed by policy "site\/a"/)
  })

  it('applies two policies that both make sure of a parent directory, with no conflict and nothing skipped', async () => {
    const { queue, seen, hold, settled, at } = setup()
    hold(configPolicy('web/nginx', [dir('etc', '/etc'), dir('nginx', '/etc/nginx', { requires: ['etc'] }), file('conf', '/etc/nginx/nginx.conf', 'web\n')]))
    hold(configPolicy('base/motd', [dir('etc', '/etc'), file('motd', '/etc/motd', 'base\n')]))
    queue.scheduleAll()
    await settled()
    expect(await readFile(at('/etc/nginx/nginx.conf'), 'utf8')).toBe('web\n')
    expect(await readFile(at('/etc/motd'), 'utf8')).toBe('base\n')
    expect(seen.conflict).toEqual([])
    for (const { report } of seen.applied) expect(report.counts).toMatchObject({ failed: 0, skipped: 0 })
    expect(seen.applied.map((a) => a.env.name).sort()).toEqual(['base/motd', 'web/nginx'])
  })

  it('lets a policy keep its path when the one sorting first does not target this node', async () => {
    const { queue, seen, hold, settled, at } = setup()
    hold(configPolicy('site/a', [file('motd', '/motd', 'from a\n')], { target: { tags: { role: 'db' } } }))
    hold(configPolicy('site/b', [file('motd', '/motd', 'from b\n')]))
    queue.scheduleAll()
    await settled()
    expect(await readFile(at('/motd'), 'utf8')).toBe('from b\n')
    expect(seen.conflict).toEqual([])
  })

  it('reports an apply that could not run as a failure instead of losing it', async () => {
    const { queue, log, seen, hold, settled } = setup({ root: '/nonexistent/grapevine-root' })
    hold(motd('hello\n'))
    queue.schedule('site/motd')
    await settled()
    expect(seen.applied[0]?.report).toMatchObject({ outcome: 'failures', counts: { failed: 1 }, resources: [{ id: '(policy)', status: 'failed' }] })
    expect(queue.applied['site/motd']).toMatchObject({ outcome: 'failures', failed: 1 })
    expect(log.at('error').map((l) => l.msg)).toEqual(['apply crashed'])
  })

  it('applies nothing once stopped', async () => {
    const { queue, seen, hold, settled, stopping } = setup()
    hold(motd('hello\n'))
    stopping.abort()
    queue.schedule('site/motd')
    await settled()
    expect(seen.order).toEqual([])
    expect(queue.busy).toBe(false)
  })

  it('ignores a name the book does not hold', async () => {
    const { queue, seen, settled } = setup()
    queue.schedule('site/none')
    await settled()
    expect(seen.order).toEqual([])
  })
})

describe('ApplyQueue.outcomeOf', () => {
  const setup = useQueue()
  const record = (env: VerifiedEnvelope, version: number, changed: number, failed: number) => ({
    name: env.name, version, hash: env.hash, outcome: 'x', at: '', changed, failed, durationMs: 0
  })
  const p = config('site/p', [])
  const db = verified(configPolicy('site/db', [], { target: { tags: { role: 'db' } } }), { key })
  const trust = verified(trustPolicy([]), { key })
  const retired = verified(policy({ kind: 'retired', name: 'site/old' }), { key, version: 2 })

  it.each<[string, VerifiedEnvelope, [version: number, changed: number, failed: number] | undefined, string]>([
    ['applied, changing something', p, [1, 2, 0], 'applied'],
    ['applied, changing nothing', p, [1, 0, 0], 'unchanged'],
    ['applied with failures', p, [1, 3, 1], 'failed'],
    ['applied at another version: this one waits', p, [2, 1, 0], 'pending'],
    ['never applied', p, undefined, 'pending'],
    ['not for this node', db, undefined, 'not-targeted'],
    ['the trust policy', trust, undefined, 'trust'],
    ['retired', retired, undefined, 'retired']
  ])('%s → %s', (_, env, applied, outcome) => {
    const { queue } = setup()
    if (applied !== undefined) queue.applied[env.name] = record(env, ...applied)
    expect(queue.outcomeOf(env)).toBe(outcome)
  })
})
