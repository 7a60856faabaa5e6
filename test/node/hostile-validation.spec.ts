import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import {
  BadSignatureError, ContentHashMismatchError, EnvelopeTooLargeError, InvalidEnvelopeError, MAX_ENVELOPE_BYTES,
  generateSigningKey, openEnvelope, validateEnvelope, type Authorizer
} from '../../src/envelope/index.js'
import * as canonical from '../../src/envelope/canonical.js'
import * as depth from '../../src/policy/depth.js'
import * as parse from '../../src/policy/parse.js'
import { PolicyTooDeepError } from '../../src/policy/index.js'
import { OutOfScopeError, TrustStore, UntrustedSignerError } from '../../src/trust/index.js'
import { deepEnvelope } from '../helpers/deep.js'
import { configPolicy, signed, trustPolicy } from '../helpers/envelope.js'
import { nextEvent, startMesh, type TestMesh } from './fixtures.js'

// Every walk over a policy is spied on, so a test can prove that a check never reached it,
// without timing anything.
vi.mock('../../src/policy/depth.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../../src/policy/depth.js')>()
  return { ...m, tooDeepAt: vi.fn(m.tooDeepAt), walkData: vi.fn(m.walkData) }
})
vi.mock('../../src/policy/parse.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../../src/policy/parse.js')>()
  return { ...m, validatePolicyObject: vi.fn(m.validatePolicyObject) }
})
vi.mock('../../src/envelope/canonical.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../../src/envelope/canonical.js')>()
  return { ...m, canonicalJson: vi.fn(m.canonicalJson) }
})

const walks = (): Record<string, number> => ({
  tooDeepAt: vi.mocked(depth.tooDeepAt).mock.calls.length,
  walkData: vi.mocked(depth.walkData).mock.calls.length,
  validatePolicyObject: vi.mocked(parse.validatePolicyObject).mock.calls.length,
  canonicalJson: vi.mocked(canonical.canonicalJson).mock.calls.length
})
const NO_WALKS = { tooDeepAt: 0, walkData: 0, validatePolicyObject: 0, canonicalJson: 0 }

const root = generateSigningKey()
const webAdmin = generateSigningKey()
const stranger = generateSigningKey()
const trust = new TrustStore([root.id], trustPolicy([{ key: webAdmin.id, scopes: ['web/'] }]))
/** The issue's envelope: ~2 MB, config data 2,000 objects deep (170 times), all-zero signature. */
const issueEnvelope = (): Uint8Array => deepEnvelope({ depth: 2000, copies: 170, key: root, signature: 'zero' })

function refusal (f: () => unknown): Error {
  try {
    f()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a refusal')
}

describe('cheapest checks first: nothing reads a policy its header does not vouch for', () => {
  beforeEach(() => { vi.clearAllMocks() })

  it('refuses the issue\'s deep, unsigned 2 MB envelope as bad-signature, without walking its policy or asking trust', () => {
    const bytes = issueEnvelope()
    expect(bytes.byteLength).toBeGreaterThan(2_000_000)
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_ENVELOPE_BYTES)
    const asked: string[] = []
    const spy: Authorizer = { authorize: (signer) => { asked.push(signer) }, authorizePolicy: (signer) => { asked.push(`policy:${signer}`) } }
    expect(refusal(() => validateEnvelope(bytes, spy))).toBeInstanceOf(BadSignatureError)
    expect(asked).toEqual([])
    expect(walks()).toEqual(NO_WALKS)
  })

  it.each([
    ['an untrusted signer', stranger, 'web/deep', UntrustedSignerError],
    ['an admin outside its name scope', webAdmin, 'app/deep', OutOfScopeError]
  ] as const)('refuses a deep policy validly signed by %s on its header alone', (_, key, name, kind) => {
    const bytes = deepEnvelope({ name, depth: 2000, copies: 170, key, signature: 'valid' })
    expect(refusal(() => validateEnvelope(bytes, trust))).toBeInstanceOf(kind)
    expect(walks()).toEqual(NO_WALKS)
  })

  it('refuses a trusted, signed header carrying another (deep) body as hash-mismatch: one pass over the bytes, no walk', () => {
    const bytes = deepEnvelope({ depth: 2000, copies: 170, key: root, signature: 'valid', hash: `sha256:${'0'.repeat(64)}` })
    expect(refusal(() => validateEnvelope(bytes, trust))).toBeInstanceOf(ContentHashMismatchError)
    expect(walks()).toEqual(NO_WALKS)
  })

  it('refuses a deep policy a trusted key did sign by name, depth first: never a RangeError, never canonicalised', () => {
    for (const [nesting, copies] of [[2000, 170], [300_000, 1]]) {
      vi.clearAllMocks()
      const err = refusal(() => validateEnvelope(deepEnvelope({ depth: nesting as number, copies, key: root, signature: 'valid' }), trust))
      expect(err).toBeInstanceOf(InvalidEnvelopeError)
      expect(err.cause).toBeInstanceOf(PolicyTooDeepError)
      expect(err.message).toMatch(/resources\[0\]\.data\.k000000\.a\.a\.a\.a…: nested more than 64 levels deep/)
      expect(walks()).toMatchObject({ tooDeepAt: 1, canonicalJson: 0, validatePolicyObject: 0 })
    }
  })

  it('opens a header without reading the policy; complete() does the rest, once asked', () => {
    const bytes = deepEnvelope({ depth: 2000, copies: 1, key: root, signature: 'valid' })
    const opened = openEnvelope(bytes, trust)
    expect(opened).toMatchObject({ name: 'web/deep', version: 1, signer: root.id })
    expect(walks()).toEqual(NO_WALKS)
    expect(refusal(() => opened.complete()).cause).toBeInstanceOf(PolicyTooDeepError)

    const site = signed(configPolicy('web/site'), { key: webAdmin })
    vi.clearAllMocks()
    const fine = openEnvelope(site, trust)
    expect(walks()).toEqual(NO_WALKS)
    expect(fine.complete().policy.name).toBe('web/site')
    expect(walks()).toMatchObject({ tooDeepAt: 2, canonicalJson: 1, validatePolicyObject: 1 })
  })

  it('checks size before anything, even for garbage', () => {
    expect(refusal(() => validateEnvelope(new Uint8Array(MAX_ENVELOPE_BYTES + 1).fill(0x5b), trust))).toBeInstanceOf(EnvelopeTooLargeError)
  })
})

describe('the deep unsigned envelope against a real agent', () => {
  let mesh: TestMesh | undefined
  afterEach(async () => {
    await mesh?.stop()
    mesh = undefined
  })

  it('is refused by name and leaves the event loop free: status answers at once', async () => {
    mesh = await startMesh(1)
    const agent = mesh.agents[0]!
    const bytes = issueEnvelope()
    const refused = nextEvent(agent, 'rejected', () => true, 5_000)
    const delay = monitorEventLoopDelay({ resolution: 10 })
    delay.enable()
    const started = performance.now()
    const outcomes = []
    // The issue measured 9–12 s per message; ten in a row.
    for (let i = 0; i < 10; i++) {
      outcomes.push(await agent.ingest(bytes, 'gossip', 'hostile-peer'))
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    const elapsed = performance.now() - started
    const statusStarted = performance.now()
    const status = agent.status()
    const statusMs = performance.now() - statusStarted
    delay.disable()
    const [event] = await refused
    const maxDelayMs = delay.max / 1e6
    console.log(`deep unsigned envelope (${bytes.byteLength} bytes) x10 via ingest: ${elapsed.toFixed(0)} ms in all, event-loop delay max ${maxDelayMs.toFixed(1)} ms, status() ${statusMs.toFixed(1)} ms`)
    expect(outcomes).toEqual(Array(10).fill('rejected'))
    expect(event).toMatchObject({ reason: 'bad-signature', via: 'gossip', from: 'hostile-peer' })
    expect(status.policies).toEqual([])
    expect(maxDelayMs).toBeLessThan(1_000)
    expect(statusMs).toBeLessThan(1_000)
  })
})
