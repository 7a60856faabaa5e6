import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { z as source } from '../../src/vendor/zod.js'
import { REPO_ROOT } from '../helpers/cli.js'

// The built program loads zod as one file (scripts/bundle-zod.mjs); these read dist/, so build first (`npm test` does).
const BUNDLE = join(REPO_ROOT, 'dist', 'vendor', 'zod.js')

async function jsFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => join(e.parentPath, e.name))
}

describe('the bundled zod in dist/', () => {
  it('is one file that imports nothing', async () => {
    const text = await readFile(BUNDLE, 'utf8')
    expect(text).toContain('"$ZodObjectJIT"')
    expect(text).not.toMatch(/^\s*(?:import|export)\s[^;]*\sfrom\s*["']/m)
    expect(text).not.toMatch(/\b(?:import|require)\s*\(\s*["'`]/)
  })

  it('is the only zod the built modules load', async () => {
    const direct: string[] = []
    for (const file of await jsFiles(join(REPO_ROOT, 'dist'))) {
      if (file === BUNDLE) continue
      if (/(?:from\s*|import\s*\(\s*|require\s*\(\s*)["']zod(?:\/[^"']*)?["']/.test(await readFile(file, 'utf8'))) direct.push(file)
    }
    expect(direct).toEqual([])
  })

  it('reports what zod from node_modules reports, in English', async () => {
    const { z: bundled } = await import(pathToFileURL(BUNDLE).href) as { z: typeof source }
    expect(bundled).not.toBe(source)
    for (const [schema, input] of [
      [(z: typeof source) => z.string().max(3), 'abcd'],
      [(z: typeof source) => z.strictObject({ a: z.number() }), { a: 'x', b: 1 }],
      [(z: typeof source) => z.discriminatedUnion('t', [z.object({ t: z.literal('a') }), z.object({ t: z.literal('b') })]), { t: 'c' }],
      [(z: typeof source) => z.enum(['x', 'y']).default('x'), 3]
    ] as const) {
      const want = schema(source).safeParse(input).error?.issues
      expect(want).toBeDefined()
      expect(JSON.parse(JSON.stringify(schema(bundled).safeParse(input).error?.issues))).toEqual(JSON.parse(JSON.stringify(want)))
    }
  })

  it('leaves out the other locales, and says so when one is asked for', async () => {
    const { z: bundled } = await import(pathToFileURL(BUNDLE).href) as { z: typeof source }
    expect(Object.keys(bundled.locales).sort()).toEqual(Object.keys(source.locales).sort())
    expect(bundled.locales.en()).toHaveProperty('localeError')
    expect(() => bundled.locales.fr()).toThrow('zod locale "fr" is not in the bundled zod')
  })
})
