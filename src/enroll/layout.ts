import { posix } from 'node:path'

/** Where an enrolled agent's files go on the target, under `--prefix` (default: the root). */
export interface Layout {
  prefix: string
  bin: string
  configDir: string
  config: string
  swarmKey: string
  state: string
  /** The admission certificate, where the agent looks for it. */
  cert: string
  /** The fallback service's pid and log (no systemd). */
  pidFile: string
  log: string
  /** The systemd unit, where systemd reads an administrator's units. */
  unit: string
}

/** The layout under an absolute prefix ('/' for a normal install), as the Debian package lays it out. */
export function layoutFor (prefix: string): Layout {
  const p = posix.resolve('/', prefix)
  const at = (path: string): string => posix.join(p, path)
  return {
    prefix: p,
    bin: at('usr/bin/grapevine'),
    configDir: at('etc/grapevine'),
    config: at('etc/grapevine/agent.yaml'),
    swarmKey: at('etc/grapevine/swarm.key'),
    state: at('var/lib/grapevine'),
    cert: at('var/lib/grapevine/admission.cert'),
    pidFile: at('var/lib/grapevine/agent.pid'),
    log: at('var/log/grapevine.log'),
    // systemd reads units from /etc, whatever the prefix: one systemd agent per host.
    unit: '/etc/systemd/system/grapevine.service'
  }
}

/** A file's staging name for one run: beside it (so the rename into place is atomic), with the run's nonce. */
export function staged (path: string, nonce: string): string {
  return `${path}.new-${nonce}`
}
