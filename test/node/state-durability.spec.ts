import { readFile } from 'node:fs/promises'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { StateStore, atomicWrite, appendLine, type StateWriter } from '../../src/store/index.js'
import { Journal, restoreBook, retryDelay } from '../../src/node/journal.js'
import { Intake } from '../../src/node/intake.js'
import { ApplyQueue } from '../../src/node/apply-queue.js'
import { createClock } from '../../src/node/clock.js'
import { STATE_RETRY_FIRST_MS, STATE_RETRY_MAX_MS } from '../../src/node/constants.js'
import type { NodeFacts } from '../../src/policy/index.js'
import { configPolicy, makeKeys, signed } from '../helpers/envelope.js'
import { useTempDir } from '../helpers/tmp.js'
import { fakeMetrics, FakeTime, RecordingLogger, settle, trustedBook } from './fakes.js'
import { filePolicy, nextEvent, startMesh, waitFor, type TestMesh } from './fixtures.js'

const keys = makeKeys()

/** Waits (on real time: the writes are real files) until `ok()` holds, or fails after a deadline. */
async function until (ok: () => boolean, what: string, deadlineMs = 5_000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
const facts: NodeFacts = { id: 'node-1', name: 'web1', tags: { role: 'web' } }
const motd = (version: number): Uint8Array =>
  signed(configPolicy('site/motd', [{ id: 'motd', type: 'file', path: '/motd', content: `release ${version}\n` }]), { key: keys.root, version })

/** A writer over the real files whose next `failures` envelope writes fail as a full disk does. */
function fullDisk (): StateWriter & { failures: number } {
  const writer = {
    failures: 0,
    appendLine,
    atomicWrite: async (file: string, data: Uint8Array | string, mode?: number, durable?: boolean): Promise<void> => {
      if (file.endsWith('.env') && writer.failures > 0) {
        writer.failures--
        throw Object.assign(new Error(`ENOSPC: no space left on device, open '${file}'`), { code: 'ENOSPC' })
      }
      await atomicWrite(file, data, mode, durable)
    }
  }
  return writer
}

/** The agent's intake, journal and apply queue, wired as agent.ts wires them, over a real state directory and root. */
function useNode () {
  const dir = useTempDir('grapevine-durable-')
  return async () => {
    const time = new FakeTime()
    const clock = createClock({ now: time.now, setTimer: time.setTimer })
    const stopping = new AbortController()
    const writer = fullDisk()
    const stateDir = join(dir(), 'state')
    const root = join(dir(), 'root')
    mkdirSync(root, { recursive: true })
    const store = await StateStore.open(stateDir, writer)
    const log = new RecordingLogger()
    const { book } = trustedBook({ keys, now: time.now })
    const { metrics, m } = fakeMetrics('envelopesAccepted', 'envelopesRejected', 'envelopesIgnored', 'policies', 'applies', 'applyDuration', 'stateWriteFailures')
    const journal = new Journal({ store, log, now: time.now, after: clock.after, signal: stopping.signal, failures: metrics.stateWriteFailures })
    const applied: number[] = []
    const nothing = (): void => {}
    const intake: Intake = new Intake({
      book, journal, store, metrics, log, now: time.now,
      events: { accepted: (env) => { queue.schedule(env.name) }, rejected: nothing, conflict: nothing, forward: nothing, untrusted: nothing, catchUp: nothing, fork: nothing }
    })
    const queue: ApplyQueue = new ApplyQueue({
      book, journal, store, metrics, log, now: time.now, facts, root, signal: stopping.signal,
      saving: (env) => intake.saving(env),
      events: { applied: (env) => { applied.push(env.version) }, notTargeted: nothing, retired: nothing, conflict: nothing }
    })
    const settled = async (): Promise<void> => {
      // An apply that waited for its envelope is scheduled once the write is done, after the journal's turn.
      await journal.idle()
      await settle()
      await queue.idle()
      await journal.idle()
    }
    /** A restart with no peers: what a new book loads from the state directory. */
    const restart = async (): Promise<number | undefined> => {
      const fresh = trustedBook({ keys, now: time.now }).book
      await restoreBook(await StateStore.open(stateDir), fresh, log, time.now)
      return fresh.get('site/motd')?.version
    }
    const onDisk = async (): Promise<string> => await readFile(join(root, 'motd'), 'utf8')
    return { intake, queue, journal, writer, log, m, time, stopping, applied, settled, restart, onDisk }
  }
}

describe('an envelope is stored before anything is applied from it (issue 15: full state disk, rollback after restart)', () => {
  const setup = useNode()

  it('waits out an ENOSPC on the envelope write, retries it, applies once it is written, and a restart loads that version', async () => {
    const { intake, journal, queue, writer, log, m, time, applied, settled, restart, onDisk } = await setup()
    expect(intake.take(motd(1), 'gossip', 'peer-a').outcome).toBe('accepted')
    await settled()
    expect(await onDisk()).toBe('release 1\n')

    writer.failures = 1
    expect(intake.take(motd(2), 'gossip', 'peer-a').outcome).toBe('accepted')
    // The failed write happens in its turn; the retry waits on the (fake) clock, and so does the apply.
    await until(() => journal.failing !== undefined, 'the envelope write fails')
    await queue.idle()
    expect(await onDisk()).toBe('release 1\n')
    expect(applied).toEqual([1])
    expect(journal.failing).toMatchObject({ what: 'envelope site/motd v2', attempts: 1 })
    expect(journal.failing?.error).toContain('ENOSPC')
    expect(m.stateWriteFailures.count()).toBe(1)
    expect(log.at('error').map((l) => l.obj)).toContainEqual(expect.objectContaining({ what: 'envelope site/motd v2', attempt: 1, retryInMs: STATE_RETRY_FIRST_MS }))

    await time.advance(STATE_RETRY_FIRST_MS)
    await settled()
    expect(applied).toEqual([1, 2])
    expect(await onDisk()).toBe('release 2\n')
    expect(journal.failing).toBeUndefined()
    expect(await restart()).toBe(2)
  })

  it('while the disk stays full, applies nothing new, so a restart finds the files and the stored version agree', async () => {
    const { intake, journal, writer, stopping, applied, settled, restart, onDisk, time } = await setup()
    intake.take(motd(1), 'gossip', 'peer-a')
    await settled()
    writer.failures = Infinity
    intake.take(motd(2), 'gossip', 'peer-a')
    intake.take(motd(3), 'gossip', 'peer-a')
    await until(() => journal.failing !== undefined, 'the envelope write fails')
    // Retries back off: a day of them is a few dozen attempts, none of which lets anything apply.
    for (let hour = 0; hour < 24; hour++) await time.advance(60 * 60_000)
    expect(journal.failing?.attempts).toBeGreaterThan(20)
    expect(journal.failing?.attempts).toBeLessThan(24 * 60 + 10)
    expect(applied).toEqual([1])
    // Stopping ends the retries: the writes are given up, never reported done.
    stopping.abort()
    await settled()
    expect(await onDisk()).toBe('release 1\n')
    expect(await restart()).toBe(1)
  })

  it('backs off doubling from the first delay, capped', () => {
    expect([1, 2, 3, 4].map(retryDelay)).toEqual([1, 2, 4, 8].map((n) => n * STATE_RETRY_FIRST_MS))
    expect(retryDelay(1000)).toBe(STATE_RETRY_MAX_MS)
  })
})

describe('an agent on a full --state disk (issue 15: applied v2, restarted, rolled back to v1)', () => {
  let mesh: TestMesh | undefined
  afterEach(async () => {
    await mesh?.stop()
    mesh = undefined
  })

  it('applies a version only once its envelope is stored, shows the failing write meanwhile, and a restart with no peers keeps that version', async () => {
    const writer = fullDisk()
    mesh = await startMesh(1, { stateWriter: writer })
    const agent = mesh.agents[0]!
    const site = async (): Promise<string> => await readFile(join(mesh!.dir, 'node-0', 'root', 'site'), 'utf8')
    await agent.ingest(mesh.sign(filePolicy('web/site', 'version 1\n', '/site'), 1), 'sync')
    await agent.idle()
    expect(await site()).toBe('version 1\n')

    writer.failures = 1
    const applied = nextEvent(agent, 'applied', ({ envelope }) => envelope.version === 2)
    expect(await agent.ingest(mesh.sign(filePolicy('web/site', 'version 2\n', '/site'), 2), 'sync')).toBe('accepted')
    await waitFor(() => agent.status().stateWriteFailing !== undefined, 'the envelope write to fail')
    expect(agent.status().stateWriteFailing).toMatchObject({ what: 'envelope web/site v2', attempts: 1 })
    expect(await site()).toBe('version 1\n')
    // The retry comes after STATE_RETRY_FIRST_MS; then, and only then, the apply.
    await applied
    expect(await site()).toBe('version 2\n')
    expect(agent.status().stateWriteFailing).toBeUndefined()
    await agent.stop()

    const restarted = await mesh.add({ stateDir: join(mesh.dir, 'node-0', 'state'), root: join(mesh.dir, 'node-0', 'root') })
    await restarted.idle()
    expect(restarted.libp2p.getPeers()).toEqual([])
    expect(restarted.envelope('web/site')?.version).toBe(2)
    expect(await site()).toBe('version 2\n')
  })
})

describe('reading the history while the disk is full', () => {
  const setup = useNode()

  it('answers with what is on disk instead of waiting for the retried write', async () => {
    const { intake, journal, writer, settled } = await setup()
    intake.take(motd(1), 'gossip', 'peer-a')
    await settled()
    writer.failures = Infinity
    intake.take(motd(2), 'gossip', 'peer-a')
    // Asked before the write has failed, and after.
    const early = journal.readHistory()
    await until(() => journal.failing !== undefined, 'the envelope write fails')
    const late = journal.readHistory()
    for (const read of [early, late]) expect((await read).map((h) => `${h.event} v${h.version}`)).toEqual(['accepted v1', 'applied v1'])
  })
})
