// `npm run sim:scale`: the model engine's scale sweep (src/sim/model/scale.ts, docs/scale.md).
import '../shim.js'
import { runScaleSweep } from '../sim/model/scale.js'

await runScaleSweep(process.argv.slice(2))
