// Builds the netns engine's NFQUEUE delayer (native/nfq-delay.c → dist/native/nfq-delay).
// Not part of `npm run build`: only `grapevine sim --engine netns` needs it (it also builds it
// on first use), and installing Grapevine must not need a C compiler.
import process from 'node:process'
import { buildDelayer, DELAYER_BINARY } from '../dist/sim/netns/index.js'

try {
  await buildDelayer()
  process.stdout.write(`built ${DELAYER_BINARY}\n`)
} catch (err) {
  process.stderr.write(`${err.message}\n`)
  process.exit(69)
}
