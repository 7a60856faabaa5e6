import { afterEach, describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startMesh, filePolicy, outcomeAt, waitFor, type TestMesh } from './fixtures.js'
import { connectMesh, fleetSummary, publishPolicy, waitForFleet } from '../../src/client/index.js'
import { failureLines, progressLine } from '../../src/cli/commands/publish.js'
import type { Agent } from '../../src/node/agent.js'

let mesh: TestMesh | undefined
afterEach(async () => {
  await mesh?.stop()
  mesh = undefined
})

// The check passes once a file named `up` is in the node's root: a service that is down until someone fixes it.
const checked = filePolicy('site/web', 'hello\n', '/etc/web/index.html', {
  checks: [{ id: 'web-up', type: 'exec', command: 'echo "connect() failed (111: Connection refused)"; test -f "$GRAPEVINE_ROOT/up"' }]
})

describe('health checks on agents', () => {
  it('a failing check makes the receipt unhealthy, with the check and its output; publish --wait counts it as a failure', async () => {
    mesh = await startMesh(2, { beaconInterval: 0 })
    const m = mesh
    await waitFor(() => m.agents.every((x) => x.libp2p.getPeers().length > 0), 'connections')
    await Promise.all(m.agents.map(async (x) => await x.beacon()))
    await waitFor(() => m.agents.every((x) => x.fleet.size === 2), 'every node known everywhere')
    const [, b] = m.agents as [Agent, Agent]
    // b's service is up; a's is not.
    await writeFile(join(m.dir, 'node-1', 'root', 'up'), '')
    const admin = await connectMesh({ bootstrap: [b.multiaddrs[0]!] })
    try {
      const { envelope } = await publishPolicy(admin, { policy: checked, key: m.root })
      const { progress, timedOut } = await waitForFleet(admin, envelope, { timeoutMs: 15_000 })
      expect(timedOut).toBe(false)
      expect(progress.applied.map((n) => n.name)).toEqual(['node-1'])
      expect(progress.failed.map((n) => [n.name, n.outcome])).toEqual([['node-0', 'unhealthy']])
      expect(progress.failed[0]?.failures).toEqual([{ resource: 'check:web-up', error: 'echo "connect() failed (111: Connection refused)"; test -f "$GRAPEVINE_ROOT/up": exited 1\nconnect() failed (111: Connection refused)' }])
      expect(progressLine('policy', 'site/web', 1, progress)).toContain('1 applied, 0 unchanged, 1 failed (1 unhealthy)')
      // What publish --wait prints under it: the node, the check, its output.
      const node0 = progress.failed[0]!
      expect(failureLines(progress).join('\n')).toBe([
        `  UNHEALTHY node-0 (no tags) ${node0.id.slice(-8)}`,
        '    check:web-up: echo "connect() failed (111: Connection refused)"; test -f "$GRAPEVINE_ROOT/up": exited 1',
        '      connect() failed (111: Connection refused)'
      ].join('\n'))
    } finally {
      await admin.close()
    }
    // The node's own status says it too, and `fleet` lists it as failing.
    const a = m.agents[0] as Agent
    await waitFor(() => outcomeAt(b, a, 'site/web') === 'unhealthy', 'a\'s receipt at b')
    expect(fleetSummary(b.fleet.list(), Date.now()).policies.find((p) => p.name === 'site/web')?.failing).toEqual(['node-0'])
    const last = a.status().policies.find((p) => p.name === 'site/web')?.lastApply
    expect(last?.outcome).toBe('unhealthy')
    expect(last?.errors?.[0]?.resource).toBe('check:web-up')
  })

  it('a drift-repair re-apply runs the checks again: a node that became healthy reports applied (the first apply\'s word), one that fell ill reports unhealthy', async () => {
    mesh = await startMesh(2, { beaconInterval: 0, reapplyInterval: 200 })
    const m = mesh
    const [a, b] = m.agents as [Agent, Agent]
    await waitFor(() => a.libp2p.getPeers().length > 0, 'connected')
    await writeFile(join(m.dir, 'node-0', 'root', 'up'), '')
    await a.publish(m.sign(checked, 1))
    await waitFor(() => outcomeAt(a, b, 'site/web') === 'unhealthy', 'b unhealthy at a')
    await waitFor(() => outcomeAt(a, a, 'site/web') === 'applied', 'a healthy')
    // b's service comes up; a's goes down. Nothing is published: the re-applies notice.
    await writeFile(join(m.dir, 'node-1', 'root', 'up'), '')
    const { rm } = await import('node:fs/promises')
    await rm(join(m.dir, 'node-0', 'root', 'up'))
    await waitFor(() => outcomeAt(a, b, 'site/web') === 'applied', 'b healthy again at a, as applied')
    await waitFor(() => outcomeAt(a, a, 'site/web') === 'unhealthy', 'a unhealthy')
    // A beacon says the same as the receipts.
    await b.beacon()
    await waitFor(() => outcomeAt(a, b, 'site/web') === 'applied', 'b\'s beacon')
  })
})
