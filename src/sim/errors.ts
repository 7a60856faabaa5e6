import { formatProblem, type PolicyProblem } from '../policy/index.js'

/** A scenario file that cannot be run; `problems` lists every problem found, located like policy errors. */
export class InvalidScenarioError extends Error {
  static override name = 'InvalidScenarioError'
  override name = 'InvalidScenarioError'
  constructor (readonly file: string, readonly problems: PolicyProblem[]) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'))
  }
}

/** The live engine could not set up or run the mesh (a worker died, agents did not start). */
export class SimulationError extends Error {
  static override name = 'SimulationError'
  override name = 'SimulationError'
}
