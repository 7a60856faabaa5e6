import type { Layout } from './layout.js'

/** What enroll writes into the new agent's config (docs/agent.example.yaml: the same keys as the agent's flags). */
export interface EnrollSettings {
  /** Root public key ids (never a private key: the CLI refuses one before this). */
  trust: string[]
  bootstrap: string[]
  tags: Record<string, string>
  name?: string
  listen?: string[]
  root?: string
  mesh?: string
  swarmKey: boolean
}

/**
 * The agent config as an object, in the order a person reads it. The admission certificate is
 * not named: the agent finds it at <state>/admission.cert.
 */
export function agentConfig (l: Layout, s: EnrollSettings): Record<string, unknown> {
  return {
    state: l.state,
    ...(s.listen !== undefined && s.listen.length > 0 ? { listen: s.listen } : {}),
    bootstrap: s.bootstrap,
    trust: s.trust,
    ...(Object.keys(s.tags).length > 0 ? { tags: s.tags } : {}),
    ...(s.name !== undefined ? { name: s.name } : {}),
    ...(s.root !== undefined ? { root: s.root } : {}),
    ...(s.mesh !== undefined ? { mesh: s.mesh } : {}),
    ...(s.swarmKey ? { swarmKey: l.swarmKey } : {}),
    logLevel: 'info'
  }
}
