import { describe, expect, it } from 'vitest'
import { contentHash, generateSigningKey, type VerifiedEnvelope } from '../../src/envelope/index.js'
import { PolicyUnchangedError, UnknownPolicyError, publishPolicy, type MeshClient } from '../../src/client/index.js'
import { validatePolicyObject, type Policy } from '../../src/policy/index.js'
import type { DigestEntry } from '../../src/sync/index.js'

const key = generateSigningKey()
const site = (content: string): Policy => validatePolicyObject({ name: 'web/site', resources: [{ id: 'f', type: 'file', path: '/f', content }] })

/** A mesh that holds `head` for web/site and records what it is given. */
function meshHolding (head?: DigestEntry): MeshClient & { delivered: VerifiedEnvelope[] } {
  const delivered: VerifiedEnvelope[] = []
  return {
    delivered,
    current: async (name) => name === 'web/site' ? head : undefined,
    heads: async () => head !== undefined ? [head] : [],
    deliver: async (envelope) => { delivered.push(envelope); return { confirmedBy: ['peer'] } },
    fleet: async () => [],
    envelope: async () => undefined,
    close: async () => {}
  }
}

const held = (policy: Policy, version: number): DigestEntry => ({ name: policy.name, version, hash: contentHash(policy), id: 'a'.repeat(64) })

describe('publishPolicy: nothing to publish (issue 15)', () => {
  it('with skipUnchanged, content the head already has is not signed or sent', async () => {
    const mesh = meshHolding(held(site('one'), 4))
    const err = await publishPolicy(mesh, { policy: site('one'), key, skipUnchanged: true }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyUnchangedError)
    expect(err).toMatchObject({ policy: 'web/site', held: { version: 4 } })
    expect(mesh.delivered).toEqual([])
  })

  it('with skipUnchanged, new content and --force still publish the next version', async () => {
    const mesh = meshHolding(held(site('one'), 4))
    expect((await publishPolicy(mesh, { policy: site('two'), key, skipUnchanged: true })).envelope.version).toBe(5)
    expect((await publishPolicy(mesh, { policy: site('one'), key, skipUnchanged: true, force: 're-apply' })).envelope.version).toBe(5)
    expect(mesh.delivered).toHaveLength(2)
  })

  it('without skipUnchanged (library callers), unchanged content is published as before', async () => {
    const mesh = meshHolding(held(site('one'), 4))
    expect((await publishPolicy(mesh, { policy: site('one'), key })).envelope.version).toBe(5)
  })

  it('a tombstone for a name the mesh does not hold is refused, and nothing is sent', async () => {
    const mesh = meshHolding(undefined)
    const err = await publishPolicy(mesh, { policy: validatePolicyObject({ kind: 'retired', name: 'web/site' }), key }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UnknownPolicyError)
    expect((err as Error).message).toMatch(/holds no policy named web\/site, so there is nothing to retire/)
    expect(mesh.delivered).toEqual([])
  })
})
