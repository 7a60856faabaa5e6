import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { InvalidTargetError, isLoopbackHost, knownHostsName, parseSshTarget, targetText, type SshTarget } from '../../src/enroll/index.js'

describe('parseSshTarget', () => {
  const ok: Array<[string, SshTarget]> = [
    ['ssh://web-1', { host: 'web-1' }],
    ['ssh://root@web-1.example.com', { user: 'root', host: 'web-1.example.com' }],
    ['ssh://admin@10.0.0.5:2222', { user: 'admin', host: '10.0.0.5', port: 2222 }],
    ['ssh://deploy@[::1]:22/', { user: 'deploy', host: '::1', port: 22 }],
    ['ssh://[2001:db8::7]', { host: '2001:db8::7' }]
  ]
  it.each(ok)('%s', (text, target) => {
    expect(parseSshTarget(text)).toEqual(target)
  })

  const bad: Array<[string, RegExp]> = [
    ['root@web-1', /expected ssh:\/\/\[user@\]host\[:port\], like ssh:\/\/root@web-1\.example\.com/],
    ['http://web-1', /expected ssh:\/\//],
    ['ssh://', /not a valid ssh:\/\/ address|no host/],
    ['ssh://root:secret@web-1', /no password, path or query/],
    ['ssh://web-1/srv', /no password, path or query/],
    ['ssh://web-1:99999', /not a valid ssh:\/\/ address/],
    ['ssh://-oProxyCommand=x@web-1', /is not a user name ssh would take/],
    ['ssh://-oProxyCommand=x', /"-oProxyCommand=x" is not a host name or address/],
    ['ssh://root@%2Dx', /is not a host name or address/]
  ]
  it.each(bad)('refuses %s', (text, message) => {
    expect(() => parseSshTarget(text)).toThrow(InvalidTargetError)
    expect(() => parseSshTarget(text)).toThrow(message)
  })

  it('never returns a host or user ssh could read as an option', () => {
    const part = fc.oneof(fc.string(), fc.constantFrom('-', '-o', 'root@', '@-', '%2D', '[', ']:', ':22'))
    fc.assert(fc.property(fc.array(part, { maxLength: 4 }), (parts) => {
      let t: SshTarget
      try { t = parseSshTarget(`ssh://${parts.join('')}`) } catch (err) { return err instanceof InvalidTargetError }
      return !t.host.startsWith('-') && !(t.user ?? '').startsWith('-') && t.host !== ''
    }), { numRuns: 500 })
  })
})

describe('how a target is named', () => {
  it('known_hosts brackets a host off port 22; messages show user@host:port', () => {
    expect(knownHostsName({ host: 'web-1' })).toBe('web-1')
    expect(knownHostsName({ host: 'web-1', port: 22 })).toBe('web-1')
    expect(knownHostsName({ host: '127.0.0.1', port: 2222 })).toBe('[127.0.0.1]:2222')
    expect(targetText({ user: 'root', host: '::1', port: 2222 })).toBe('root@[::1]:2222')
    expect(targetText({ host: 'web-1' })).toBe('web-1')
  })

  it('loopback hosts', () => {
    expect(['localhost', '127.0.0.1', '127.1.2.3', '::1'].every(isLoopbackHost)).toBe(true)
    expect(['10.0.0.1', 'web-1', '::2'].some(isLoopbackHost)).toBe(false)
  })
})
