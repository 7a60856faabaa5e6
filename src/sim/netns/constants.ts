/**
 * Every object a run makes is named from this and the coordinator's pid (`gv<pid>`), so a
 * later run can tell a dead run's leftovers from a live run's objects, and the reaper can find
 * them all by name.
 */
export const NAME_PREFIX = 'gv'

/**
 * The simulated hosts' subnet: host h is 10.77.0.(h + 1)/24 on its eth0. Each run has its own
 * bridge and namespaces, so two runs at once reuse the addresses on separate segments; the root
 * namespace gets no address on the bridge and so never routes to them.
 */
export const SUBNET_PREFIX = '10.77.0.'
export const SUBNET = `${SUBNET_PREFIX}0/24`

/** Hosts per run: one /24 (addresses .1 to .250) and interface names within 15 characters. */
export const MAX_HOSTS = 250

/** The NFQUEUE queue number in every host namespace (queues are per namespace). */
export const QUEUE_NUM = 0

/**
 * Packets a delayer holds at most; the kernel's queue gets the same bound. A 10-host run at
 * 50 ms holds a few hundred packets; beyond this bound packets are dropped as a full buffer
 * drops them.
 */
export const DELAYER_MAX_QUEUE = 65_536

/** A delayer that has not said "ready" in this long did not start. */
export const DELAYER_READY_MS = 5_000

/** The chain, in each host namespace's filter table, that holds the partition rules. */
export const PARTITION_CHAIN = 'GV-PARTITION'

/** The Debian packages the NFQUEUE delayer is built from, named in the error when they are missing. */
export const DELAYER_PACKAGES = 'gcc libnetfilter-queue-dev'
