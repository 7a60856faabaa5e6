// Which machines the model's agents run on. Dedicated: each host its own CPU and disk, the
// deployment case (DEDICATED_CPU, 100 Mbit/s uplinks); nodes.perHost agents on one host share
// them. Shared: every host on one machine with a few cores, as the live and netns engines run
// them here (docs/scale.md, "Calibration" and "The model against a real network"): all agents
// share the cores and one disk, whatever perHost says, and links between hosts keep the
// scenario's delay and loss.

import { LOOPBACK_UPLINK_BYTES_PER_S, NETNS_SHARED_CPU, NETNS_SHARED_NET, SHARED_HOST_CPU } from './constants.js'
import type { ModelOverrides } from './index.js'

/**
 * `fit`: which engine's figures the shared-host costs were fitted to: `live` (agents in 2 worker
 * processes, in-process link shaping; acceptance only) or `netns` (one worker per host, kernel
 * delay, applies too). Default: the one for the engine the scenario was written for (sharedFitFor).
 */
export type HostModel = { kind: 'dedicated' } | { kind: 'shared', cores: number, fit?: SharedFit }
export type SharedFit = 'live' | 'netns'

/** The model in the shape of the live or netns engine on this host: every agent shares the machine's CPU and disk, loopback bandwidth. */
export function sharedHostOverrides (cores: number, topUp = true, fit: SharedFit = 'live'): ModelOverrides {
  return {
    cpu: fit === 'netns' ? NETNS_SHARED_CPU : SHARED_HOST_CPU,
    cpuShare: cores,
    net: { uplinkBytesPerS: LOOPBACK_UPLINK_BYTES_PER_S, ...(fit === 'netns' ? NETNS_SHARED_NET : {}) },
    gossip: { topUp }
  }
}

/** Engine overrides for a host model; dedicated hosts are the engine's defaults. */
export function hostOverrides (host: HostModel): ModelOverrides {
  return host.kind === 'shared' ? sharedHostOverrides(host.cores, true, host.fit) : {}
}

/** The shared-host fit for a scenario written for `engine`: the netns engine's for a netns file, else the live engine's. */
export function sharedFitFor (engine: string): SharedFit {
  return engine === 'netns' ? 'netns' : 'live'
}

export function describeHost (host: HostModel): string {
  return host.kind === 'shared'
    ? `shared host: every agent on ${host.cores} core${host.cores === 1 ? '' : 's'} and one disk, loopback bandwidth${host.fit !== undefined ? `, costs fitted to the ${host.fit} engine` : ''}`
    : 'dedicated hosts: one agent each, 100 Mbit/s uplinks'
}
