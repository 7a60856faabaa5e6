import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  InvalidPolicyError, MAX_POLICY_FILE_BYTES, PolicyTooLargeError, formatPath, parsePolicy
} from '../../src/policy/index.js'
import { problemsOf, messageOf, lines } from '../helpers/parse-outcome.js'

describe('parsePolicy', () => {
  it('parses a policy, filling in defaults; kind defaults to "policy"', () => {
    const p = parsePolicy(lines(
      'name: web/nginx',
      'resources:',
      '  - id: f',
      '    type: file',
      '    path: /etc/x',
      '    content: hi'
    ))
    expect(p).toEqual({
      kind: 'policy',
      name: 'web/nginx',
      resources: [{ id: 'f', type: 'file', path: '/etc/x', content: 'hi', ensure: 'present', encoding: 'utf8', template: true }]
    })
  })

  it('parses a trust policy', () => {
    const key = `ed25519:${'A'.repeat(43)}`
    const p = parsePolicy(lines('kind: trust', 'name: grapevine/trust', 'admins:', `  - { key: "${key}", scopes: ["web/"] }`))
    expect(p).toEqual({ kind: 'trust', name: 'grapevine/trust', admins: [{ key, scopes: ['web/'] }], revoked: [], enrollers: [], revokedNodes: [] })
  })

  // Each row: the policy text and the exact line a person sees (file:line:col: path: message).
  it.each([
    ['a mode written as a number', lines(
      'name: a',
      'resources:',
      '  - id: f',
      '    type: file',
      '    path: /x',
      '    mode: 644'
    ), 'p.yaml:6:11: resources[0].mode: expected an octal string like "0644", got 644'],
    ['a mode that is not octal', lines('name: a', 'resources:', '  - { id: f, type: file, path: /x, mode: "0999" }'),
      'p.yaml:3:42: resources[0].mode: expected an octal string like "0644", got "0999"'],
    ['an unknown field', lines('name: a', 'resources:', '  - id: f', '    type: directory', '    path: /x', '    colour: blue'),
      'p.yaml:6:13: resources[0].colour: unknown field'],
    ['an unknown field at the top', lines('name: a', 'resource: []', 'resources: []'), 'p.yaml:2:11: resource: unknown field'],
    ['an unknown resource type', lines('name: a', 'resources:', '  - id: f', '    type: pkg', '    path: /x'),
      'p.yaml:4:11: resources[0].type: expected type to be file, directory, symlink, config, exec, package, service, user or group, got "pkg"'],
    ['a missing resource type', lines('name: a', 'resources:', '  - id: f', '    path: /x'),
      'p.yaml:3:5: resources[0].type: expected type to be file, directory, symlink, config, exec, package, service, user or group, got nothing'],
    // The list of kinds may grow; the line must still name them and what was found.
    ['an unknown kind', lines('kind: secret', 'name: a', 'resources: []'), /^p\.yaml:1:7: kind: expected kind to be "policy",? .*"trust".*, got "secret"$/],
    ['a missing field', lines('name: a'), 'p.yaml:1:1: resources: required field is missing (expected array)'],
    ['a name that is not path-like', lines('name: Web Server', 'resources: []'),
      'p.yaml:1:7: name: expected a path-like lower-case name such as "web/nginx", got "Web Server"'],
    ['an ordinary policy under the trust policy\'s name (kind forgotten)', lines('name: grapevine/trust', 'resources: []'),
      'p.yaml:1:7: name: grapevine/trust is reserved for the trust policy (kind: trust), got "grapevine/trust"'],
    ['a retired tombstone under the trust policy\'s name', lines('kind: retired', 'name: grapevine/trust'),
      'p.yaml:2:7: name: grapevine/trust is reserved for the trust policy (kind: trust), got "grapevine/trust"'],
    ['a relative path', lines('name: a', 'resources:', '  - { id: d, type: directory, path: etc/x }'),
      'p.yaml:3:37: resources[0].path: expected an absolute path starting with "/", got "etc/x"'],
    ['a symlink without a target', lines('name: a', 'resources:', '  - { id: l, type: symlink, path: /x }'),
      'p.yaml:3:5: resources[0].target: a symlink needs a target unless ensure is absent, got nothing'],
    ['content and source together', lines('name: a', 'resources:', '  - { id: f, type: file, path: /x, content: a, source: b }'),
      'p.yaml:3:56: resources[0].source: give either content or source, not both, got "b"'],
    ['a wrong type for a field', lines('name: a', 'resources:', '  - { id: e, type: exec, command: "true", timeout: soon }'),
      'p.yaml:3:52: resources[0].timeout: expected number, got "soon"'],
    ['a bad admin key id in a trust policy', lines('kind: trust', 'name: grapevine/trust', 'admins:', '  - { key: ed25519:short, scopes: ["*"] }'),
      'p.yaml:4:12: admins[0].key: expected a public key id like "ed25519:" followed by 43 base64url characters, got "ed25519:short"'],
    ['an admin key listed twice in a trust policy', lines(
      'kind: trust',
      'name: grapevine/trust',
      'admins:',
      `  - { key: "ed25519:${'A'.repeat(43)}", scopes: ["web/"] }`,
      `  - { key: "ed25519:${'A'.repeat(43)}", scopes: ["app/"] }`
    ), `p.yaml:5:12: admins[1].key: already listed at admins[0]; give each key one entry with all its scopes, got "ed25519:${'A'.repeat(43)}"`],
    ['duplicate ids', lines('name: a', 'resources:', '  - { id: d, type: directory, path: /x }', '  - { id: d, type: directory, path: /y }'),
      'p.yaml:4:11: resources[1].id: duplicate id "d", first used by resources[0]'],
    ['an unknown requires reference', lines('name: a', 'resources:', '  - id: d', '    type: directory', '    path: /x', '    requires: [missing]'),
      'p.yaml:6:16: resources[0].requires[0]: no resource has id "missing"'],
    ['an unknown notify reference', lines('name: a', 'resources:', '  - { id: d, type: directory, path: /x, notify: [reload] }'),
      'p.yaml:3:50: resources[0].notify[0]: no resource has id "reload"'],
    ['a resource requiring itself', lines('name: a', 'resources:', '  - { id: d, type: directory, path: /x, requires: [d] }'),
      'p.yaml:3:52: resources[0].requires[0]: a resource cannot refer to itself'],
    ['a dependency cycle', lines(
      'name: a',
      'resources:',
      '  - { id: a, type: directory, path: /a, requires: [c] }',
      '  - { id: b, type: directory, path: /b, requires: [a] }',
      '  - { id: c, type: directory, path: /c, requires: [b] }'
    ), 'p.yaml:3:5: resources[0]: dependency cycle: a -> c -> b -> a (each waits for the next)'],
    ['a cycle through notify', lines(
      'name: a',
      'resources:',
      '  - { id: conf, type: file, path: /c, content: x, notify: [reload] }',
      '  - { id: reload, type: exec, command: "true", refreshonly: true, notify: [conf] }'
    ), 'p.yaml:3:5: resources[0]: dependency cycle: conf -> reload -> conf (each waits for the next)'],
    ['two resources managing one path', lines('name: a', 'resources:', '  - { id: a, type: directory, path: /srv }', '  - { id: b, type: symlink, path: /srv, target: /x }'),
      'p.yaml:4:35: resources[1].path: "/srv" is already managed by resources[0]'],
    ['a template naming an unknown var', lines('name: a', 'vars: { port: 80 }', 'resources:', '  - { id: f, type: file, path: /x, content: "{{ vars.prot }}" }'),
      'p.yaml:4:45: resources[0].content: {{ vars.prot }} names nothing: the policy\'s vars have no "prot"'],
    ['a template that is not a reference', lines('name: a', 'resources:', '  - { id: f, type: file, path: /x, content: "{{ node.name | upper }}" }'),
      'p.yaml:3:45: resources[0].content: "{{ node.name | upper }}" is not a template reference; write {{ node.name }}, {{ node.tags.KEY }}, {{ vars.KEY }}, {{ facts.PATH }} or {{ secrets.NAME }}, or \\{{ for a literal'],
    ['an unclosed template', lines('name: a', 'resources:', '  - { id: f, type: file, path: /x, content: "port {{ vars.port }" }'),
      'p.yaml:3:45: resources[0].content: "{{" is not closed by "}}"; write \\{{ for a literal "{{"'],
    ['an unknown node fact', lines('name: a', 'resources:', '  - { id: f, type: file, path: /x, content: "{{ node.address }}" }'),
      'p.yaml:3:45: resources[0].content: {{ node.address }} is not a node fact; node facts are id, name and tags.<key>'],
    ['a template inside config data', lines(
      'name: a',
      'resources:',
      '  - id: c',
      '    type: config',
      '    format: json',
      '    path: /c.json',
      '    data:',
      '      server: { port: "{{ vars.port }}" }'
    ), 'p.yaml:8:23: resources[0].data.server.port: {{ vars.port }} names nothing: the policy\'s vars have no "port"'],
    ['an alias inside its own anchor', lines('name: a', 'vars: &v { self: *v }', 'resources: []'),
      'p.yaml:2:18: vars.self: an alias refers to a node that contains it; a policy cannot be recursive'],
    ['a lone surrogate', lines('name: a', 'description: "broken \\ud800 text"', 'resources: []'),
      'p.yaml:2:14: description: the string contains a lone UTF-16 surrogate, which has no UTF-8 encoding'],
    ['YAML with bad indentation', lines('name: a', 'resources:', '  - id: a', '   type: file'), 'p.yaml:4:1: Sequence item without - indicator'],
    ['a duplicated key', lines('name: a', 'name: b', 'resources: []'), 'p.yaml:2:1: Map keys must be unique'],
    ['an unterminated JSON object', '{"name": "a",\n "resources": [\n', /^p\.yaml:2:15: .*the "\[" that opens here is never closed/],
    ['a document that is not a mapping', '- a\n- b\n', 'p.yaml:1: expected a mapping with name and resources, got ["a","b"]'],
    ['an empty file', '', 'p.yaml:1: expected a mapping with name and resources, got null']
  ] as Array<[string, string, string | RegExp]>)('reports %s with file, line, path, expectation and what it found', (_, text, expected) => {
    expect(messageOf(text).split('\n')).toContainEqual(typeof expected === 'string' ? expected : expect.stringMatching(expected))
  })

  it('returns structured problems: path, 1-based line and column, message', () => {
    const text = lines('name: a', 'resources:', '  - id: f', '    type: file', '    path: /x', '    mode: 644')
    expect(problemsOf(text)).toEqual([{ path: 'resources[0].mode', line: 6, column: 11, message: 'expected an octal string like "0644", got 644' }])
  })

  it('reports every problem at once, not just the first', () => {
    const text = lines(
      'name: a',
      'resources:',
      '  - { id: a, type: file, path: x, mode: 644 }',
      '  - { id: b, type: cron }',
      '  - { id: c, type: directory, path: /c, extra: 1 }'
    )
    expect(problemsOf(text).map((p) => p.path)).toEqual(['resources[0].path', 'resources[0].mode', 'resources[1].type', 'resources[2].extra'])
  })

  it('names the file it was given in every line', () => {
    const message = messageOf(lines('name: a', 'resources: [1, 2]'), '/etc/grapevine/web.yaml')
    const out = message.split('\n')
    expect(out).toHaveLength(2)
    for (const l of out) expect(l).toMatch(/^\/etc\/grapevine\/web\.yaml:2:\d+: resources\[\d\]: /)
  })

  describe('JSON policy files', () => {
    it('parse like YAML', () => {
      const p = parsePolicy(JSON.stringify({ name: 'app/x', resources: [{ id: 'd', type: 'directory', path: '/srv' }] }), 'p.json')
      expect(p).toMatchObject({ kind: 'policy', name: 'app/x', resources: [{ id: 'd', type: 'directory', path: '/srv', ensure: 'present' }] })
    })

    it('report problems at the right line and column', () => {
      const text = JSON.stringify({ name: 'a', resources: [{ id: 'f', type: 'file', path: '/x', mode: 644 }] }, null, 2)
      const modeLine = text.split('\n').findIndex((l) => l.includes('"mode"')) + 1
      expect(problemsOf(text, 'p.json')).toEqual([{
        path: 'resources[0].mode', line: modeLine, column: 15, message: 'expected an octal string like "0644", got 644'
      }])
    })
  })

  describe('size limit', () => {
    it('refuses text over the limit before parsing it', () => {
      const err = (() => { try { parsePolicy('#'.repeat(MAX_POLICY_FILE_BYTES + 1), 'big.yaml') } catch (e) { return e } })()
      expect(err).toBeInstanceOf(PolicyTooLargeError)
      expect(err).toMatchObject({ file: 'big.yaml', size: MAX_POLICY_FILE_BYTES + 1, limit: MAX_POLICY_FILE_BYTES })
      expect((err as Error).message).toBe(`big.yaml: ${MAX_POLICY_FILE_BYTES + 1} bytes is over the ${MAX_POLICY_FILE_BYTES}-byte limit for a policy`)
    })

    it('counts UTF-8 bytes, not characters', () => {
      const text = `# ${'é'.repeat(MAX_POLICY_FILE_BYTES / 2)}\n`
      expect(text.length).toBeLessThan(MAX_POLICY_FILE_BYTES)
      expect(() => parsePolicy(text)).toThrow(PolicyTooLargeError)
    })

    it('accepts a policy right at the limit', () => {
      const head = lines('name: a', 'resources: []')
      const text = head + '#'.repeat(MAX_POLICY_FILE_BYTES - head.length)
      expect(Buffer.byteLength(text)).toBe(MAX_POLICY_FILE_BYTES)
      expect(parsePolicy(text).name).toBe('a')
    })
  })

  it('refuses an alias bomb instead of expanding it', () => {
    const bomb = lines(
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
      'name: a',
      'resources: []'
    )
    expect(() => parsePolicy(bomb)).toThrow(InvalidPolicyError)
  })
})

describe('parsePolicy fuzzing', () => {
  /** The only outcomes allowed: a policy, or one of the two named errors with usable problems. */
  const wellBehaved = (text: string): void => {
    let policy
    try {
      policy = parsePolicy(text, 'fuzz.yaml')
    } catch (err) {
      if (err instanceof PolicyTooLargeError) return
      expect(err).toBeInstanceOf(InvalidPolicyError)
      const problems = (err as InvalidPolicyError).problems
      expect(problems.length).toBeGreaterThan(0)
      for (const p of problems) {
        expect(typeof p.message).toBe('string')
        expect(p.message.length).toBeGreaterThan(0)
        if (p.line !== undefined) expect(p.line).toBeGreaterThanOrEqual(1)
      }
      return
    }
    expect(['policy', 'trust']).toContain(policy.kind)
  }

  it('never throws anything else on arbitrary text (property)', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), wellBehaved), { numRuns: 1000 })
  })

  it('never throws anything else on YAML-shaped token soup (property)', () => {
    const token = fc.constantFrom(
      'name: a\n', 'name: ', 'resources:\n', 'resources: ', 'kind: trust\n', 'kind: policy\n', 'vars:', 'data:', 'admins:',
      '- ', '  ', '\n', ': ', ', ', '[', ']', '{', '}', '&a ', '*a', '&b ', '*b', '<<: *a\n', '? ', '|\n', '>-\n', '# c\n',
      '---\n', '...\n', '%YAML 1.2\n', '!!binary aGk=', '!!set', '!!omap', '!!str', '!!int', '!custom', '"', "'", '\\', '\t',
      'id: x', 'type: file', 'type: config', 'type: exec', 'path: /x', 'mode: 644', 'content: "{{ vars.a }}"', '{{', '}}',
      'requires: [x]', 'notify: [x]', 'format: json', 'command: ls', '0x1F', '1e999', '-.inf', '.nan', 'null', '~', 'true',
      '"\\ud800"', '__proto__: ', 'constructor: ', '\u00e9', '\u{1F600}', '\ufeff',
      // Anchors used inside themselves, which YAML allows and JSON cannot hold.
      '&a [*a]', '&b { k: *b }', '&c [x, [*c]]'
    )
    fc.assert(fc.property(fc.array(token, { maxLength: 40 }).map((t) => t.join('')), wellBehaved), { numRuns: 2000 })
  })

  it('never throws anything else on JSON values of policy shape (property)', () => {
    const field = fc.constantFrom('id', 'type', 'path', 'mode', 'content', 'source', 'requires', 'notify', 'data', 'format', 'command', 'ensure', 'target', 'timeout', 'x')
    const value = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('file', 'config', 'exec', 'symlink', 'directory', '/x', '0644', ['a'], '{{ vars.a }}'))
    const resource = fc.dictionary(field, value, { maxKeys: 6 })
    const doc = fc.record({
      kind: fc.constantFrom('policy', 'trust', 7),
      name: fc.oneof(fc.constant('a'), fc.string()),
      vars: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 1 })),
      resources: fc.oneof(fc.array(resource, { maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })),
      admins: fc.array(fc.dictionary(fc.constantFrom('key', 'scopes', 'name'), value))
    }, { requiredKeys: [] })
    fc.assert(fc.property(doc, fc.boolean(), (d, pretty) => wellBehaved(JSON.stringify(d, null, pretty ? 2 : undefined))), { numRuns: 1000 })
  })
})

describe('formatPath', () => {
  it.each([
    [[], ''],
    [['name'], 'name'],
    [['resources', 2, 'mode'], 'resources[2].mode'],
    [['resources', 0, 'requires', 1], 'resources[0].requires[1]'],
    [[3], '[3]']
  ] as const)('%j → %j', (path, expected) => {
    expect(formatPath(path)).toBe(expected)
  })
})
