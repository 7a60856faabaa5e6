import { describe, expect, it } from 'vitest'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { cpus, machine, totalmem } from 'node:os'
import { FactGatherer, gatherFacts, type MachineView } from '../../src/facts/index.js'
import { defaultRouteInterface, domainOf, humanBytes, osFacts, parseOsRelease, releaseParts } from '../../src/facts/builtin.js'
import { factAt } from '../../src/policy/target.js'
import { useTempDir } from '../helpers/tmp.js'

const dir = useTempDir('grapevine-facts-')

async function put (root: string, path: string, text: string): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true })
  await writeFile(join(root, path), text)
}

/** A made-up machine: its files under `root`, its os-module answers given. */
function fakeMachine (root: string, over: Partial<MachineView> = {}): Partial<MachineView> {
  return {
    sysRoot: root,
    hostname: () => 'web-1',
    kernelName: () => 'Linux',
    kernelRelease: () => '6.1.0-18-amd64',
    machine: () => 'x86_64',
    platform: () => 'linux',
    cpus: () => [{ model: 'Xeon' }, { model: 'Xeon' }, { model: 'Xeon' }, { model: 'Xeon' }],
    totalmem: () => 8 * 1024 ** 3,
    freemem: () => 3 * 1024 ** 3,
    networkInterfaces: () => ({
      lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
      eth0: [
        { address: '10.0.0.5', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:05', internal: false, cidr: '10.0.0.5/24' },
        { address: 'fe80::5', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:05', internal: false, cidr: 'fe80::5/64', scopeid: 2 },
        { address: '2001:db8::5', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:05', internal: false, cidr: '2001:db8::5/64', scopeid: 0 }
      ],
      eth1: [{ address: '192.168.9.9', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:09', internal: false, cidr: '192.168.9.9/24' }]
    }),
    ...over
  }
}

const ROUTE = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\neth1\t0009A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\neth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n'

describe('built-in facts on this machine (Debian 12)', () => {
  it('names the OS, kernel, architecture, processors, memory, addresses and init, and says how long it took', async () => {
    const cold = await gatherFacts({ factsDir: join(dir(), 'none') })
    const gatherer = new FactGatherer({ factsDir: join(dir(), 'none') })
    await gatherer.refresh()
    const warm = await gatherer.refresh()
    const f = (path: string): unknown => factAt(cold.facts, path)
    expect(f('os.family')).toBe('debian')
    expect(f('os.name')).toBe('debian')
    expect(f('os.release.major')).toBe('12')
    expect(f('os.release.full')).toBe((await readFile('/etc/debian_version', 'utf8')).trim())
    expect(f('os.distro.codename')).toBe('bookworm')
    expect(f('os.hardware')).toBe(machine())
    if (machine() === 'x86_64') expect(f('architecture')).toBe('amd64')
    expect(f('os.architecture')).toBe(f('architecture'))
    expect(f('kernel.name')).toBe('Linux')
    expect(f('processors.count')).toBe(cpus().length)
    expect(f('processors.count') as number).toBeGreaterThan(0)
    expect(f('memory.system.total_bytes')).toBe(totalmem())
    expect(f('memory.system.total')).toMatch(/^\d+\.\d\d GiB$/)
    expect(typeof f('hostname')).toBe('string')
    expect(String(f('fqdn')).startsWith(String(f('hostname')))).toBe(true)
    // This machine is a container: systemd is installed but not PID 1.
    const pid1 = (await readFile('/proc/1/comm', 'utf8')).trim()
    if (pid1 !== 'systemd') expect(f('init')).toBe('other')
    expect(cold.warnings).toEqual([`facts directory ${join(dir(), 'none')}: does not exist; no custom facts`])
    console.log(`fact gathering: first ${cold.ms.toFixed(2)} ms, again (static facts kept) ${warm.ms.toFixed(2)} ms`)
    expect(warm.facts.os).toEqual(cold.facts.os)
  })
})

describe('built-in facts on a made-up machine', () => {
  it('reads os-release, the point release, the domain from resolv.conf, the default route and PID 1', async () => {
    const root = dir()
    await put(root, 'etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    await put(root, 'etc/debian_version', '12.5\n')
    await put(root, 'etc/resolv.conf', '# generated\nsearch corp.example.com. example.com\nnameserver 10.0.0.1\n')
    await put(root, 'proc/net/route', ROUTE)
    await put(root, 'proc/1/comm', 'systemd\n')
    await mkdir(join(root, 'run/systemd/system'), { recursive: true })
    const { facts, warnings } = await gatherFacts({ factsDir: join(root, 'facts.d'), machine: fakeMachine(root) })
    expect(warnings).toEqual([`facts directory ${join(root, 'facts.d')}: does not exist; no custom facts`])
    expect(facts).toEqual({
      os: { family: 'debian', name: 'debian', release: { full: '12.5', major: '12', minor: '5' }, distro: { id: 'debian', codename: 'bookworm', description: 'Debian GNU/Linux 12 (bookworm)' }, architecture: 'amd64', hardware: 'x86_64' },
      kernel: { name: 'Linux', release: '6.1.0-18-amd64', version: '6.1.0', major: '6.1' },
      architecture: 'amd64',
      hostname: 'web-1',
      domain: 'corp.example.com',
      fqdn: 'web-1.corp.example.com',
      processors: { count: 4, models: ['Xeon'] },
      init: 'systemd',
      memory: { system: { total: '8.00 GiB', total_bytes: 8 * 1024 ** 3, available: '3.00 GiB', available_bytes: 3 * 1024 ** 3 } },
      networking: {
        primary: 'eth0',
        ip: '10.0.0.5',
        ip6: '2001:db8::5',
        mac: '02:00:00:00:00:05',
        interfaces: {
          lo: { ip: '127.0.0.1', netmask: '255.0.0.0' },
          eth0: { ip: '10.0.0.5', netmask: '255.255.255.0', ip6: '2001:db8::5', netmask6: 'ffff:ffff:ffff:ffff::', mac: '02:00:00:00:00:05' },
          eth1: { ip: '192.168.9.9', netmask: '255.255.255.0', mac: '02:00:00:00:00:09' }
        }
      }
    })
  })

  it('says `other` for init where systemd is installed but not PID 1, or PID 1 without having booted', async () => {
    const root = dir()
    await put(root, 'proc/1/comm', 'bash\n')
    await mkdir(join(root, 'run/systemd/system'), { recursive: true })
    expect((await gatherFacts({ machine: fakeMachine(root) })).facts.init).toBe('other')
    await put(root, 'proc/1/comm', 'systemd\n')
    expect((await gatherFacts({ machine: fakeMachine(root) })).facts.init).toBe('systemd')
    const bare = join(root, 'bare')
    await put(bare, 'proc/1/comm', 'systemd\n')
    expect((await gatherFacts({ machine: fakeMachine(bare) })).facts.init).toBe('other')
  })

  it('names a Red Hat machine\'s architecture as rpm does, and keeps static facts while addresses change', async () => {
    const root = dir()
    await put(root, 'etc/os-release', 'ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n')
    let ip = '10.0.0.5'
    const gatherer = new FactGatherer({
      factsDir: join(root, 'facts.d'),
      machine: fakeMachine(root, { networkInterfaces: () => ({ eth0: [{ address: ip, netmask: '255.0.0.0', family: 'IPv4', mac: '02:00:00:00:00:05', internal: false, cidr: `${ip}/8` }] }) })
    })
    const first = (await gatherer.refresh()).facts
    expect(first.os).toMatchObject({ family: 'redhat', name: 'rocky', release: { full: '9.3', major: '9', minor: '3' }, architecture: 'x86_64' })
    expect(factAt(first, 'networking.ip')).toBe('10.0.0.5')
    // No default route: the first interface that is not loopback.
    expect(factAt(first, 'networking.primary')).toBe('eth0')
    ip = '10.0.0.6'
    await put(root, 'etc/os-release', 'ID=debian\n')
    const again = (await gatherer.refresh()).facts
    expect(factAt(again, 'networking.ip')).toBe('10.0.0.6')
    expect(factAt(again, 'os.family')).toBe('redhat')
  })
})

describe('pure readers', () => {
  it.each<[string, string, Record<string, string>]>([
    ['quoted and bare values', 'ID=debian\nVERSION_ID="12"\nNAME=\'Debian\'\n', { ID: 'debian', VERSION_ID: '12', NAME: 'Debian' }],
    ['comments and junk skipped', '# c\n\nnot a line\nID=alpine\n', { ID: 'alpine' }],
    ['escapes inside quotes', 'PRETTY_NAME="A \\"quoted\\" name"\n', { PRETTY_NAME: 'A "quoted" name' }]
  ])('parseOsRelease: %s', (_, text, want) => {
    expect(parseOsRelease(text)).toEqual(want)
  })

  it.each<[string, Record<string, string> | undefined, string | undefined, Record<string, unknown>]>([
    ['Debian with its point release', { ID: 'debian', VERSION_ID: '12' }, '12.11\n', { family: 'debian', name: 'debian', release: { full: '12.11', major: '12', minor: '11' } }],
    ['Debian testing (debian_version is a codename)', { ID: 'debian' }, 'trixie/sid\n', { family: 'debian', name: 'debian' }],
    ['Ubuntu', { ID: 'ubuntu', ID_LIKE: 'debian', VERSION_ID: '22.04', VERSION_CODENAME: 'jammy' }, undefined, { family: 'debian', name: 'ubuntu', release: { full: '22.04', major: '22', minor: '04' }, distro: { id: 'ubuntu', codename: 'jammy' } }],
    ['Linux Mint, by its ID_LIKE', { ID: 'linuxmint', ID_LIKE: 'ubuntu debian', VERSION_ID: '21' }, undefined, { family: 'debian', name: 'linuxmint', release: { full: '21', major: '21' } }],
    ['Alpine', { ID: 'alpine', VERSION_ID: '3.19.1' }, undefined, { family: 'alpine', release: { full: '3.19.1', major: '3', minor: '19' } }],
    ['an unknown distribution', { ID: 'nixos', VERSION_ID: '23.11' }, undefined, { family: 'nixos', name: 'nixos' }],
    ['no os-release (macOS)', undefined, undefined, { family: 'darwin', name: 'darwin', release: { full: '23.1.0', major: '23', minor: '1' } }]
  ])('osFacts: %s', (_, release, debianVersion, want) => {
    expect(osFacts(release, debianVersion, 'darwin', '23.1.0')).toMatchObject(want)
  })

  it.each<[string, string, string | undefined, string | undefined]>([
    ['the host name\'s own domain first', 'db.example.org', 'domain other.example\n', 'example.org'],
    ['resolv.conf\'s domain before search', 'db', 'search a.example\ndomain b.example\n', 'b.example'],
    ['the first search domain', 'db', 'search a.example b.example\n', 'a.example'],
    ['none', 'db', 'nameserver 1.1.1.1\n', undefined],
    ['no resolv.conf', 'db', undefined, undefined]
  ])('domainOf: %s', (_, host, conf, want) => {
    expect(domainOf(host, conf)).toBe(want)
  })

  it('defaultRouteInterface, releaseParts and humanBytes', () => {
    expect(defaultRouteInterface(ROUTE)).toBe('eth0')
    expect(defaultRouteInterface('Iface\tDestination\n')).toBeUndefined()
    expect(defaultRouteInterface(undefined)).toBeUndefined()
    expect(releaseParts('12')).toEqual({ full: '12', major: '12' })
    expect(humanBytes(512)).toBe('512 bytes')
    expect(humanBytes(1536)).toBe('1.50 KiB')
    expect(humanBytes(16 * 1024 ** 3)).toBe('16.00 GiB')
  })
})
