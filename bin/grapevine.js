#!/usr/bin/env node
// Thin launcher: the shim must load before anything that imports libp2p.
await import('../dist/shim.js')
const { main } = await import('../dist/cli/main.js')
process.exitCode = await main(process.argv)
