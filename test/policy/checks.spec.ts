import { describe, expect, it } from 'vitest'
import { parsePolicy, type ConfigPolicy } from '../../src/policy/index.js'
import { lines, messageOf } from '../helpers/parse-outcome.js'

const withChecks = (...ls: string[]): string => lines('name: web/site', 'resources: []', 'checks:', ...ls)

describe('policy checks: schema', () => {
  it('parses each kind of check, filling in timeout, retries and interval', () => {
    const p = parsePolicy(withChecks(
      '  - { id: conf, type: exec, command: ["nginx", "-t"], run_as: www-data }',
      '  - { id: page, type: http, url: "http://127.0.0.1/health", status: 204, retries: 3, interval: 0.5 }',
      '  - { id: port, type: tcp, host: 127.0.0.1, port: 80, timeout: 1 }'
    )) as ConfigPolicy
    expect(p.checks).toEqual([
      { id: 'conf', type: 'exec', command: ['nginx', '-t'], run_as: 'www-data', timeout: 10, retries: 0, interval: 2 },
      { id: 'page', type: 'http', url: 'http://127.0.0.1/health', status: 204, timeout: 10, retries: 3, interval: 0.5 },
      { id: 'port', type: 'tcp', host: '127.0.0.1', port: 80, timeout: 1, retries: 0, interval: 2 }
    ])
  })

  it('a policy without checks has none', () => {
    expect((parsePolicy(lines('name: a', 'resources: []')) as ConfigPolicy).checks).toBeUndefined()
  })

  // Each row: the checks and the exact line a person sees (file:line:col: path: message).
  it.each([
    ['an unknown type', withChecks('  - id: c', '    type: ftp'), 'p.yaml:5:11: checks[0].type: expected type to be exec, http or tcp, got "ftp"'],
    ['an http check with another scheme', withChecks('  - id: c', '    type: http', '    url: ftp://x/'), 'p.yaml:6:10: checks[0].url: expected an http:// or https:// URL, got "ftp://x/"'],
    ['a port out of range', withChecks('  - id: c', '    type: tcp', '    host: localhost', '    port: 70000'), 'p.yaml:7:11: checks[0].port: Too big: expected number to be <=65535, got 70000'],
    ['a host with a space', withChecks('  - { id: c, type: tcp, host: "a b", port: 1 }'), 'p.yaml:4:31: checks[0].host: expected a host name or IP address, got "a b"'],
    ['a negative timeout', withChecks('  - { id: c, type: exec, command: "true", timeout: -1 }'), 'p.yaml:4:52: checks[0].timeout: Too small: expected number to be >0, got -1'],
    ['fractional retries', withChecks('  - { id: c, type: exec, command: "true", retries: 1.5 }'), 'p.yaml:4:52: checks[0].retries: expected int, got 1.5'],
    ['an exec check without a command', withChecks('  - { id: c, type: exec }'), 'p.yaml:4:5: checks[0].command: expected a command: a string (run by /bin/sh -c) or a list of strings (an argv), got nothing'],
    ['an unknown field', withChecks('  - { id: c, type: tcp, host: h, port: 1, path: /x }'), 'p.yaml:4:49: checks[0].path: unknown field'],
    ['a check id used twice', withChecks('  - { id: c, type: tcp, host: h, port: 1 }', '  - { id: c, type: tcp, host: h, port: 2 }'), 'p.yaml:5:11: checks[1].id: duplicate check id "c" (also checks[0])'],
    ['checks that could run for over 15 minutes', withChecks('  - { id: a, type: tcp, host: h, port: 1, timeout: 300, retries: 2, interval: 1 }'), 'p.yaml:4:3: checks: the checks could take 902 s when every attempt times out ((retries + 1) × timeout + retries × interval, summed); at most 900 s, since the agent applies one policy at a time'],
    ['a timeout over 5 minutes', withChecks('  - { id: a, type: tcp, host: h, port: 1, timeout: 301 }'), 'p.yaml:4:52: checks[0].timeout: Too big: expected number to be <=300, got 301'],
    ['a template in an exec check\'s env that is no node fact', withChecks('  - { id: a, type: exec, command: "true", env: { X: "{{ node.secret }}" } }'), 'checks[0].env.X: {{ node.secret }} is not a node fact'],
    ['a bad check id', withChecks('  - { id: "no spaces", type: tcp, host: h, port: 1 }'), 'p.yaml:4:11: checks[0].id: expected letters, digits, "_", "." or "-", starting with a letter or digit, got "no spaces"']
  ])('refuses %s', (_, text, expected) => {
    expect(messageOf(text)).toContain(expected)
  })
})
