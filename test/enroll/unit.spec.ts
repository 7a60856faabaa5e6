import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { REPO_ROOT } from '../helpers/cli.js'
import { layoutFor, unitFor } from '../../src/enroll/index.js'

/** A unit's settings, in order, without comments and blank lines. */
const directives = (unit: string): string[] => unit.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))

describe('the unit enroll installs', () => {
  it('is docs/grapevine.service (the .deb\'s unit), comments and all, under a line saying who wrote it', async () => {
    const docs = await readFile(join(REPO_ROOT, 'docs/grapevine.service'), 'utf8')
    const ours = unitFor(layoutFor('/'))
    expect(ours.split('\n').slice(1).join('\n')).toBe(docs)
    expect(ours.split('\n')[0]).toMatch(/^# Written by grapevine enroll/)
  })

  it('under a prefix: ExecStart names its binary, config and state, and systemd makes no StateDirectory', () => {
    const unit = directives(unitFor(layoutFor('/opt/gv')))
    expect(unit).toContain('ExecStart=/opt/gv/usr/bin/grapevine agent --config /opt/gv/etc/grapevine/agent.yaml --state /opt/gv/var/lib/grapevine')
    expect(unit.filter((d) => d.startsWith('StateDirectory'))).toEqual([])
  })
})
