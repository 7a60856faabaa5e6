// `npm run sim:rollout`: staged rollouts at scale in the model engine (src/sim/model/rollout-bench.ts, docs/scale.md).
import '../shim.js'
import { runRolloutBench } from '../sim/model/rollout-bench.js'

await runRolloutBench(process.argv.slice(2))
