import { join, resolve } from 'node:path'
import type { Register } from '../register.js'
import { CliError, EXIT, colour, print } from '../output.js'

function stamp (): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')
}

export const registerDemo: Register = (program, done) => {
  program.command('demo')
    .description('Run a local mesh of real agents, publish the example policies, crash and restart a few, and write an HTML report (what `npm start` runs).')
    .option('--out <dir>', 'output directory (default ./out/demo-<time>)')
    .option('--nodes <n>', 'agents to start (default 12)', (v: string) => {
      if (!/^\d+$/.test(v) || Number(v) < 4 || Number(v) > 200) throw new CliError(`--nodes must be an integer from 4 to 200: got "${v}"`, EXIT.USAGE)
      return Number(v)
    })
    .action(async (opts: { out?: string, nodes?: number }) => {
      const { runDemo, shown } = await import('../../sim/demo.js')
      const out = resolve(opts.out ?? join('out', `demo-${stamp()}`))
      const live = process.stdout.isTTY === true && process.env.CI === undefined
      print(colour.bold('Grapevine demo: peer-to-peer configuration management on one machine'))
      print('Real agents gossip signed, versioned policies, apply the ones that target them, and report back.')
      print('This run: start a mesh, trust an admin key, publish the two example policies, stop a few')
      print('agents while a new version goes out, restart them and watch them catch up. About 20 seconds.')
      print(`Everything it writes goes to ${shown(out)}/`)
      const outcome = await runDemo({
        out,
        nodes: opts.nodes,
        print: (line = '') => { print(line) },
        ...(live ? { live: (line: string) => { process.stdout.write(line === '' ? '\r\x1b[2K' : `\r\x1b[2K${line}`) } } : {}),
        colour: { bold: colour.bold, green: colour.green, red: colour.red, dim: colour.dim, cyan: colour.cyan }
      })
      print()
      print(`${outcome.ok ? colour.green('Done') : colour.red('Done, with problems')} in ${(outcome.elapsedMs / 1000).toFixed(1)} s.`)
      for (const p of outcome.problems) print(colour.red(`  ${p}`))
      print(`Report (open it in a browser): ${shown(outcome.report)}`)
      print(`Agents' state and sandbox roots: ${shown(join(out, 'nodes'))}/`)
      print(`Next: docs/sim.md (simulations: grapevine sim smoke), README.md ("A mesh by hand": two agents and a publish, typed yourself).`)
      done(outcome.ok ? EXIT.OK : EXIT.INVALID)
    })
}
