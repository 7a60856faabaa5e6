import { readFileSync } from 'node:fs'
import type { Layout } from './layout.js'

/**
 * docs/grapevine.service, the unit the Debian package installs: the one copy of the unit's
 * settings and the reasons for them. The single binary holds its text (scripts/build-sea.mjs).
 */
function packagedUnit (): string {
  return readFileSync(new URL('../../docs/grapevine.service', import.meta.url), 'utf8')
}

/**
 * The systemd unit enroll installs: the package's, with ExecStart naming this layout's binary,
 * config and state. Under a prefix the state directory is not systemd's (StateDirectory= would
 * make /var/lib/grapevine).
 */
export function unitFor (l: Layout, unit = packagedUnit()): string {
  const lines = unit.split('\n').map((line) => line.startsWith('ExecStart=') ? `ExecStart=${l.bin} agent --config ${l.config} --state ${l.state}` : line)
  const kept = l.prefix === '/' ? lines : lines.filter((line) => !line.startsWith('StateDirectory'))
  return `# Written by grapevine enroll (docs/enroll.md): docs/grapevine.service, with this host's paths.\n${kept.join('\n')}`
}
