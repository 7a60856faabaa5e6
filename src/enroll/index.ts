/**
 * `grapevine enroll`: installs and starts an agent on a host over SSH (the system's OpenSSH
 * client). The steps and their scripts live here; the command (src/cli/commands/enroll.ts)
 * drives them and talks to the local agent.
 */
export * from './errors.js'
export * from './constants.js'
export { parseSshTarget, knownHostsName, targetText, isLoopbackHost, type SshTarget } from './target.js'
export { SshSession, sshFailure, shellQuote, type SshOptions, type RunResult } from './ssh.js'
export { layoutFor, staged, type Layout } from './layout.js'
export { probeScript, parseProbe, uploadCommand, installScript, runInstallCommand, type Probe, type InstallPlan } from './scripts.js'
export { agentConfig, type EnrollSettings } from './config.js'
export { unitFor } from './unit.js'
