import { access, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { generateSigningKey } from '../../src/envelope/index.js'
import { validatePolicyObject } from '../../src/policy/index.js'
import { trustPolicy } from '../helpers/envelope.js'
import { nextEvent, startMesh, waitFor, type TestMesh } from './fixtures.js'

let mesh: TestMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

const exists = async (p: string): Promise<boolean> => await access(p).then(() => true, () => false)

describe('a scoped admin is not root: grants bound power, on every node', () => {
  it('refuses a restricted web admin\'s exec and its file outside /var/www/ on every node, and applies what the grant allows', async () => {
    mesh = await startMesh(3)
    const m = mesh
    const [a, b, c] = m.agents as [typeof m.agents[0], typeof m.agents[0], typeof m.agents[0]]
    const roots = m.agents.map((x) => x.status().node.root)
    // What a real machine already has: the parents of the admin's prefix, and /etc.
    for (const root of roots) for (const d of ['var/www', 'etc']) await mkdir(join(root, d), { recursive: true })

    const admin = generateSigningKey()
    const trust = trustPolicy([{
      name: 'web team', key: admin.id, scopes: ['web/'],
      limits: { types: ['file', 'directory', 'config'], paths: ['/var/www/'] }
    }])
    // Every node holds the grant (how it got there is not what this test is about).
    const signedTrust = m.sign(trust, 1)
    for (const x of m.agents) expect(await x.ingest(signedTrust, 'local')).toBe('accepted')

    // Within the grant: taken and applied everywhere.
    const site = validatePolicyObject({
      name: 'web/site',
      resources: [{ id: 'site', type: 'directory', path: '/var/www/site' }, { id: 'index', type: 'file', path: '/var/www/site/index.html', content: 'hello\n' }]
    })
    const siteBytes = m.sign(site, 1, admin)
    const relay = a.libp2p.peerId.toString()
    // The admin publishes through a; a relay forwards the same bytes to b and c by gossip.
    expect((await a.publish(siteBytes)).outcome).toBe('accepted')
    for (const x of [b, c]) expect(await x.ingest(siteBytes, 'gossip', relay)).toMatch(/accepted|ignored/)
    await waitFor(async () => (await Promise.all(roots.map(async (r) => await exists(join(r, 'var/www/site/index.html'))))).every(Boolean), 'the site on every node')

    // Beyond it: an exec (which would write outside every node's root) and a file outside /var/www/.
    const pwned = join(m.dir, 'pwned-by-exec')
    const exec = m.sign(validatePolicyObject({ name: 'web/reload', resources: [{ id: 'reload', type: 'exec', command: ['touch', pwned] }] }), 1, admin)
    const keys = m.sign(validatePolicyObject({ name: 'web/keys', resources: [{ id: 'keys', type: 'file', path: '/etc/pwned', content: 'attacker\n' }] }), 1, admin)
    for (const [bytes, name, expected] of [
      [exec, 'web/reload', /^web\/reload goes beyond its signer's limits: resources\[0\] \(id "reload"\): type exec is not allowed for key .* \(web team, scopes "web\/"; limits types: file, directory, config\)$/],
      [keys, 'web/keys', /resources\[0\] \(id "keys"\): path \/etc\/pwned is outside the allowed paths for key .*limits paths: \/var\/www\/\)$/]
    ] as const) {
      const refused = m.agents.map(async (x) => await nextEvent(x, 'rejected', (r) => r.reason === 'out-of-scope' && r.error.startsWith(name), 5_000))
      expect((await a.publish(bytes)).outcome).toBe('ignored')
      expect(await b.ingest(bytes, 'gossip', relay)).toBe('rejected')
      expect(await c.ingest(bytes, 'gossip', relay)).toBe('rejected')
      for (const [event] of await Promise.all(refused)) expect(event.error).toMatch(expected)
      for (const x of m.agents) expect(x.envelope(name)).toBeUndefined()
    }
    for (const x of m.agents) await x.idle()
    expect(await exists(pwned)).toBe(false)
    for (const root of roots) {
      expect(await exists(join(root, 'etc/pwned'))).toBe(false)
      expect(await readFile(join(root, 'var/www/site/index.html'), 'utf8')).toBe('hello\n')
    }
  })
})
