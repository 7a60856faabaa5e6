// Every shipped scenario but the partition ones (scenarios-partitions.spec.ts), small: see shipped.ts.
import { shippedScenarioTests } from './shipped.js'

shippedScenarioTests((f) => !f.startsWith('partition'))
