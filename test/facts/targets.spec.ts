import { describe, expect, it } from 'vitest'
import { chooseRecipients } from '../../src/secrets/index.js'
import { validatePolicyObject, type ConfigPolicy } from '../../src/policy/index.js'
import { FleetView, signReport, validateReport, type Presence } from '../../src/receipt/index.js'
import { generateSigningKey } from '../../src/envelope/index.js'

const key = generateSigningKey()
const recipient = (c: string): string => `age1${c.repeat(58)}`

/** A node as a publisher's fleet view has it: from a signed, validated beacon carrying its facts. */
function heard (view: FleetView, node: string, facts: Record<string, unknown> | undefined, key58: string): void {
  const beacon: Presence = { format: 1, kind: 'presence', node, key: key.id, name: node, tags: {}, at: new Date().toISOString(), policies: [], recipient: recipient(key58), ...(facts !== undefined ? { facts } : {}) }
  view.add(validateReport(signReport(beacon, key)))
}

describe('target.facts against the facts beacons carry', () => {
  const policy = validatePolicyObject({ name: 'db/conf', target: { facts: { 'os.family': 'debian', role: 'db' } }, resources: [{ id: 'f', type: 'file', path: '/f', content: 'x' }] }) as ConfigPolicy

  it('secrets are sealed to the admitted targeted nodes whose beacons carry matching facts; a node whose beacon lacks them is not chosen', () => {
    const view = new FleetView()
    heard(view, 'db-debian', { os: { family: 'debian' }, role: 'db' }, 'q')
    heard(view, 'db-redhat', { os: { family: 'redhat' }, role: 'db' }, 'p')
    heard(view, 'web-debian', { os: { family: 'debian' }, role: 'web' }, 'z')
    heard(view, 'no-facts', undefined, 'r')
    // A publisher's own view admits a node as an agent's answer vouches; here, every node.
    const fleet = view.list().map((n) => ({ ...n, admitted: true }))
    const choice = chooseRecipients(policy, fleet)
    expect(choice.recipients.map((r) => r.node)).toEqual(['db-debian'])
  })
})
