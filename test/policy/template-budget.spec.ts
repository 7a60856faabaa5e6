import { readFile, readdir } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { MAX_TEMPLATE_OUTPUT, TemplateOutputTooLargeError, renderData, renderString, validatePolicyObject, type ConfigPolicy, type TemplateContext } from '../../src/policy/index.js'
import { useSandbox } from '../apply/helpers.js'

const MiB = 1024 * 1024
const node = { id: 'n1', name: 'web-1', tags: {} }

describe('the template output bound covers a whole render of a policy (issue 15)', () => {
  it('counts whole-value references: 48 of a 1 MiB var stop at the 4 MiB bound, with a named error', () => {
    const ctx: TemplateContext = { node, vars: { big: 'x'.repeat(MiB) } }
    let rendered = 0
    const err = (() => {
      try {
        for (let i = 0; i < 48; i++) { renderData({ v: '{{ vars.big }}' }, ctx, `resources[${i}].data`); rendered++ }
      } catch (e) { return e }
    })()
    expect(err).toBeInstanceOf(TemplateOutputTooLargeError)
    expect((err as Error).message).toMatch(/^resources\[4\]\.data\.v: templates expand to more than 4194304 bytes over the whole policy/)
    expect(rendered).toBe(MAX_TEMPLATE_OUTPUT / MiB)
  })

  it('counts an object var by its size, each time it is referenced', () => {
    const ctx: TemplateContext = { node, vars: { table: Object.fromEntries(Array.from({ length: 1024 }, (_, i) => [`k${i}`, 'y'.repeat(1024)])) } }
    expect(() => { for (let i = 0; i < 5; i++) renderData({ t: '{{ vars.table }}' }, ctx, `resources[${i}].data`) }).toThrow(TemplateOutputTooLargeError)
  })

  it('counts strings across resources, not per string', () => {
    const ctx: TemplateContext = { node, vars: { big: 'z'.repeat(MiB) } }
    for (let i = 0; i < 4; i++) renderString('{{ vars.big }}', ctx, `resources[${i}].content`)
    expect(() => renderString('a {{ vars.big }}', ctx, 'resources[4].content')).toThrow(TemplateOutputTooLargeError)
    // A new render (a new context) starts again.
    expect(renderString('{{ vars.big }}', { ...ctx }, 'resources[0].content')).toHaveLength(MiB)
  })

  describe('through apply', () => {
    const sandbox = useSandbox()

    it('48 config resources each naming a 1 MiB var fail with the named error and write at most the bound', async () => {
      const sb = sandbox()
      const resources = Array.from({ length: 48 }, (_, i) => ({ id: `c${i}`, type: 'config', path: `/c${i}.json`, format: 'json', data: { v: '{{ vars.big }}' } }))
      const policy = validatePolicyObject({ name: 'test/flood', vars: { big: 'x'.repeat(MiB - 16) }, resources }) as ConfigPolicy
      const report = await sb.apply(policy)
      const failed = report.resources.filter((r) => r.status === 'failed')
      expect(failed.length).toBeGreaterThan(40)
      expect(failed[0]?.error).toMatchObject({ name: 'TemplateOutputTooLargeError' })
      let written = 0
      for (const f of await readdir(sb.root)) if (f.endsWith('.json')) written += (await readFile(sb.at(`/${f}`))).byteLength
      expect(written).toBeLessThanOrEqual(MAX_TEMPLATE_OUTPUT + 48 * 64)
    })
  })
})
