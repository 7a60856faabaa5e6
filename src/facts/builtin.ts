import * as os from 'node:os'
import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * What the built-in facts read from the machine, as functions: tests give a made-up machine.
 * Files are read under `sysRoot` (default '/'): /etc/os-release, /etc/debian_version,
 * /etc/resolv.conf, /proc/1/comm, /proc/net/route, /run/systemd/system. No command is run and
 * nothing is asked of the network, so gathering costs a few file reads.
 */
export interface MachineView {
  sysRoot: string
  hostname: () => string
  kernelName: () => string
  kernelRelease: () => string
  machine: () => string
  platform: () => string
  cpus: () => Array<{ model: string }>
  totalmem: () => number
  freemem: () => number
  networkInterfaces: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>
}

export const THIS_MACHINE: MachineView = {
  sysRoot: '/',
  hostname: os.hostname,
  kernelName: os.type,
  kernelRelease: os.release,
  machine: os.machine,
  platform: os.platform,
  cpus: os.cpus,
  totalmem: os.totalmem,
  freemem: os.freemem,
  networkInterfaces: os.networkInterfaces
}

/**
 * os-release IDs to families, as Facter names them (lower-cased): a distribution not listed
 * takes the first of its ID_LIKE that is, else its own ID.
 */
const FAMILIES: Readonly<Record<string, string>> = {
  debian: 'debian',
  ubuntu: 'debian',
  raspbian: 'debian',
  rhel: 'redhat',
  centos: 'redhat',
  fedora: 'redhat',
  rocky: 'redhat',
  almalinux: 'redhat',
  ol: 'redhat',
  amzn: 'redhat',
  sles: 'suse',
  opensuse: 'suse',
  'opensuse-leap': 'suse',
  arch: 'archlinux',
  alpine: 'alpine',
  gentoo: 'gentoo'
}

/** uname -m to the name dpkg gives the architecture (Debian family only; elsewhere Facter says the hardware name). */
const DPKG_ARCH: Readonly<Record<string, string>> = {
  x86_64: 'amd64',
  aarch64: 'arm64',
  armv7l: 'armhf',
  armv6l: 'armel',
  i686: 'i386',
  i586: 'i386',
  i386: 'i386',
  ppc64le: 'ppc64el',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips64: 'mips64el'
}

async function readText (sysRoot: string, path: string): Promise<string | undefined> {
  try {
    return await readFile(join(sysRoot, path), 'utf8')
  } catch {
    return undefined
  }
}

async function exists (sysRoot: string, path: string): Promise<boolean> {
  try {
    await access(join(sysRoot, path))
    return true
  } catch {
    return false
  }
}

/** Pure: /etc/os-release's KEY=value lines (values unquoted, as the format says). */
export function parseOsRelease (text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim())
    if (m === null) continue
    let value = (m[2] as string).trim()
    const q = value[0]
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) value = value.slice(1, -1)
    out[m[1] as string] = value.replace(/\\([\\$"'`])/g, '$1')
  }
  return out
}

/** Pure: `full`, `major` and, when there is one, `minor` of a release like "12.11". */
export function releaseParts (full: string): { full: string, major: string, minor?: string } {
  const [major = full, minor] = full.split('.')
  return { full, major, ...(minor !== undefined && minor !== '' ? { minor } : {}) }
}

/** Pure: `os` from os-release (and Debian's /etc/debian_version, whose point release os-release lacks). */
export function osFacts (release: Record<string, string> | undefined, debianVersion: string | undefined, platform: string, kernelRelease: string): Record<string, unknown> {
  if (release === undefined || release.ID === undefined) {
    // No os-release (macOS, the BSDs): the platform is all there is.
    return { family: platform, name: platform, release: releaseParts(kernelRelease) }
  }
  const id = release.ID.toLowerCase()
  const like = (release.ID_LIKE ?? '').toLowerCase().split(/\s+/).filter((s) => s !== '')
  const family = [id, ...like].map((i) => FAMILIES[i]).find((f) => f !== undefined) ?? id
  const point = debianVersion?.trim()
  const full = id === 'debian' && point !== undefined && /^\d+(\.\d+)*$/.test(point) ? point : release.VERSION_ID
  return {
    family,
    name: id,
    ...(full !== undefined ? { release: releaseParts(full) } : {}),
    distro: {
      id,
      ...(release.VERSION_CODENAME !== undefined ? { codename: release.VERSION_CODENAME } : {}),
      ...(release.PRETTY_NAME !== undefined ? { description: release.PRETTY_NAME } : {})
    }
  }
}

/** Pure: the domain as Facter finds it without asking DNS: the host name's own, else resolv.conf's `domain`, else its first `search`. */
export function domainOf (hostname: string, resolvConf: string | undefined): string | undefined {
  const dot = hostname.indexOf('.')
  if (dot > 0 && dot < hostname.length - 1) return hostname.slice(dot + 1)
  let search: string | undefined
  for (const line of (resolvConf ?? '').split('\n')) {
    const [word, first] = line.trim().split(/\s+/)
    if (word === 'domain' && first !== undefined) return first.replace(/\.$/, '')
    if (word === 'search' && first !== undefined && search === undefined) search = first.replace(/\.$/, '')
  }
  return search
}

/** Pure: the interface of the default route in /proc/net/route, or undefined. */
export function defaultRouteInterface (route: string | undefined): string | undefined {
  for (const line of (route ?? '').split('\n').slice(1)) {
    const [iface, destination, , , , , , mask] = line.trim().split(/\s+/)
    if (destination === '00000000' && mask === '00000000' && iface !== undefined) return iface
  }
  return undefined
}

/** "15.54 GiB", as Facter writes sizes. */
export function humanBytes (n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++ }
  return u === 0 ? `${n} bytes` : `${v.toFixed(2)} ${units[u] as string}`
}

/** Facts that do not change while the agent runs: gathered once. */
export async function staticFacts (m: MachineView): Promise<Record<string, unknown>> {
  const [osRelease, debianVersion, resolvConf, pid1, systemdRuns] = await Promise.all([
    readText(m.sysRoot, 'etc/os-release'),
    readText(m.sysRoot, 'etc/debian_version'),
    readText(m.sysRoot, 'etc/resolv.conf'),
    readText(m.sysRoot, 'proc/1/comm'),
    exists(m.sysRoot, 'run/systemd/system')
  ])
  const hardware = m.machine()
  const osf = osFacts(osRelease !== undefined ? parseOsRelease(osRelease) : undefined, debianVersion, m.platform(), m.kernelRelease())
  const architecture = osf.family === 'debian' ? DPKG_ARCH[hardware] ?? hardware : hardware
  const fullName = m.hostname()
  const hostname = fullName.split('.')[0] ?? fullName
  const domain = domainOf(fullName, resolvConf)
  const kernelRelease = m.kernelRelease()
  const version = /^\d+(\.\d+)*/.exec(kernelRelease)?.[0] ?? kernelRelease
  const cpus = m.cpus()
  const models = [...new Set(cpus.map((c) => c.model.trim()).filter((s) => s !== ''))]
  return {
    os: { ...osf, architecture, hardware },
    kernel: { name: m.kernelName(), release: kernelRelease, version, major: version.split('.').slice(0, 2).join('.') },
    architecture,
    hostname,
    ...(domain !== undefined ? { domain } : {}),
    fqdn: domain !== undefined ? `${hostname}.${domain}` : hostname,
    processors: { count: cpus.length, ...(models.length > 0 ? { models } : {}) },
    // systemd is the init system only where it runs as PID 1 and has booted (sd_booted(3)): a
    // container with systemd installed but not running is `other`.
    init: pid1?.trim() === 'systemd' && systemdRuns ? 'systemd' : 'other'
  }
}

/** Facts that change as the machine runs (memory, addresses): gathered at each apply. */
export async function dynamicFacts (m: MachineView): Promise<Record<string, unknown>> {
  const route = await readText(m.sysRoot, 'proc/net/route')
  const total = m.totalmem()
  const available = m.freemem()
  const found = m.networkInterfaces()
  const interfaces: Record<string, Record<string, string>> = {}
  for (const [name, addrs] of Object.entries(found)) {
    const entry: Record<string, string> = {}
    const v4 = addrs?.find((a) => a.family === 'IPv4')
    // A global address before a link-local one, as Facter prefers.
    const v6 = addrs?.find((a) => a.family === 'IPv6' && !a.address.startsWith('fe80')) ?? addrs?.find((a) => a.family === 'IPv6')
    if (v4 !== undefined) { entry.ip = v4.address; entry.netmask = v4.netmask }
    if (v6 !== undefined) { entry.ip6 = v6.address; entry.netmask6 = v6.netmask }
    const mac = addrs?.find((a) => a.mac !== '00:00:00:00:00:00')?.mac
    if (mac !== undefined) entry.mac = mac
    interfaces[name] = entry
  }
  const external = Object.keys(interfaces).find((n) => !(found[n] ?? []).every((a) => a.internal) && interfaces[n]?.ip !== undefined)
  const routed = defaultRouteInterface(route)
  const primary = routed !== undefined && interfaces[routed] !== undefined ? routed : external
  const p = primary !== undefined ? interfaces[primary] : undefined
  return {
    memory: { system: { total: humanBytes(total), total_bytes: total, available: humanBytes(available), available_bytes: available } },
    networking: {
      ...(primary !== undefined ? { primary } : {}),
      ...(p?.ip !== undefined ? { ip: p.ip } : {}),
      ...(p?.ip6 !== undefined ? { ip6: p.ip6 } : {}),
      ...(p?.mac !== undefined ? { mac: p.mac } : {}),
      interfaces
    }
  }
}
