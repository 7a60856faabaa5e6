import { describe, expect, it } from 'vitest'
import { MAX_TEMPLATE_OUTPUT, TemplateError, parsePolicy, renderData, renderString, type TemplateContext } from '../../src/policy/index.js'

const ctx: TemplateContext = {
  node: { id: '12D3KooWabc', name: 'web-1', tags: { role: 'web', dc: 'ams' } },
  vars: { port: 8080, debug: false, upstream: '127.0.0.1:3000', db: { host: 'db-1', ports: [5432, 5433] }, nothing: null, dollars: '$& $1 $$' }
}

describe('renderString', () => {
  it.each([
    ['text without templates', 'plain { text } here', 'plain { text } here'],
    ['the node name', 'server_name {{ node.name }};', 'server_name web-1;'],
    ['the node id', '{{ node.id }}', '12D3KooWabc'],
    ['a node tag', 'tier={{ node.tags.role }}', 'tier=web'],
    ['a number var', 'listen {{ vars.port }};', 'listen 8080;'],
    ['a boolean var', 'debug={{ vars.debug }}', 'debug=false'],
    ['a nested var', 'host={{ vars.db.host }}', 'host=db-1'],
    ['no spaces inside the braces', '{{node.name}}', 'web-1'],
    ['extra spaces and tabs inside the braces', '{{   node.name\t}}', 'web-1'],
    ['several references', '{{ node.name }}.{{ node.tags.dc }}:{{ vars.port }}', 'web-1.ams:8080'],
    ['an escaped {{', 'literal \\{{ node.name }} here', 'literal {{ node.name }} here'],
    ['an escape next to a reference', '\\{{{{ node.name }}}}', '{{web-1}}'],
    ['a lone }}', 'a }} b', 'a }} b'],
    ['values containing replacement patterns, written as they are', '{{ vars.dollars }}', '$& $1 $$'],
    ['a value that itself looks like a template, not expanded again', '{{ vars.upstream }}', '127.0.0.1:3000']
  ])('renders %s', (_, text, expected) => {
    expect(renderString(text, ctx, 'f')).toBe(expected)
  })

  it('does not expand a template found inside a value', () => {
    const c = { ...ctx, vars: { a: '{{ node.name }}' } }
    expect(renderString('{{ vars.a }}', c, 'f')).toBe('{{ node.name }}')
  })

  it.each([
    ['a missing tag', '{{ node.tags.rack }}', 'resources[1].content: {{ node.tags.rack }} names nothing: this node has no tag "rack"'],
    ['a missing var', 'x {{ vars.nope }}', 'resources[1].content: {{ vars.nope }} names nothing: the policy\'s vars have no "nope"'],
    ['an unknown node fact', '{{ node.address }}', 'resources[1].content: {{ node.address }} names nothing: node facts are id, name and tags.<key>'],
    ['an object where text is needed', '{{ vars.db }}', 'resources[1].content: {{ vars.db }} is object, expected a string, number or boolean'],
    ['null where text is needed', '{{ vars.nothing }}', 'resources[1].content: {{ vars.nothing }} is null, expected a string, number or boolean'],
    ['an inherited property, which is not a var', '{{ vars.constructor }}', 'resources[1].content: {{ vars.constructor }} names nothing: the policy\'s vars have no "constructor"'],
    ['an expression', '{{ vars.port + 1 }}', 'resources[1].content: "{{ vars.port + 1 }}" is not a template reference; write {{ node.name }}, {{ node.tags.KEY }}, {{ vars.KEY }}, {{ facts.PATH }} or {{ secrets.NAME }}, or \\{{ for a literal'],
    ['an empty reference', 'a {{}} b', 'resources[1].content: "{{}}" is not a template reference; write {{ node.name }}, {{ node.tags.KEY }}, {{ vars.KEY }}, {{ facts.PATH }} or {{ secrets.NAME }}, or \\{{ for a literal'],
    ['an unclosed reference', 'listen {{ vars.port };', 'resources[1].content: "{{" is not closed by "}}"; write \\{{ for a literal "{{"'],
    ['a reference that never ends', 'listen {{ vars.port', 'resources[1].content: "{{" is not closed by "}}"; write \\{{ for a literal "{{"']
  ])('refuses %s with a message naming the field', (_, text, message) => {
    const err = (() => { try { renderString(text, ctx, 'resources[1].content') } catch (e) { return e } })()
    expect(err).toBeInstanceOf(TemplateError)
    expect((err as Error).message).toBe(message)
  })

  it('bounds the output, so a policy cannot blow up memory', () => {
    const big = 'x'.repeat(MAX_TEMPLATE_OUTPUT / 4 + 1)
    const c = { ...ctx, vars: { big } }
    expect(renderString('{{ vars.big }}'.repeat(3), c, 'f')).toHaveLength(big.length * 3)
    expect(() => renderString('{{ vars.big }}'.repeat(4), c, 'f')).toThrow(/templates expand to more than/)
  })
})

describe('renderData', () => {
  it.each([
    ['a number', '{{ vars.port }}', 8080],
    ['a boolean', '{{ vars.debug }}', false],
    ['a string', '{{ node.name }}', 'web-1'],
    ['an object', '{{ vars.db }}', { host: 'db-1', ports: [5432, 5433] }],
    ['an array', '{{ vars.db.ports }}', [5432, 5433]],
    ['a number, without spaces', '{{vars.port}}', 8080]
  ])('keeps the type of a lone reference to %s', (_, text, expected) => {
    expect(renderData(text, ctx, 'data')).toEqual(expected)
  })

  it('renders a reference with text around it as a string', () => {
    expect(renderData('port {{ vars.port }}', ctx, 'data')).toBe('port 8080')
    expect(renderData(' {{ vars.port }}', ctx, 'data')).toBe(' 8080')
    expect(renderData('{{ vars.port }}{{ vars.port }}', ctx, 'data')).toBe('80808080')
  })

  it('renders strings at any depth and leaves other values alone', () => {
    const data = {
      server: { port: '{{ vars.port }}', host: '0.0.0.0', tls: false, weight: 1.5, extra: null },
      upstreams: ['{{ vars.upstream }}', 'static:{{ node.tags.dc }}'],
      '{{ vars.port }}': 'keys are not templated'
    }
    expect(renderData(data, ctx, 'data')).toEqual({
      server: { port: 8080, host: '0.0.0.0', tls: false, weight: 1.5, extra: null },
      upstreams: ['127.0.0.1:3000', 'static:ams'],
      '{{ vars.port }}': 'keys are not templated'
    })
  })

  it('names the exact place of a missing reference', () => {
    expect(() => renderData({ a: [{ b: '{{ node.tags.rack }}' }] }, ctx, 'resources[0].data'))
      .toThrow(new TemplateError('resources[0].data.a[0].b', '{{ node.tags.rack }} names nothing: this node has no tag "rack"'))
    expect(() => renderData('{{ vars.nothing }}', ctx, 'd')).toThrow(/is null, expected a string, number or boolean/)
  })
})

describe('templates at validate time', () => {
  const policy = (content: string, extra = ''): string =>
    `name: a\nvars: { port: 80 }\nresources:\n  - { id: f, type: file, path: /x, content: ${JSON.stringify(content)}${extra} }\n`

  it('accepts any node tag (only the node knows its tags) and declared vars', () => {
    expect(() => parsePolicy(policy('{{ node.tags.anything }} {{ node.name }} {{ node.id }} {{ vars.port }} \\{{ literal'))).not.toThrow()
  })

  it('skips content that is not a template', () => {
    expect(() => parsePolicy(policy('{{ not a template', ', template: false'))).not.toThrow()
    expect(() => parsePolicy(policy('{{ vars.nope }}', ', encoding: base64'))).not.toThrow()
  })

  it('checks content that is a template', () => {
    expect(() => parsePolicy(policy('{{ vars.nope }}'))).toThrow(/resources\[0\]\.content: \{\{ vars\.nope \}\} names nothing/)
  })
})
