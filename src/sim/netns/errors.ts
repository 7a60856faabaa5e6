/** The netns engine cannot run here: not root, or a tool it needs (ip, iptables) is missing. */
export class NetnsUnavailableError extends Error {
  static override name = 'NetnsUnavailableError'
  override name = 'NetnsUnavailableError'
}

/** The NFQUEUE delayer could not be built (no C compiler or no libnetfilter_queue headers). */
export class DelayerBuildError extends Error {
  static override name = 'DelayerBuildError'
  override name = 'DelayerBuildError'
}

/** A command that sets up or changes the simulated network failed. */
export class NetworkCommandError extends Error {
  static override name = 'NetworkCommandError'
  override name = 'NetworkCommandError'
}
