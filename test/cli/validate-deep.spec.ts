import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from '../helpers/cli.js'
import { deepChain } from '../helpers/deep.js'
import { useTempDir } from '../helpers/tmp.js'

describe('grapevine validate on a policy nested 1,000 deep', () => {
  const dir = useTempDir()

  it.each([
    ['JSON', 'deep.json', (n: number) => `{"name":"web/deep","resources":[{"id":"c","type":"config","path":"/etc/x.json","format":"json","data":{"k":${deepChain(n)}}}]}`, 1],
    ['flow YAML', 'deep.yaml', (n: number) => `name: web/deep\nresources:\n  - id: c\n    type: config\n    path: /etc/x.json\n    format: json\n    data: {"k": ${'['.repeat(n)}${']'.repeat(n)}}\n`, 7]
  ] as const)('%s: exits 1 (invalid) with a named problem, the file and a line; never a crash', async (_, name, text, line) => {
    const file = join(dir(), name)
    await writeFile(file, text(1000))
    const r = await runCli(['validate', file])
    expect(r.signal).toBeNull()
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`error ${file}: 1 problem`)
    expect(r.stdout).toMatch(new RegExp(`${file}:${line}:\\d+: nested more than 64 levels deep`))
    expect(r.stderr).toBe('')

    const json = await runCli(['validate', '--json', file])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout)).toMatchObject([{ file, valid: false, problems: [{ line, message: expect.stringMatching(/nested more than 64 levels/) }] }])
  })
})
