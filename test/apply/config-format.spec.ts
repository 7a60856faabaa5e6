import { describe, expect, it } from 'vitest'
import { CONFIG_FORMATS, type ConfigFormat } from '../../src/policy/index.js'
import { configCodec, sameConfig, stringifyConfig } from '../../src/apply/config-format.js'

const data = { name: 'web1', port: 8080, debug: false, server: { host: '0.0.0.0', workers: 4 } }
const flat = { NAME: 'web1', PORT: 8080, DEBUG: false, GREETING: 'hello world' }

/** Every format must appear here: a new one fails to compile until it has its cases. */
const cases: Record<ConfigFormat, { data: Record<string, unknown>, text: string, reformatted: string, different: string }> = {
  json: {
    data,
    text: '{\n  "name": "web1",\n  "port": 8080,\n  "debug": false,\n  "server": {\n    "host": "0.0.0.0",\n    "workers": 4\n  }\n}\n',
    reformatted: '{"server":{"workers":4,"host":"0.0.0.0"},"debug":false,"port":8080,"name":"web1"}',
    different: '{"name":"web1","port":8081,"debug":false,"server":{"host":"0.0.0.0","workers":4}}'
  },
  yaml: {
    data,
    text: 'name: web1\nport: 8080\ndebug: false\nserver:\n  host: 0.0.0.0\n  workers: 4\n',
    reformatted: '# managed by hand once\nserver: { workers: 4, host: "0.0.0.0" }\nname: "web1"\ndebug: false\nport: 8080\n',
    different: 'name: web1\nport: 8080\ndebug: true\nserver:\n  host: 0.0.0.0\n  workers: 4\n'
  },
  toml: {
    data,
    text: 'name = "web1"\nport = 8080\ndebug = false\n\n[server]\nhost = "0.0.0.0"\nworkers = 4\n',
    reformatted: 'debug = false # off\nname = \'web1\'\nport = 8_080\nserver = { workers = 4, host = "0.0.0.0" }\n',
    different: 'name = "web2"\nport = 8080\ndebug = false\n\n[server]\nhost = "0.0.0.0"\nworkers = 4\n'
  },
  ini: {
    data,
    text: 'name=web1\nport=8080\ndebug=false\n\n[server]\nhost=0.0.0.0\nworkers=4\n',
    reformatted: '; comment\nport = 8080\nname = web1\ndebug = false\n[server]\nworkers = 4\nhost = 0.0.0.0\n',
    different: 'name=web1\nport=8080\ndebug=false\n\n[server]\nhost=127.0.0.1\nworkers=4\n'
  },
  env: {
    data: flat,
    text: 'NAME=web1\nPORT=8080\nDEBUG=false\nGREETING="hello world"\n',
    reformatted: '# env\nexport GREETING=\'hello world\'\nNAME="web1"\n\nDEBUG=false # off\nPORT=8080\n',
    different: 'NAME=web1\nPORT=8080\nDEBUG=false\nGREETING=hello\n'
  }
}

describe('config formats', () => {
  it('covers every format', () => {
    expect(Object.keys(cases).sort()).toEqual([...CONFIG_FORMATS].sort())
  })

  describe.each(Object.entries(cases) as Array<[ConfigFormat, typeof cases.json]>)('%s', (format, c) => {
    it('writes the expected text', async () => {
      expect(stringifyConfig(await configCodec(format), format, c.data)).toBe(c.text)
    })
    it('treats a reformatted file with the same data as the same', async () => {
      expect(sameConfig(await configCodec(format), c.reformatted, c.text)).toBe(true)
    })
    it('sees different data as different', async () => {
      expect(sameConfig(await configCodec(format), c.different, c.text)).toBe(false)
    })
    it('sees an unparseable file as different', async () => {
      expect(sameConfig(await configCodec(format), '{{{ [[[ "unterminated\n=\n', c.text)).toBe(false)
    })
  })

  it.each<[ConfigFormat, Record<string, unknown>, RegExp]>([
    ['env', { a: { nested: 1 } }, /a: values must be strings, numbers or booleans, got object/],
    ['env', { 'not-a-name': 1 }, /"not-a-name" is not a valid variable name/],
    ['toml', { a: { b: null } }, /a\.b: TOML has no null/]
  ])('refuses data %s cannot hold', async (format, d, message) => {
    const codec = await configCodec(format)
    expect(() => stringifyConfig(codec, format, d)).toThrow(expect.objectContaining({ name: 'ConfigFormatError', message: expect.stringMatching(message) }))
  })
})
