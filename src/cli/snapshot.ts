/**
 * Entry point of the CLI's V8 startup snapshot (built by scripts/build-snapshot.mjs, run by
 * bin/grapevine). Loading the applier's modules (commander, zod, the YAML parsers and ours)
 * costs a short command such as `apply` about 80 ms of its ~350; from a snapshot they are
 * already loaded when the process starts.
 *
 * The snapshot serves only the commands whose code it holds. Node 20 cannot `import()` from
 * a snapshot, so commands that load libp2p or the simulator go through bin/grapevine.js.
 */
import v8 from 'node:v8'
import { main } from './main.js'
// Imported by the commands when they run; imported here so that the snapshot holds them.
import '../apply/index.js'
import '../policy/load.js'
import '../policy/parse.js'
import '../policy/target.js'
import { EXIT, printError } from './output.js'

/** Commands the snapshot runs; bin/grapevine sends every other one to bin/grapevine.js (keep its `case` and SERVED in scripts/build-snapshot.mjs in step). */
const SNAPSHOT_COMMANDS = ['apply', 'plan', 'validate'] as const

// Truthy, not `=== true`: Node 20 answers 1.
if (v8.startupSnapshot?.isBuildingSnapshot()) {
  v8.startupSnapshot.setDeserializeMainFunction(() => {
    const args = process.argv.slice(1)
    const command = args[0] ?? ''
    if (!(SNAPSHOT_COMMANDS as readonly string[]).includes(command)) {
      printError(`the snapshot runs only ${SNAPSHOT_COMMANDS.join(', ')}; run "${command}" through bin/grapevine`)
      process.exitCode = EXIT.USAGE
      return
    }
    // As bin/grapevine.js would see it: node, script, then the arguments.
    void main([process.argv[0] ?? 'node', 'grapevine', ...args]).then((code) => { process.exitCode = code })
  })
}
