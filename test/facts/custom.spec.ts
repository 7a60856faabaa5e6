import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gatherFacts, readCustomFacts, summarizeFacts, flattenFacts, MAX_CUSTOM_FACTS_BYTES, MAX_FACT_FILES } from '../../src/facts/index.js'
import { factsWithinBounds, MAX_PRESENCE_FACTS_BYTES } from '../../src/receipt/index.js'
import { parseOsRelease } from '../../src/facts/builtin.js'
import { useTempDir } from '../helpers/tmp.js'

const dir = useTempDir('grapevine-factsd-')

async function files (entries: Record<string, string>): Promise<string> {
  const d = join(dir(), 'facts.d')
  await mkdir(d, { recursive: true })
  for (const [name, text] of Object.entries(entries)) await writeFile(join(d, name), text)
  return d
}

describe('custom facts (facts.d)', () => {
  it('merges JSON and YAML maps at the top level in file-name order, a later file replacing a fact with a warning', async () => {
    const d = await files({
      '10-site.json': JSON.stringify({ site: 'lab', rack: { row: 3, slot: 'b' } }),
      '20-role.yaml': 'role: web\nsite: dc2\nbackup: true\n',
      '30-more.yml': 'owners: [ops, web]\n',
      'README.txt': 'not a fact file',
      '.hidden.json': '{"hidden": 1}'
    })
    const got = await readCustomFacts(d)
    expect(got.facts).toEqual({ site: 'dc2', rack: { row: 3, slot: 'b' }, role: 'web', backup: true, owners: ['ops', 'web'] })
    expect(got.files).toEqual(['10-site.json', '20-role.yaml', '30-more.yml'].map((n) => join(d, n)))
    expect(got.warnings).toEqual([`${join(d, '20-role.yaml')}: fact "site" replaces the one from ${join(d, '10-site.json')} (files merge in name order)`])
  })

  it.each<[string, string, string, RegExp]>([
    ['invalid JSON', 'bad.json', '{"a": ', /bad\.json: not valid JSON \(.+\); its facts are skipped$/],
    ['invalid YAML', 'bad.yaml', 'a: [1, 2\n', /bad\.yaml: not valid YAML \(.+\); its facts are skipped$/],
    ['a list, not a map', 'list.json', '[1, 2]', /list\.json: expected a map of fact names to values, got a list; its facts are skipped$/],
    ['a scalar', 'scalar.yaml', 'just text\n', /scalar\.yaml: expected a map of fact names to values, got string/],
    ['YAML null', 'null.yaml', '~\n', /null\.yaml: expected a map of fact names to values, got null/],
    ['too deep', 'deep.json', JSON.stringify({ a: { b: { c: { d: { e: { f: { g: { h: { i: 1 } } } } } } } } }), /deep\.json: a\.b\.c\.d\.e\.f\.g\.h is nested deeper than 8 levels/],
    ['a YAML alias bomb', 'bomb.yaml', ['a: &a [x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]', 'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]'].join('\n'), /bomb\.yaml: more than 10000 values/],
    ['a YAML date (not JSON data)', 'date.yaml', 'when: !!timestamp 2025-01-01\n', /date\.yaml: not valid YAML/]
  ])('skips %s with a warning naming the file, and keeps the other files\' facts', async (_, name, text, warning) => {
    const d = await files({ [name]: text, 'z-good.json': '{"good": "yes"}' })
    const got = await readCustomFacts(d)
    expect(got.facts).toEqual({ good: 'yes' })
    expect(got.warnings).toHaveLength(1)
    expect(got.warnings[0]).toMatch(warning)
    expect(got.warnings[0]).toContain(join(d, name))
  })

  it('an empty file has no facts and no warning', async () => {
    const d = await files({ 'empty.yaml': '', 'blank.json': '\n' })
    expect(await readCustomFacts(d)).toEqual({ facts: {}, warnings: [], files: [join(d, 'blank.json'), join(d, 'empty.yaml')] })
  })

  it('skips a fact whose name templates could not reach, and __proto__', async () => {
    const d = await files({ 'a.json': '{"my.fact": 1, "__proto__": {"polluted": true}, "ok_name-2": 2}' })
    const got = await readCustomFacts(d)
    expect(got.facts).toEqual({ 'ok_name-2': 2 })
    expect(Object.getPrototypeOf(got.facts)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(got.warnings).toHaveLength(2)
    expect(got.warnings[0]).toContain('fact "my.fact" skipped')
  })

  it('bounds the bytes of all files together: the file that would pass the bound is skipped, never cut', async () => {
    const half = (k: string): string => JSON.stringify({ [k]: 'x'.repeat(MAX_CUSTOM_FACTS_BYTES / 2 - 20) })
    const d = await files({ 'a.json': half('a'), 'b.json': half('b'), 'c.json': half('c'), 'd.json': '{"d": 1}' })
    const got = await readCustomFacts(d)
    expect(Object.keys(got.facts)).toEqual(['a', 'b', 'd'])
    expect(got.warnings).toHaveLength(1)
    expect(got.warnings[0]).toMatch(new RegExp(`c\\.json: \\d+ bytes would pass the ${MAX_CUSTOM_FACTS_BYTES}-byte bound on all custom facts`))
  })

  it('reads at most MAX_FACT_FILES files, skips what is not a regular file, and follows a symlink to one', async () => {
    const d = await files(Object.fromEntries(Array.from({ length: MAX_FACT_FILES + 2 }, (_, i) => [`f${String(i).padStart(4, '0')}.json`, `{"f${i}": ${i}}`])))
    const got = await readCustomFacts(d)
    expect(Object.keys(got.facts)).toHaveLength(MAX_FACT_FILES)
    expect(got.warnings).toEqual([`facts directory ${d}: ${MAX_FACT_FILES + 2} fact files, only the first ${MAX_FACT_FILES} by name are read`])

    const e = join(dir(), 'e')
    await mkdir(join(e, 'dir.json'), { recursive: true })
    await writeFile(join(dir(), 'elsewhere.json'), '{"linked": true}')
    await symlink(join(dir(), 'elsewhere.json'), join(e, 'link.json'))
    const other = await readCustomFacts(e)
    expect(other.facts).toEqual({ linked: true })
    expect(other.warnings).toEqual([`${join(e, 'dir.json')}: not a regular file; its facts are skipped`])
  })

  it('a missing directory has no facts: silently by default, with a warning when asked for by --facts-dir', async () => {
    expect(await readCustomFacts(join(dir(), 'nope'))).toEqual({ facts: {}, warnings: [], files: [] })
    expect((await readCustomFacts(join(dir(), 'nope'), { explicit: true })).warnings).toEqual([`facts directory ${join(dir(), 'nope')}: does not exist; no custom facts`])
    await writeFile(join(dir(), 'plain'), '')
    expect((await readCustomFacts(join(dir(), 'plain'))).warnings).toEqual([`facts directory ${join(dir(), 'plain')}: ENOTDIR; no custom facts`])
  })

  it('built-in facts win over custom facts of the same top-level name, with a warning', async () => {
    const d = await files({ 'fake.json': JSON.stringify({ os: { family: 'redhat' }, init: 'systemd', role: 'db' }) })
    const { facts, warnings } = await gatherFacts({ factsDir: d })
    expect((facts.os as { family: string }).family).toBe('debian')
    expect(facts.role).toBe('db')
    expect(warnings).toEqual([
      `custom fact "os" (${d}) ignored: "os" is a built-in fact, which custom facts do not replace`,
      `custom fact "init" (${d}) ignored: "init" is a built-in fact, which custom facts do not replace`
    ])
  })
})

describe('the summary a beacon carries', () => {
  it('carries the summary facts first, then custom facts while they fit, within the bound', async () => {
    const d = await files({ 'a.json': JSON.stringify({ role: 'web', big: 'x'.repeat(MAX_PRESENCE_FACTS_BYTES), site: 'lab' }) })
    const { facts } = await gatherFacts({ factsDir: d })
    const s = summarizeFacts(facts)
    expect(Object.keys(s)).toEqual(expect.arrayContaining(['os', 'kernel', 'architecture', 'hostname', 'fqdn', 'processors', 'memory', 'init', 'networking', 'role', 'site']))
    expect(s.big).toBeUndefined()
    expect((s.networking as Record<string, unknown>).interfaces).toBeUndefined()
    expect(s.processors).toEqual({ count: (facts.processors as { count: number }).count })
    expect(s.memory).toEqual({ system: { total_bytes: (facts.memory as { system: { total_bytes: number } }).system.total_bytes } })
    expect(Buffer.byteLength(JSON.stringify(s))).toBeLessThanOrEqual(MAX_PRESENCE_FACTS_BYTES)
    console.log(`beacon facts summary on this machine: ${Buffer.byteLength(JSON.stringify(summarizeFacts(facts, undefined)))} bytes with two custom facts`)
  })

  it('never passes the bound, whatever the facts', () => {
    for (const n of [0, 10, 500, 1000, 1500, 2000, 2100, 5000]) {
      const s = summarizeFacts({ os: { family: 'x'.repeat(n) }, hostname: 'h'.repeat(n / 2), a: 'a'.repeat(n / 3), b: { c: 'c'.repeat(n / 4) } })
      expect(Buffer.byteLength(JSON.stringify(s))).toBeLessThanOrEqual(MAX_PRESENCE_FACTS_BYTES)
    }
    expect(summarizeFacts(undefined)).toEqual({})
  })

  it('whatever the facts, the summary is within what every receiver of a beacon accepts (property)', () => {
    const deep = fc.letrec((tie) => ({ value: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 3 })) })).value
    fc.assert(fc.property(fc.dictionary(fc.string({ maxLength: 20 }), deep, { maxKeys: 20 }), (facts) => {
      expect(factsWithinBounds(summarizeFacts(facts))).toBe(true)
    }), { numRuns: 300 })
  })

  it('any fact file is taken or skipped with a warning, never thrown on (property)', async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(fc.json(), fc.string()), fc.constantFrom('f.json', 'f.yaml'), async (text, name) => {
      const d = join(dir(), 'p')
      await mkdir(d, { recursive: true })
      await writeFile(join(d, name), text)
      const got = await readCustomFacts(d)
      expect(got.warnings.length + got.files.length).toBeGreaterThanOrEqual(1)
      expect(Buffer.byteLength(JSON.stringify(got.facts))).toBeLessThanOrEqual(MAX_CUSTOM_FACTS_BYTES)
      await writeFile(join(d, name), '')
    }), { numRuns: 100 })
    fc.assert(fc.property(fc.string(), (text) => { expect(typeof parseOsRelease(text)).toBe('object') }))
  })

  it('flattenFacts writes dotted lines, lists by index', () => {
    expect(flattenFacts({ os: { family: 'debian', release: { major: '12' } }, n: 2, list: ['a', { b: true }], empty: {}, none: [] })).toEqual([
      'os.family: debian', 'os.release.major: 12', 'n: 2', 'list.0: a', 'list.1.b: true', 'empty: {}', 'none: []'
    ])
  })
})
