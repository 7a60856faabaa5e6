import type { FailingWrite } from './journal.js'

/**
 * How long a node may go with no peer before `/health` calls it degraded. Long enough for a
 * restart of its peers or a short network cut to pass unreported; a bootstrap address that
 * leads nowhere, a firewall or a wrong --swarm-key shows within two minutes of start.
 */
export const DEFAULT_PEERLESS_GRACE_MS = 2 * 60_000

/** What the watch needs of libp2p: the connected peers and the events that change them. */
export interface PeerEvents {
  getPeers: () => unknown[]
  addEventListener: (type: 'peer:connect' | 'peer:disconnect', listener: () => void) => void
  removeEventListener: (type: 'peer:connect' | 'peer:disconnect', listener: () => void) => void
}

export interface Health {
  /** `degraded` when the node works but cannot do its job: it has had no peer for longer than the grace. */
  status: 'ok' | 'degraded'
  /** What makes it degraded, for a person. */
  problems: string[]
}

/**
 * Knows since when a node has had no peer, from libp2p's connect and disconnect events (a
 * health check polled only now and then still sees a node that has been alone all along).
 */
export class PeerlessWatch {
  private since: number | undefined
  private readonly onConnect = (): void => { this.since = undefined }
  private readonly onDisconnect = (): void => { if (this.net.getPeers().length === 0) this.since ??= this.now() }

  constructor (private readonly net: PeerEvents, private readonly now: () => number, private readonly graceMs = DEFAULT_PEERLESS_GRACE_MS) {
    if (net.getPeers().length === 0) this.since = now()
    net.addEventListener('peer:connect', this.onConnect)
    net.addEventListener('peer:disconnect', this.onDisconnect)
  }

  health (): Health {
    if (this.net.getPeers().length > 0) this.since = undefined
    const alone = this.since === undefined ? 0 : this.now() - this.since
    if (alone <= this.graceMs) return { status: 'ok', problems: [] }
    return { status: 'degraded', problems: [`no peers for ${Math.round(alone / 1000)} s: check --bootstrap, the network and the firewall (the log warns "cannot reach peer" for each address tried)`] }
  }

  stop (): void {
    this.net.removeEventListener('peer:connect', this.onConnect)
    this.net.removeEventListener('peer:disconnect', this.onDisconnect)
  }
}

/**
 * The node's health: the peerless watch's verdict, and degraded too while a state write is being
 * retried (a full or failing --state disk), since nothing new is applied until it succeeds.
 */
export function nodeHealth (peers: Health, failingWrite?: FailingWrite): Health {
  const problems = [...peers.problems]
  if (failingWrite !== undefined) {
    const { what, since, attempts, error } = failingWrite
    problems.push(`writing ${what} to the state directory has failed since ${since} (${attempts} attempt${attempts === 1 ? '' : 's'}, last: ${error}); it is retried, and nothing newer is applied until it is written: free space there or fix --state`)
  }
  return { status: problems.length > 0 ? 'degraded' : 'ok', problems }
}
