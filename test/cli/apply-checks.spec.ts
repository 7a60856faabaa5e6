import { describe, expect, it } from 'vitest'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.js'
import { useTempDir } from '../helpers/tmp.js'
import type { ApplyReport } from '../../src/apply/index.js'

const POLICY = (checkCommand: string): string => `
name: web/site
resources:
  - id: srv
    type: directory
    path: /srv
  - id: page
    type: file
    path: /srv/index.html
    content: "hello\\n"
checks:
  - id: page-served
    type: exec
    command: 'grep -q hello "$GRAPEVINE_ROOT/srv/index.html"'
  - id: nginx-config
    type: exec
    command: '${checkCommand}'
`

describe('grapevine apply / plan with health checks', () => {
  const dir = useTempDir('grapevine-cli-checks-')
  const setup = async (checkCommand: string): Promise<{ file: string, root: string, args: string[] }> => {
    const file = join(dir(), 'policy.yaml')
    const root = join(dir(), 'root')
    await writeFile(file, POLICY(checkCommand))
    await mkdir(root, { recursive: true })
    return { file, root, args: ['--root', root, '--state', join(dir(), 'state'), '--name', 'web1'] }
  }

  it('apply applies, runs the checks after, and exits 8 naming the failing check with its output tail', async () => {
    const { file, root, args } = await setup('echo "nginx: [emerg] unknown directive" >&2; exit 1')
    const r = await runCli(['apply', file, ...args])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(8)
    expect(await readFile(join(root, 'srv/index.html'), 'utf8')).toBe('hello\n')
    expect(r.stdout).toContain('health: unhealthy, 1 of 2 checks after the apply failed: nginx-config')
    expect(r.stdout).toMatch(/✓ passed\s+check exec\s+page-served/)
    expect(r.stdout).toMatch(/! failed\s+check exec\s+nginx-config/)
    expect(r.stdout).toContain('      nginx: [emerg] unknown directive')
  })

  it('--json carries the checks and the health', async () => {
    const { file, args } = await setup('exit 2')
    const r = await runCli(['apply', file, ...args, '--json'])
    expect(r.code).toBe(8)
    const report = JSON.parse(r.stdout) as ApplyReport
    expect(report.health).toBe('unhealthy')
    expect(report.checks?.map((c) => [c.id, c.passed, c.attempts])).toEqual([['page-served', true, 1], ['nginx-config', false, 1]])
  })

  it('plan runs the checks against the current state and labels them so; a healthy apply exits as before', async () => {
    const { file, args } = await setup('true')
    const plan = await runCli(['plan', file, ...args])
    expect(plan.code).toBe(8)
    expect(plan.stdout).toContain('health: unhealthy, 1 of 2 checks of the current state (plan changes nothing first) failed: page-served')
    const apply = await runCli(['apply', file, ...args])
    expect(apply.code).toBe(2)
    expect(apply.stdout).toContain('health: healthy, 2 checks after the apply passed')
    const again = await runCli(['plan', file, ...args])
    expect(again.code).toBe(0)
  })
})
