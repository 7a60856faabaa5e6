// System resources are ordered like execs: each waits for every resource before it. Adjacent
// packages start together (one transaction), and every one of them waits for what came before
// the first: here the files before them write the very .debs they install.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildDeb, installedUnder } from '../helpers/deb.js'
import { policyOf, useSandbox } from './helpers.js'

const FILLER = 20

describe('ordering of adjacent packages', () => {
  const sandbox = useSandbox()

  it('every package of a run waits for all the files before the first one', async () => {
    const s = sandbox()
    const built = join(s.root, '..', 'built')
    const deb = async (name: string): Promise<string> => (await readFile(await buildDeb(join(built, `${name}.deb`), { name, version: '1.0', files: { [`usr/share/${name}/x`]: `${name}\n` } }))).toString('base64')
    const [a, b, c] = await Promise.all([deb('gv-ord-a'), deb('gv-ord-b'), deb('gv-ord-c')])
    const policy = policyOf([
      { id: 'debs', type: 'directory', path: '/debs' },
      ...Array.from({ length: FILLER }, (_, i) => ({ id: `f${i}`, type: 'file', path: `/debs/filler-${i}`, content: `${i}\n` })),
      { id: 'deb-a', type: 'file', path: '/debs/a.deb', encoding: 'base64', content: a },
      { id: 'deb-b', type: 'file', path: '/debs/b.deb', encoding: 'base64', content: b },
      { id: 'deb-c', type: 'file', path: '/debs/c.deb', encoding: 'base64', content: c },
      { id: 'a', type: 'package', name: 'gv-ord-a', source: '/debs/a.deb' },
      { id: 'b', type: 'package', name: 'gv-ord-b', source: '/debs/b.deb' },
      { id: 'c', type: 'package', name: 'gv-ord-c', source: '/debs/c.deb' }
    ])
    // Files become durable, and appear under their names, only after a slow syncfs: a package
    // that did not wait for them would find no .deb.
    const slowSync = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 400)) }
    const report = await s.apply(policy, { facts: { id: 'n', name: 'n', tags: {}, facts: { os: { family: 'debian' } } }, writeBatch: { syncFs: slowSync, minBatch: 1 } })
    expect(report.resources.filter((r) => r.status !== 'ok').map((r) => `${r.id}: ${r.error?.message ?? r.reason ?? ''}`)).toEqual([])
    expect(await installedUnder(s.root)).toEqual({ 'gv-ord-a': '1.0', 'gv-ord-b': '1.0', 'gv-ord-c': '1.0' })
  })
})
