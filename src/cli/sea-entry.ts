// The single executable's main (scripts/build-sea.mjs bundles it into one CommonJS file):
// bin/grapevine.js without its top-level await, which CommonJS cannot hold.
import '../shim.js'
import { main } from './main.js'

/**
 * Commands the binary cannot run, and why: their worker threads and shipped files are loaded
 * by path from a checkout, and a single executable carries one script and no files.
 */
const NOT_IN_BINARY: Record<string, string> = {
  sim: 'its simulated nodes run in worker threads loaded from files in a checkout',
  demo: 'its nodes run in worker threads loaded from files in a checkout, with the shipped policies/'
}

const command = process.argv[2] ?? ''
const why = NOT_IN_BINARY[command]
if (why !== undefined) {
  process.stderr.write(`grapevine: \`${command}\` is not in the single binary: ${why}; run it from the npm package or a checkout\n`)
  process.exitCode = 69
} else {
  main(process.argv).then((code) => { process.exitCode = code }, (err: unknown) => {
    process.stderr.write(`grapevine: ${String(err)}\n`)
    process.exitCode = 70
  })
}
