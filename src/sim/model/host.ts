// Which machines the model's agents run on. Dedicated: one agent per host, the deployment
// case (DEDICATED_CPU, 100 Mbit/s uplinks). Shared: every agent on one machine with a few
// cores, as the live engine runs them here; the shape the model is calibrated in
// (docs/scale.md, "Calibration").

import { LOOPBACK_UPLINK_BYTES_PER_S, SHARED_HOST_CPU } from './constants.js'
import type { ModelOverrides } from './index.js'

export type HostModel = { kind: 'dedicated' } | { kind: 'shared', cores: number }

/** The model in the shape of the live engine on this host: every agent shares the machine's CPU, loopback links. */
export function sharedHostOverrides (cores: number, topUp = true): ModelOverrides {
  return {
    cpu: SHARED_HOST_CPU,
    cpuShare: cores,
    net: { uplinkBytesPerS: LOOPBACK_UPLINK_BYTES_PER_S },
    gossip: { topUp }
  }
}

/** Engine overrides for a host model; dedicated hosts are the engine's defaults. */
export function hostOverrides (host: HostModel): ModelOverrides {
  return host.kind === 'shared' ? sharedHostOverrides(host.cores) : {}
}

export function describeHost (host: HostModel): string {
  return host.kind === 'shared'
    ? `shared host: every agent on ${host.cores} core${host.cores === 1 ? '' : 's'} and one disk, loopback bandwidth`
    : 'dedicated hosts: one agent each, 100 Mbit/s uplinks'
}
