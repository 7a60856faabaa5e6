import { DEFAULT_FACTS_DIR } from './constants.js'
import { dynamicFacts, staticFacts, THIS_MACHINE, type MachineView } from './builtin.js'
import { readCustomFacts } from './custom.js'

export interface GatherOptions {
  /** Custom facts: `*.json`, `*.yaml`, `*.yml` here (default /etc/grapevine/facts.d). */
  factsDir?: string
  /** Tests: a made-up machine (its files under `sysRoot`). */
  machine?: Partial<MachineView>
}

export interface GatheredFacts {
  facts: Record<string, unknown>
  /** Fact files skipped or facts dropped, each naming its file: print or log them, never fail on them. */
  warnings: string[]
  /** How long gathering took, in milliseconds. */
  ms: number
}

/**
 * A node's facts, gathered cheaply: the ones that never change once, memory, addresses and the
 * custom facts again at each `refresh()`. Built-in facts win over custom ones of the same
 * top-level name, so a facts.d file cannot make the node look like another OS to the providers
 * that choose their tool by `os.family` or `init` (docs/facts.md says why).
 */
export class FactGatherer {
  private readonly machine: MachineView
  private readonly dir: string
  private fixed?: Promise<Record<string, unknown>>

  constructor (private readonly opts: GatherOptions = {}) {
    this.machine = { ...THIS_MACHINE, ...opts.machine }
    this.dir = opts.factsDir ?? DEFAULT_FACTS_DIR
  }

  async refresh (): Promise<GatheredFacts> {
    const started = performance.now()
    this.fixed ??= staticFacts(this.machine)
    const [fixed, changing, custom] = await Promise.all([this.fixed, dynamicFacts(this.machine), readCustomFacts(this.dir, { explicit: this.opts.factsDir !== undefined })])
    const builtin = { ...fixed, ...changing }
    const facts: Record<string, unknown> = { ...builtin }
    const warnings = [...custom.warnings]
    for (const [name, value] of Object.entries(custom.facts)) {
      if (Object.hasOwn(builtin, name)) {
        warnings.push(`custom fact "${name}" (${this.dir}) ignored: "${name}" is a built-in fact, which custom facts do not replace`)
        continue
      }
      facts[name] = value
    }
    return { facts, warnings, ms: performance.now() - started }
  }
}

/** One gathering: what `grapevine facts`, `plan` and `apply` use. */
export async function gatherFacts (opts: GatherOptions = {}): Promise<GatheredFacts> {
  return await new FactGatherer(opts).refresh()
}
