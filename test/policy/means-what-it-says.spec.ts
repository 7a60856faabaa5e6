import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { PolicyEncodingError, loadPolicyFile, managedPathProblem, parsePolicy, validatePolicyObject } from '../../src/policy/index.js'
import { useTempDir } from '../helpers/tmp.js'
import { hostPath } from '../../src/apply/paths.js'
import { problemsOf, lines } from '../helpers/parse-outcome.js'

describe('validation applies the applier\'s path rules (issue 15)', () => {
  it.each([
    ['a file path climbing with ..', '{ id: f, type: file, path: /opt/../../etc/evil }', 'resources[0].path', /"\.\." is not allowed/],
    ['a trailing ..', '{ id: f, type: directory, path: /a/.. }', 'resources[0].path', /"\.\." is not allowed/],
    ['a config path with ..', '{ id: c, type: config, format: json, path: /etc/../x.json }', 'resources[0].path', /"\.\." is not allowed/],
    ['an exec cwd with ..', '{ id: e, type: exec, command: "true", cwd: /srv/../.. }', 'resources[0].cwd', /"\.\." is not allowed/],
    ['an exec creates with ..', '{ id: e, type: exec, command: "true", creates: /srv/../x }', 'resources[0].creates', /"\.\." is not allowed/],
    ['an absolute symlink target with ..', '{ id: l, type: symlink, path: /a, target: /x/../../y }', 'resources[0].target', /"\.\." is not allowed/],
    ['a NUL byte in a file path', '{ id: f, type: file, path: "/etc/a\\0b" }', 'resources[0].path', /NUL byte/],
    ['a NUL byte in a symlink target', '{ id: l, type: symlink, path: /a, target: "b\\0c" }', 'resources[0].target', /NUL byte/],
    ['a NUL byte in a command', '{ id: e, type: exec, command: ["/bin/echo", "a\\0b"] }', 'resources[0].command[1]', /NUL byte/],
    ['a NUL byte in an exec env value', '{ id: e, type: exec, command: "true", env: { A: "x\\0" } }', 'resources[0].env.A', /NUL byte/]
  ])('refuses %s at validation, with field and line', (_, resource, path, message) => {
    const problems = problemsOf(lines('name: a', 'resources:', `  - ${resource}`))
    expect(problems).toEqual([expect.objectContaining({ path, line: 3, message: expect.stringMatching(message) })])
  })

  it('keeps a relative symlink target with .. (it is resolved from the link, which is normal)', () => {
    expect(() => parsePolicy(lines('name: a', 'resources:', '  - { id: l, type: symlink, path: /etc/a, target: ../b }'))).not.toThrow()
  })

  it.each(['/opt/../../etc/evil', '/a/..', 'relative', '/x\0y', '/etc/nginx/', '/etc//x/./y'])('validation and hostPath agree on %j', (path) => {
    const refusedByValidation = managedPathProblem(path) !== undefined
    let refusedByApply = false
    try { hostPath('/srv/root', path) } catch { refusedByApply = true }
    expect(refusedByApply).toBe(refusedByValidation)
  })
})

describe('messages a person can act on (issue 15)', () => {
  it('an unclosed quote is reported where the string opens, not at the end of the file', () => {
    const problems = problemsOf(lines(
      'name: a',
      'resources:',
      '  - { id: f, type: file, path: /a, content: "unclosed }',
      '  - { id: g, type: file, path: /b }',
      '  - { id: h, type: file, path: /c }'
    ))
    expect(problems).toEqual([{ path: '', line: 3, column: 45, message: expect.stringMatching(/Missing closing "quote: the string that opens here is never closed/) }])
  })

  it('an unclosed single quote in block style, too', () => {
    const problems = problemsOf(lines('name: a', 'resources:', '  - id: f', '    type: file', '    path: /a', "    content: 'it", '  - id: g', '    type: file'))
    expect(problems[0]).toMatchObject({ line: 6, column: 14, message: expect.stringMatching(/Missing closing 'quote/) })
  })

  it.each([
    ['{', lines('name: a', 'resources:', '  - { id: f, type: file, path: /a', '  - { id: g, type: file, path: /b }', 'x: 1'), 3, 5],
    ['[', lines('name: a', 'resources: [', '  { id: f, type: file, path: /a }', 'foo: 1'), 2, 12]
  ])('an unclosed "%s" is reported where it opens, not where the parser gave up', (bracket, text, line, column) => {
    expect(problemsOf(text)).toEqual([{ path: '', line, column, message: expect.stringContaining(`the "${bracket}" that opens here is never closed`) }])
  })

  it.each([
    ['true', 'true'],
    ['42', '42'],
    ['{ a: b }', '{"a":"b"}'],
    ['[1, 2]', '[1,2]']
  ])('command: %s says a string or a list of strings is expected', (value, shown) => {
    const problems = problemsOf(lines('name: a', 'resources:', `  - { id: e, type: exec, command: ${value} }`))
    expect(problems).toEqual([expect.objectContaining({
      path: 'resources[0].command',
      line: 3,
      message: `expected a command: a string (run by /bin/sh -c) or a list of strings (an argv), got ${shown}`
    })])
  })
})

describe('signed is what gets applied (issue 15)', () => {
  const dir = useTempDir()

  it.each([
    ['YAML config data', lines('name: a', 'resources:', '  - id: c', '    type: config', '    path: /x.json', '    format: json', '    data:', '      ok: 2', '      __proto__: { polluted: 1 }'), 'resources[0].data.__proto__', 9],
    ['JSON config data, nested', '{"name":"a","resources":[{"id":"c","type":"config","path":"/x.json","format":"json","data":{"a":{"__proto__":{"x":1}}}}]}', 'resources[0].data.a.__proto__', 1],
    ['vars', lines('name: a', 'vars:', '  __proto__: 1', 'resources: []'), 'vars.__proto__', 3]
  ])('refuses a __proto__ key in %s at validation, with field and line (it was silently dropped)', (_, text, path, line) => {
    expect(problemsOf(text)).toEqual([expect.objectContaining({ path, line, message: expect.stringMatching(/a key named "__proto__" cannot be carried faithfully/) })])
  })

  it('refuses a __proto__ key in a decoded envelope policy too', () => {
    const data = JSON.parse('{"name":"a","resources":[{"id":"c","type":"config","path":"/x.json","format":"yaml","data":{"__proto__":{"x":1}}}]}') as unknown
    expect(() => validatePolicyObject(data)).toThrow(/resources\[0\]\.data\.__proto__: a key named "__proto__"/)
  })

  it('refuses a policy file that is not UTF-8, saying where, instead of signing U+FFFD', async () => {
    const file = join(dir(), 'p.yaml')
    await writeFile(file, Buffer.concat([Buffer.from('name: a\nresources:\n  - { id: f, type: file, path: /x, content: "caf'), Buffer.from([0xe9]), Buffer.from('" }\n')]))
    const err = await loadPolicyFile(file).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(PolicyEncodingError)
    expect((err as PolicyEncodingError).problems).toEqual([{ path: '', line: 3, column: 49, message: expect.stringMatching(/^not UTF-8: byte 67 \(0xe9\) starts an invalid sequence/) }])
  })

  it('still reads UTF-8 with a byte order mark and multi-byte characters as before', async () => {
    const file = join(dir(), 'p.yaml')
    await writeFile(file, '\ufeffname: a\nresources:\n  - { id: f, type: file, path: /x, content: "café ✓ 𝄞" }\n')
    const p = await loadPolicyFile(file)
    expect(p.kind === 'policy' && p.resources[0]?.type === 'file' ? p.resources[0].content : undefined).toBe('café ✓ 𝄞')
  })
})
