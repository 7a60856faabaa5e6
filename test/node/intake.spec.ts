import { describe, expect, it } from 'vitest'
import {
  AnnouncementMismatchError, BadSignatureError, ContentHashMismatchError, EnvelopeTooLargeError, InvalidEnvelopeError, MalformedEnvelopeError,
  type VerifiedEnvelope
} from '../../src/envelope/index.js'
import { NotRootError, OutOfScopeError, RevokedSignerError, TrustStore, UntrustedSignerError } from '../../src/trust/index.js'
import type { IngestOutcome } from '../../src/sync/index.js'
import { INTERNAL_REASON, PEER_FAULTS, TRUST_REFUSALS } from '../../src/node/intake.js'
import { PolicyBook, type ConflictRecord } from '../../src/node/book.js'
import { RELAY_SYNCED_WITHIN_MS } from '../../src/node/constants.js'
import type { Via } from '../../src/node/rules.js'
import { configPolicy, FIXED_NOW, signed, trustPolicy } from '../helpers/envelope.js'
import type { RolloutRecord } from '../../src/rollout/index.js'
import { rolloutRecordOf } from '../helpers/rollout.js'
import { intakeRig, verify } from './fakes.js'

const VIAS = ['gossip', 'sync', 'local', 'api', 'disk'] as const satisfies readonly Via[]

describe('Intake.take', () => {
  it('accepts a valid new envelope: counts it, persists it before its history line, and says so', async () => {
    const { intake, keys, store, journal, m, seen } = intakeRig()
    const bytes = signed(configPolicy('site/motd'), { key: keys.root, version: 3 })
    const { outcome, envelope } = intake.take(bytes, 'gossip', 'peer-a')
    expect(outcome).toBe('accepted')
    expect(envelope?.version).toBe(3)
    expect(m.envelopesAccepted.count({ via: 'gossip' })).toBe(1)
    expect(m.policies.value).toBe(1)
    expect(seen.accepted).toEqual([{ env: envelope, via: 'gossip', from: 'peer-a' }])
    await journal.idle()
    expect(store.ops).toEqual(['envelope site/motd', 'history accepted site/motd'])
    expect(store.envelopes.get('site/motd')).toEqual({ bytes, version: 3 })
    expect(store.history[0]).toMatchObject({ event: 'accepted', name: 'site/motd', version: 3, via: 'gossip', from: 'peer-a', signer: keys.root.id })
  })

  it.each<[string, 'older' | 'duplicate']>([['an older version', 'older'], ['the same envelope again', 'duplicate']])('ignores %s: valid, not taken, nothing written', async (_, reason) => {
    const { intake, keys, store, journal, m, seen } = intakeRig()
    intake.take(signed(configPolicy('site/motd'), { key: keys.root, version: 2 }), 'sync', 'peer-a')
    await journal.idle()
    const ops = store.ops.length
    const again = signed(configPolicy('site/motd'), { key: keys.root, version: reason === 'older' ? 1 : 2 })
    // Ignored on its verified header: the policy is never parsed, so no envelope comes back.
    expect(intake.take(again, 'gossip', 'peer-b')).toEqual({ outcome: 'ignored', reason })
    expect(m.envelopesIgnored.count({ reason })).toBe(1)
    expect(m.envelopesAccepted.count()).toBe(1)
    expect(seen.accepted).toHaveLength(1)
    expect(seen.rejected).toEqual([])
    await journal.idle()
    expect(store.ops).toHaveLength(ops)
  })

  it('judges an older version on its signed header, before its policy: a replay with a broken body is ignored, not checked', () => {
    const { intake, keys, m, seen } = intakeRig()
    intake.take(signed(configPolicy('site/motd'), { key: keys.root, version: 2 }), 'sync', 'peer-a')
    const v1 = new TextDecoder().decode(signed(configPolicy('site/motd', [], { description: 'one' }), { key: keys.root, version: 1 }))
    // The same signed header over another body: checking the body would find a hash mismatch.
    const broken = new TextEncoder().encode(v1.replace('"description":"one"', '"description":"two"'))
    expect(intake.take(broken, 'gossip', 'peer-b')).toEqual({ outcome: 'ignored', reason: 'older' })
    expect(seen.rejected).toEqual([])
    // As the newest version it would be checked whole, and refused.
    const fresh = intakeRig({ keys }).intake
    expect(fresh.take(broken, 'gossip', 'peer-b')).toMatchObject({ outcome: 'rejected', reason: 'hash-mismatch' })
    expect(m.envelopesIgnored.count({ reason: 'older' })).toBe(1)
  })

  it('reports a same-version conflict once, whether this node kept its envelope or took the other', async () => {
    const { intake, keys, store, journal, seen } = intakeRig()
    const x = signed(configPolicy('site/motd', [], { description: 'x' }), { key: keys.root })
    const y = signed(configPolicy('site/motd', [], { description: 'y' }), { key: keys.root })
    const first = intake.take(x, 'gossip').envelope as VerifiedEnvelope
    const second = intake.take(y, 'gossip')
    const secondWins = (second.envelope as VerifiedEnvelope).hash > first.hash
    expect(second.outcome).toBe(secondWins ? 'accepted' : 'ignored')
    expect(seen.conflict).toHaveLength(1)
    expect(seen.conflict[0]).toMatchObject({ kind: 'version', name: 'site/motd', version: 1 })
    // The loser again: known already.
    intake.take(secondWins ? x : y, 'sync')
    expect(seen.conflict).toHaveLength(1)
    await journal.idle()
    expect(store.history.filter((h) => h.event === 'conflict')).toHaveLength(1)
  })

  it('reports the held policies a new trust policy no longer allows', async () => {
    const { intake, keys, book, store, journal, log, m, seen } = intakeRig()
    const admins = (scopes: string[]) => [{ key: keys.webAdmin.id, scopes }]
    intake.take(signed(trustPolicy(admins(['web/'])), { key: keys.root }), 'sync')
    intake.take(signed(configPolicy('web/nginx'), { key: keys.webAdmin }), 'sync')
    expect(book.size).toBe(2)
    expect(intake.take(signed(trustPolicy(admins(['db/'])), { key: keys.root, version: 2 }), 'sync').outcome).toBe('accepted')
    expect(seen.untrusted).toMatchObject([{ name: 'web/nginx', version: 1, signer: keys.webAdmin.id, reason: 'out-of-scope' }])
    expect(m.policies.value).toBe(1)
    expect(log.at('warn').map((l) => l.msg)).toEqual(['held policy no longer trusted: not applied any more'])
    await journal.idle()
    expect(store.history.filter((h) => h.event === 'untrusted')).toMatchObject([{ name: 'web/nginx', version: 1, detail: { reason: 'out-of-scope' } }])
  })

  it('takes a trust policy into effect for the envelope after it', () => {
    const { intake, keys } = intakeRig()
    const byAdmin = signed(configPolicy('web/nginx'), { key: keys.webAdmin })
    expect(intake.take(byAdmin, 'sync').outcome).toBe('ignored')
    expect(intake.take(signed(trustPolicy([{ key: keys.webAdmin.id, scopes: ['web/'] }]), { key: keys.root }), 'sync').outcome).toBe('accepted')
    expect(intake.take(byAdmin, 'sync').outcome).toBe('accepted')
  })

  it.each<[string, 'gossip' | 'sync', IngestOutcome, string]>([
    ['garbage by gossip', 'gossip', 'rejected', 'malformed'],
    ['garbage by sync', 'sync', 'rejected', 'malformed'],
    ['an untrusted signer by gossip', 'gossip', 'rejected', 'untrusted'],
    ['an untrusted signer by sync (maybe a peer with newer trust)', 'sync', 'ignored', 'untrusted']
  ])('refuses %s: %s', (what, via, outcome, reason) => {
    const { intake, keys, book, m, seen } = intakeRig()
    const bytes = what.startsWith('garbage') ? new TextEncoder().encode('{"not":"an envelope"') : signed(configPolicy('site/motd'), { key: keys.stranger })
    expect(intake.take(bytes, via, 'peer-a')).toEqual({ outcome, reason })
    expect(book.size).toBe(0)
    expect(m.envelopesRejected.count({ reason, via })).toBe(1)
    expect(seen.rejected).toMatchObject([{ reason, via, from: 'peer-a' }])
  })

  it('refuses a valid envelope that is not the one announced', () => {
    const { intake, keys, book, seen } = intakeRig()
    const announced = signed(configPolicy('site/motd'), { key: keys.root, version: 2 })
    const served = signed(configPolicy('site/motd'), { key: keys.root, version: 2, now: FIXED_NOW + 1 })
    const ann = verify(announced)
    expect(intake.take(served, 'gossip', 'peer-a', ann)).toEqual({ outcome: 'rejected', reason: 'not-announced' })
    expect(book.size).toBe(0)
    expect(seen.rejected.map((r) => r.reason)).toEqual(['not-announced'])
    expect(intake.take(announced, 'gossip', 'peer-b', ann).outcome).toBe('accepted')
  })

  it('does not blame the sender for an error of this node\'s own', () => {
    class BrokenTrust extends TrustStore {
      override authorize (): void { throw new TypeError('cannot read properties of undefined') }
    }
    const { intake, keys, log, seen } = intakeRig({ book: new PolicyBook(new BrokenTrust([]), () => FIXED_NOW) })
    const bytes = signed(configPolicy('site/motd'), { key: keys.root })
    expect(intake.take(bytes, 'gossip', 'peer-a')).toEqual({ outcome: 'ignored', reason: 'internal' })
    expect(seen.rejected).toEqual([{ reason: INTERNAL_REASON, via: 'gossip', from: 'peer-a', error: 'cannot read properties of undefined', name: 'site/motd', signer: keys.root.id }])
    expect(log.at('error')).toHaveLength(1)
  })
})

describe('Intake forwarding (rules.forwards)', () => {
  type Age = 'fresh' | 'old'
  // Gossipsub relays what came by gossip, and a publisher sends what it publishes: the intake
  // asks for a forward only for what came by sync. A new Via does not compile without rows here.
  const table = {
    gossip: [[false, 'fresh', false], [true, 'old', false]],
    local: [[false, 'fresh', false], [true, 'old', false]],
    api: [[false, 'fresh', false], [true, 'old', false]],
    disk: [[false, 'fresh', false], [true, 'fresh', false]],
    sync: [
      [false, 'fresh', true],
      [false, 'old', false],
      [true, 'old', true],
      [true, 'fresh', true]
    ]
  } satisfies Record<Via, Array<[replacedOlder: boolean, age: Age, forward: boolean]>>

  for (const via of VIAS) {
    it.each<[boolean, Age, boolean]>(table[via])(`${via}: replaced an older version %s, %s → forward %s`, (replacedOlder, age, forward) => {
      const { intake, keys, seen } = intakeRig()
      const now = age === 'fresh' ? FIXED_NOW - 1000 : FIXED_NOW - RELAY_SYNCED_WITHIN_MS
      if (replacedOlder) intake.take(signed(configPolicy('site/motd'), { key: keys.root, version: 1, now }), 'disk')
      const { outcome, envelope } = intake.take(signed(configPolicy('site/motd'), { key: keys.root, version: 2, now }), via, 'peer-a')
      expect(outcome).toBe('accepted')
      expect(seen.forward).toEqual(forward ? [envelope] : [])
    })
  }
})

describe('Intake.refuse', () => {
  const errors = {
    'too-large': () => new EnvelopeTooLargeError(10, 5),
    malformed: () => new MalformedEnvelopeError('not JSON'),
    invalid: () => new InvalidEnvelopeError('bad field'),
    'bad-signature': () => new BadSignatureError('does not verify'),
    'hash-mismatch': () => new ContentHashMismatchError('hash'),
    untrusted: () => new UntrustedSignerError('who?'),
    revoked: () => new RevokedSignerError('revoked'),
    'out-of-scope': () => new OutOfScopeError('not yours'),
    'not-root': () => new NotRootError('not root'),
    'not-announced': () => new AnnouncementMismatchError('not that one'),
    [INTERNAL_REASON]: () => new TypeError('a bug')
  } satisfies Record<string, () => Error>
  type Reason = keyof typeof errors

  const fault = { gossip: 'rejected', sync: 'rejected', local: 'rejected', api: 'rejected', disk: 'rejected' } as const
  const notTheirs = { gossip: 'rejected', sync: 'ignored', local: 'ignored', api: 'ignored', disk: 'ignored' } as const
  const ours = { gossip: 'ignored', sync: 'ignored', local: 'ignored', api: 'ignored', disk: 'ignored' } as const
  // What a refusal costs the sender, by reason and way in; every reason and every Via has a cell.
  const table = {
    'too-large': fault,
    malformed: fault,
    invalid: fault,
    'bad-signature': fault,
    'hash-mismatch': fault,
    untrusted: notTheirs,
    revoked: notTheirs,
    'out-of-scope': notTheirs,
    'not-root': notTheirs,
    'not-announced': notTheirs,
    [INTERNAL_REASON]: ours
  } satisfies Record<Reason, Record<Via, IngestOutcome>>

  it('names as peer faults exactly the reasons that cost the sender by any way in', () => {
    expect([...PEER_FAULTS].sort()).toEqual((Object.keys(table) as Reason[]).filter((r) => table[r] === fault).sort())
  })

  it('names as trust refusals exactly the trust store\'s reasons', () => {
    const trustReasons = [new UntrustedSignerError(''), new RevokedSignerError(''), new OutOfScopeError(''), new NotRootError('')].map((e) => e.reason)
    expect([...TRUST_REFUSALS].sort()).toEqual(trustReasons.sort())
  })

  for (const reason of Object.keys(table) as Reason[]) {
    it.each(VIAS)(`${reason} by %s → ${JSON.stringify(table[reason])}`, (via) => {
      const { intake, log, m, seen } = intakeRig()
      const err = errors[reason]()
      expect(intake.refuse(err, via, 'peer-a')).toBe(table[reason][via])
      expect(m.envelopesRejected.count({ reason, via })).toBe(1)
      expect(seen.rejected).toEqual([{ reason, via, from: 'peer-a', error: err.message }])
      expect(log.lines.map((l) => l.level)).toEqual([reason === INTERNAL_REASON ? 'error' : 'warn'])
    })
  }
})

describe('Intake.conflict', () => {
  it('logs, records in history and hands on a conflict found elsewhere', async () => {
    const { intake, store, journal, log, seen } = intakeRig()
    const record: ConflictRecord = { kind: 'version', name: 'site/motd', version: 4, winner: 'sha256:b', loser: 'sha256:a', at: new Date(FIXED_NOW).toISOString() }
    intake.conflict(record)
    expect(seen.conflict).toEqual([record])
    expect(log.at('warn')).toHaveLength(1)
    await journal.idle()
    expect(store.history).toEqual([{ at: new Date(FIXED_NOW).toISOString(), event: 'conflict', name: 'site/motd', version: 4, detail: record }])
  })
})

describe('Intake, rollout records (rollout/<policy>)', () => {
  // Authorized against the policy they roll out (src/trust/trust.ts), by the same path and errors as policies.
  const record = (policy: string): RolloutRecord => rolloutRecordOf({ policy, at: FIXED_NOW })

  it('refuses a record by an admin out of scope for its policy, at the sender\'s cost by gossip, and accepts and holds one by an admin in scope', () => {
    const { intake, keys, book, m, seen } = intakeRig()
    intake.take(signed(trustPolicy([{ key: keys.webAdmin.id, scopes: ['web/'] }, { key: keys.starAdmin.id, scopes: ['db/'] }]), { key: keys.root }), 'sync')
    const outOfScope = signed(record('web/nginx'), { key: keys.starAdmin })
    expect(intake.take(outOfScope, 'gossip', 'peer-a')).toEqual({ outcome: 'rejected', reason: 'out-of-scope' })
    expect(m.envelopesRejected.count({ reason: 'out-of-scope', via: 'gossip' })).toBe(1)
    expect(seen.rejected).toMatchObject([{ reason: 'out-of-scope', via: 'gossip', from: 'peer-a', name: 'rollout/web/nginx' }])
    expect(book.get('rollout/web/nginx')).toBeUndefined()

    const inScope = signed(record('web/nginx'), { key: keys.webAdmin })
    const { outcome, envelope } = intake.take(inScope, 'gossip', 'peer-b')
    expect(outcome).toBe('accepted')
    expect(envelope?.policy).toEqual(record('web/nginx'))
    expect(book.get('rollout/web/nginx')?.id).toBe(envelope?.id)
  })

  it('refuses a forged record (its signature does not verify), and drops a held one when a new trust policy takes its signer\'s scope away', () => {
    const { intake, keys, book, seen } = intakeRig()
    const admins = (scopes: string[]) => [{ key: keys.webAdmin.id, scopes }]
    intake.take(signed(trustPolicy(admins(['web/'])), { key: keys.root }), 'sync')
    const bytes = signed(record('web/nginx'), { key: keys.webAdmin })
    // The signed header's version (the envelope's last field) changed after signing.
    const forged = new TextEncoder().encode(new TextDecoder().decode(bytes).replace(/"version":1}$/, '"version":9}'))
    expect(intake.take(forged, 'gossip', 'peer-a')).toEqual({ outcome: 'rejected', reason: 'bad-signature' })
    expect(intake.take(bytes, 'gossip', 'peer-a').outcome).toBe('accepted')
    intake.take(signed(trustPolicy(admins(['db/'])), { key: keys.root, version: 2 }), 'sync')
    expect(seen.untrusted).toMatchObject([{ name: 'rollout/web/nginx', signer: keys.webAdmin.id, reason: 'out-of-scope' }])
    expect(book.get('rollout/web/nginx')).toBeUndefined()
  })

  it('writes each stage change into the audit trail with its signer: version rolled out, stage, state, reason', async () => {
    const { intake, keys, store, journal } = intakeRig()
    intake.take(signed(record('web/nginx'), { key: keys.root }), 'gossip', 'peer-a')
    await journal.idle()
    expect(store.history.at(-1)).toMatchObject({
      event: 'accepted', name: 'rollout/web/nginx', version: 1, signer: keys.root.id,
      detail: { rollout: { policy: 'web/nginx', target: 2, stage: 0, stages: 2, text: '1', state: 'running' } }
    })
  })
})
