import { describe, expect, it } from 'vitest'
import { lstat } from 'node:fs/promises'
import { retirementPolicy } from '../../src/apply/index.js'
import { policyOf, summary, useSandbox } from './helpers.js'

describe('retirementPolicy', () => {
  const sandbox = useSandbox()
  const policy = policyOf([
    { id: 'dir', type: 'directory', path: '/app' },
    { id: 'conf', type: 'config', path: '/app/conf.json', format: 'json', data: { a: 1 }, notify: ['reload'] },
    { id: 'link', type: 'symlink', path: '/app/current', target: 'conf.json', requires: ['conf'] },
    { id: 'reload', type: 'exec', command: ['true'], refreshonly: true }
  ])

  it('removes files and links in reverse order, keeps directories and drops execs', () => {
    const retired = retirementPolicy(policy)
    expect(retired.resources.map((r) => [r.id, 'ensure' in r ? r.ensure : '', r.requires ?? []])).toEqual([
      ['conf', 'absent', ['link']],
      ['link', 'absent', []]
    ])
  })

  it('undoes an applied policy on a node', async () => {
    const sb = sandbox()
    await sb.apply(policy)
    const report = await sb.apply(retirementPolicy(policy))
    expect(summary(report)).toEqual(['link:delete/ok', 'conf:delete/ok'])
    expect((await lstat(sb.at('/app'))).isDirectory()).toBe(true)
    await expect(lstat(sb.at('/app/conf.json'))).rejects.toThrow(/ENOENT/)
  })
})
