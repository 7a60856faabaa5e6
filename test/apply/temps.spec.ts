import { spawnSync } from 'node:child_process'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BACKUP_DIR, POLICY_CACHE_DIR } from '../../src/apply/index.js'
import { StateStore } from '../../src/store/index.js'
import { policyOf, useSandbox } from './helpers.js'
import { useTempDir } from '../helpers/tmp.js'

/** The pid of a process that has exited: what a temporary file of a killed writer carries. */
const deadPid = (): number => {
  const child = spawnSync(process.execPath, ['-e', ''])
  if (child.pid === undefined) throw new Error('could not start a process')
  return child.pid
}
/** A temporary file name of an atomic write to `name` by `pid`. */
const temp = (name: string, pid: number): string => `.${name}.grapevine-tmp-${pid}-0123456789ab`

describe('temporary files left by a killed writer (issue 15)', () => {
  const sandbox = useSandbox()

  it('the next apply removes them beside every managed path, changed or not, and leaves a live writer\'s alone', async () => {
    const box = sandbox()
    const policy = policyOf([
      { id: 'dir', type: 'directory', path: '/conf.d' },
      { id: 'a', type: 'file', path: '/conf.d/a.conf', content: 'a\n' }
    ])
    await box.apply(policy)
    const dead = temp('a.conf', deadPid())
    // The parent process: alive for as long as this test runs.
    const live = temp('a.conf', process.ppid)
    await writeFile(box.at(`/conf.d/${dead}`), 'half of a')
    await writeFile(box.at(`/conf.d/${live}`), 'being written')
    const report = await box.apply(policy)
    expect(report.counts.changed).toBe(0)
    expect((await readdir(box.at('/conf.d'))).sort()).toEqual([live, 'a.conf'].sort())
  })

  it('the next apply removes a half-made backup copy and a policy-cache entry from the state directory', async () => {
    const box = sandbox()
    const file = (content: string) => policyOf([{ id: 'a', type: 'file', path: '/a', content }])
    await box.apply(file('1\n'))
    await box.apply(file('2\n'))
    const dead = temp('copy', deadPid())
    await writeFile(join(box.state, BACKUP_DIR, dead), 'half a copy')
    await mkdir(join(box.state, POLICY_CACHE_DIR), { recursive: true })
    const cached = temp('0123.json', deadPid())
    await writeFile(join(box.state, POLICY_CACHE_DIR, cached), '{"half":')
    await box.apply(file('2\n'))
    expect(await readdir(join(box.state, BACKUP_DIR))).not.toContain(dead)
    expect(await readdir(join(box.state, POLICY_CACHE_DIR))).not.toContain(cached)
  })
})

describe('temporary files in the agent\'s state directory', () => {
  const dir = useTempDir('grapevine-state-temps-')

  it('are removed when the store opens (the agent starts), in envelopes/, archive/ and the directory itself', async () => {
    const store = await StateStore.open(dir())
    await store.saveEnvelope('web/nginx', new TextEncoder().encode('{}'), 1)
    const pid = deadPid()
    const leftovers = [
      join(dir(), 'envelopes', temp('web%2Fnginx.env', pid)),
      join(dir(), 'archive', 'web%2Fnginx', temp('1.env', pid)),
      join(dir(), temp('applied.json', pid))
    ]
    for (const f of leftovers) await writeFile(f, '{"half":')
    const liveOne = join(dir(), 'envelopes', temp('web%2Fother.env', process.ppid))
    await writeFile(liveOne, '{"being":')
    await StateStore.open(dir())
    expect(await readdir(join(dir(), 'envelopes'))).toEqual(['web%2Fnginx.env', temp('web%2Fother.env', process.ppid)].sort())
    expect(await readdir(join(dir(), 'archive', 'web%2Fnginx'))).toEqual(['1.env'])
    expect((await readdir(dir())).filter((f) => f.startsWith('.'))).toEqual([])
  })
})

