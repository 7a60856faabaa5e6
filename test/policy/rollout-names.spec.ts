import { describe, expect, it } from 'vitest'
import { parsePolicy } from '../../src/policy/index.js'
import { messageOf, lines } from '../helpers/parse-outcome.js'

// `rollout/<policy>` carries a policy's rollout record (docs/rollout.md); nodes keep one envelope
// per name, so an ordinary policy under such a name would displace the record, or be displaced.
describe('the rollout/ name prefix is reserved', () => {
  const reserved = 'names starting with "rollout/" are reserved for rollout records (kind: rollout)'

  it.each([
    ['an ordinary policy', lines('name: rollout/web/nginx', 'resources: []'), `p.yaml:1:7: name: ${reserved}, got "rollout/web/nginx"`],
    ['an ordinary policy with its kind given', lines('kind: policy', 'name: rollout/x', 'resources: []'), `p.yaml:2:7: name: ${reserved}, got "rollout/x"`],
    ['a retired tombstone', lines('kind: retired', 'name: rollout/web/nginx'), `p.yaml:2:7: name: ${reserved}, got "rollout/web/nginx"`]
  ])('refuses %s named rollout/…', (_, text, message) => {
    expect(messageOf(text)).toBe(message)
  })

  it('still accepts names that only look alike', () => {
    for (const name of ['rollout', 'rollouts/web', 'web/rollout/x', 'rollout-web/x']) {
      expect(parsePolicy(lines(`name: ${name}`, 'resources: []')).name).toBe(name)
    }
  })
})
