/**
 * The workload of `npm run bench:resources`: one state of this machine, written both as a
 * Grapevine policy and as a Puppet manifest, from the same tables so the two cannot drift apart.
 *
 * Everything in it is a no-op once the first apply has run: the packages are Debian's
 * `required` ones, installed on every Debian system (ensure present, never latest, which
 * would upgrade the machine); the users and groups and the unit files carry the bench's own
 * names, made by the first apply (or by the bench) and removed by the bench at the end.
 */

/** 20 packages of priority `required` in Debian 12: installed wherever the bench can run. */
export const BENCH_PACKAGES = [
  'apt', 'base-files', 'base-passwd', 'bash', 'bsdutils', 'coreutils', 'dash', 'debconf', 'debianutils', 'diffutils',
  'dpkg', 'findutils', 'grep', 'gzip', 'hostname', 'login', 'mount', 'passwd', 'sed', 'tar'
] as const

/** 5 users, each with a group of its own name and id (2901-2905; the bench refuses to start where a name or id is taken). */
export const BENCH_ACCOUNTS = [1, 2, 3, 4, 5].map((i) => ({ name: `gvbench${i}`, id: 2900 + i }))

/** Fields every bench user has, so both tools compare (and leave alone) the same ones. */
export const BENCH_USER = { home: '/nonexistent', shell: '/usr/sbin/nologin', comment: 'grapevine bench' } as const

/** 5 units the bench writes to /etc/systemd/system and removes after: enablement only (systemd need not run). */
export const BENCH_UNITS = [1, 2, 3, 4, 5].map((i) => `gvbench-svc${i}.service`)

export const UNIT_DIR = '/etc/systemd/system'

export function unitFileText (unit: string): string {
  return `[Unit]\nDescription=grapevine resources bench: ${unit} (enabled, never started)\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n`
}

export interface Parts {
  /** The 20 packages, 5 groups and 5 users. */
  accounts: boolean
  /** The 5 services (enable: true). */
  services: boolean
}

/** The Grapevine policy (YAML), flow style as an operator would write 35 short resources. */
export function grapevinePolicy (parts: Parts): string {
  const lines = [`name: bench/resources${parts.services ? '' : '-no-services'}`, 'resources:']
  if (parts.accounts) {
    for (const p of BENCH_PACKAGES) lines.push(`  - { id: pkg-${p}, type: package, name: ${p}, ensure: present }`)
    for (const a of BENCH_ACCOUNTS) {
      lines.push(`  - { id: group-${a.name}, type: group, name: ${a.name}, gid: ${a.id} }`)
      lines.push(`  - { id: user-${a.name}, type: user, name: ${a.name}, uid: ${a.id}, gid: ${a.id}, home: ${BENCH_USER.home}, shell: ${BENCH_USER.shell}, comment: ${BENCH_USER.comment} }`)
    }
  }
  if (parts.services) {
    for (const unit of BENCH_UNITS) lines.push(`  - { id: svc-${unit.replace('.service', '')}, type: service, name: ${unit}, enable: true }`)
  }
  return lines.join('\n') + '\n'
}

/**
 * How the Puppet manifest says "this unit is enabled": with its `service` type, or, where that
 * cannot manage units (its systemd provider requires systemd as PID 1, and the provider it falls
 * back to is Debian's update-rc.d, for init scripts), with an exec guarded by `unless`, which
 * runs the same `systemctl is-enabled` query on a no-op.
 */
export type PuppetServices = 'service' | 'exec'

/** The Puppet manifest for the same state (Puppet's defaults: apt, useradd, groupadd). */
export function puppetManifest (parts: Parts, services: PuppetServices = 'service'): string {
  const lines: string[] = []
  if (parts.accounts) {
    for (const p of BENCH_PACKAGES) lines.push(`package { '${p}': ensure => present }`)
    for (const a of BENCH_ACCOUNTS) {
      lines.push(`group { '${a.name}': ensure => present, gid => ${a.id} }`)
      lines.push(`user { '${a.name}': ensure => present, uid => ${a.id}, gid => ${a.id}, home => '${BENCH_USER.home}', shell => '${BENCH_USER.shell}', comment => '${BENCH_USER.comment}', managehome => false }`)
    }
  }
  if (parts.services) {
    for (const unit of BENCH_UNITS) {
      lines.push(services === 'service'
        ? `service { '${unit}': enable => true }`
        : `exec { 'enable ${unit}': command => 'systemctl enable ${unit}', unless => 'systemctl is-enabled --quiet ${unit}', path => ['/usr/bin', '/bin'] }`)
    }
  }
  return lines.join('\n') + '\n'
}
