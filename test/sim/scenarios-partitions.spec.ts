// The shipped partition scenarios, small, in a file of their own so that the second test worker
// runs them while the first runs the rest (scenarios.spec.ts): see shipped.ts.
import { shippedScenarioTests } from './shipped.js'

shippedScenarioTests((f) => f.startsWith('partition'))
