import { readFile, stat } from 'node:fs/promises'
import { createServer } from 'node:net'
import { resolve } from 'node:path'
import type { z as Z } from '../../vendor/zod.js'
import { Option } from '@commander-js/extra-typings'
import type { Register } from '../register.js'
import { CliError, EXIT } from '../output.js'
import { collect, defaultStateDir, parseTags } from '../defaults.js'
import { DEFAULT_API_HOST } from '../../node/constants.js'

/** The conventional port of the agent's TCP API, when one is asked for (`--api`); the socket needs none. */
export const DEFAULT_API_PORT = 7411

/** The agent's config file: the same settings as the flags, which override it. Built when a config is read, so zod loads only then. */
const configSchema = (z: typeof Z) => z.strictObject({
  state: z.string().optional(),
  listen: z.array(z.string()).optional(),
  bootstrap: z.array(z.string()).optional(),
  trust: z.array(z.string()).optional(),
  tags: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String)).optional(),
  root: z.string().optional(),
  mdns: z.boolean().optional(),
  swarmKey: z.string().optional(),
  api: z.union([z.string(), z.literal(false)]).optional(),
  apiGroup: z.union([z.string(), z.number().int().nonnegative()]).optional(),
  name: z.string().optional(),
  factsDir: z.string().optional(),
  admission: z.string().optional(),
  admittedOnly: z.boolean().optional(),
  mesh: z.string().optional(),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
  reapplyInterval: z.number().nonnegative().optional(),
  syncInterval: z.number().nonnegative().optional(),
  announceThreshold: z.number().int().nonnegative().optional()
})

type AgentConfig = Z.output<ReturnType<typeof configSchema>>

async function loadConfig (file: string): Promise<AgentConfig> {
  const [{ z }, { parse: parseYaml }] = await Promise.all([import('../../vendor/zod.js'), import('yaml')])
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new CliError(`cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.UNAVAILABLE)
  }
  const r = configSchema(z).safeParse(parseYaml(text) ?? {})
  if (!r.success) {
    const i = r.error.issues[0]
    throw new CliError(`${file}: ${i?.path.join('.') ?? ''}: ${i?.message ?? 'invalid'}`)
  }
  return r.data
}

function parseHostPort (value: string): { host: string, port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(value)
  if (m === null || Number(m[2]) > 65535) throw new CliError(`--api expects HOST:PORT with a port from 0 to 65535, such as ${DEFAULT_API_HOST}:${DEFAULT_API_PORT}: got "${value}"`, EXIT.USAGE)
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) }
}

/**
 * Binds the --api address for a moment before the agent starts: a host that does not resolve
 * or is not on this machine is a bad value (64), a port in use or reserved unavailable (69).
 * Found after the start, the agent would have joined, taken and applied policies for nothing.
 */
async function probeApiAddress (value: string, tcp: { host: string, port: number }): Promise<void> {
  const server = createServer()
  try {
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject)
      server.listen(tcp.port, tcp.host, () => { resolveListen() })
    })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const bad = code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EADDRNOTAVAIL'
    throw new CliError(`--api ${value}: ${bad ? 'not an address of this machine' : 'cannot listen there'} (${(err as Error).message})`, bad ? EXIT.USAGE : EXIT.UNAVAILABLE)
  } finally {
    await new Promise<void>((resolveClose) => { server.close(() => { resolveClose() }) })
  }
}

/** A commander parser for a flag in seconds: a plain number, 0 or more. */
function seconds (flag: string): (value: string) => number {
  return (value) => {
    const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN
    if (!Number.isFinite(n)) throw new CliError(`${flag} must be a number of seconds, 0 or more (0 disables): got "${value}"`, EXIT.USAGE)
    return n
  }
}

/**
 * libp2p says which listen address failed inside a paragraph of advice about its own
 * configuration (transportManager.faultTolerance): keep the address and the reason.
 */
function listenFailure (err: Error): string | undefined {
  if (err.name !== 'UnsupportedListenAddressesError' && err.name !== 'UnsupportedListenAddressError') return undefined
  const failed = [...err.message.matchAll(/^\s*(\/\S+): (?:\w*Error: )?(.+)$/gm)].map((m) => `${m[1] ?? ''} (${m[2] ?? ''})`)
  return `cannot listen on ${failed.length > 0 ? failed.join(', ') : 'the --listen addresses'}: free the port or choose another --listen`
}

function parseBytes (value: string): number {
  if (!/^\d+$/.test(value)) throw new CliError(`--announce-threshold must be a whole number of bytes (0 disables): got "${value}"`, EXIT.USAGE)
  return Number(value)
}

export const registerAgent: Register = (program, done) => {
  program.command('agent')
    .description('Run a Grapevine node: join the mesh, verify and store signed policies, apply those that target this node.')
    .option('--config <file>', 'YAML config file with the same settings (flags override it)')
    .option('--state <dir>', `state directory (default: ${defaultStateDir()})`)
    .option('--listen <multiaddr>', 'listen address, repeatable (default /ip4/0.0.0.0/tcp/7410)', collect)
    .option('--bootstrap <multiaddr>', 'peer to join through, repeatable (with /p2p/<id>)', collect)
    .option('--trust <key>', 'trusted root public key id, or a file holding one; repeatable', collect)
    .option('--tag <k=v>', 'node tag used by policy targets and templates, repeatable', collect)
    .option('--root <dir>', 'prefix for every managed path (default /)')
    .option('--name <name>', 'node name for templates and reports (default: host name)')
    .option('--facts-dir <dir>', 'custom facts: *.json, *.yaml, *.yml maps here (default /etc/grapevine/facts.d; grapevine facts lists them)')
    .option('--sandbox-services', 'rehearsal under a sandbox --root: record services\' running state in ROOT/run/grapevine/services/ instead of asking systemd (enablement stays systemctl --root)')
    .option('--admission <file>', 'this node\'s admission certificate (grapevine admit); default: <state>/admission.cert if present')
    .option('--admitted-only', 'drop and block (5 min) peers that show no valid admission certificate within 10 s of connecting; needs a trust policy with enrollers')
    .option('--mdns', 'discover peers on the local network with mDNS')
    .option('--swarm-key <file>', 'pre-shared swarm key: only peers with the same key can connect')
    .option('--api <host:port>', `also serve the local API on TCP (e.g. ${DEFAULT_API_HOST}:${DEFAULT_API_PORT}); every route but /health and /metrics then needs the bearer token written to <state>/api.token (mode 0600)`)
    .option('--no-api', 'serve no local API: neither the socket <state>/api.sock nor TCP')
    .option('--api-group <group>', 'let this group (name or gid) use the API socket too: mode 0660, and the state directory gets group search permission')
    .option('--mesh <name>', 'mesh name; agents only talk policy with the same mesh (default "default")')
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']))
    .option('--reapply-interval <seconds>', 'seconds between drift-repair applies (default 300; 0 disables)', seconds('--reapply-interval'))
    .option('--sync-interval <seconds>', 'mean seconds between anti-entropy rounds (default 30; 0 disables)', seconds('--sync-interval'))
    .option('--announce-threshold <bytes>', 'gossip envelopes over this size as a signed announcement and let each node fetch the body once (default 16384; 0 gossips every envelope whole)', parseBytes)
    .action(async (opts) => {
      const file = opts.config !== undefined ? await loadConfig(opts.config) : {}
      const trustValues = opts.trust ?? file.trust ?? []
      if (trustValues.length === 0) throw new CliError('give at least one --trust root key: an agent that trusts nobody would accept nothing', EXIT.USAGE)
      const { resolveTrustedKey } = await import('../../envelope/index.js')
      // A --trust value that is no public key (a private key file, junk) is a usage error,
      // named as the user wrote it: a flag, or the config file's `trust:`.
      const trustSource = opts.trust !== undefined || opts.config === undefined ? '--trust' : `${opts.config}: trust`
      const trust = await Promise.all(trustValues.map(async (v) => await resolveTrustedKey(v).catch((err: Error) => { throw new CliError(`${trustSource}: ${err.message}`, EXIT.USAGE) })))
      const swarmKeyFile = opts.swarmKey ?? file.swarmKey
      const swarmKey = swarmKeyFile !== undefined ? new Uint8Array(await readFile(swarmKeyFile)) : undefined
      const apiSetting = opts.api === false ? false : typeof opts.api === 'string' ? opts.api : file.api
      const tcp = typeof apiSetting === 'string' ? parseHostPort(apiSetting) : undefined
      const apiGroup = opts.apiGroup ?? file.apiGroup
      let flagTags: Record<string, string>
      try {
        flagTags = parseTags(opts.tag)
      } catch (err) {
        throw new CliError((err as Error).message, EXIT.USAGE)
      }
      const tags = { ...Object.fromEntries(Object.entries(file.tags ?? {})), ...flagTags }
      const stateDir = resolve(opts.state ?? file.state ?? defaultStateDir())
      const { createLogger } = await import('../../node/logger.js')
      const [{ Agent }, { AdmissionError }] = await Promise.all([import('../../node/agent.js'), import('../../admission/index.js')])
      const { startApi } = await import('../../node/api.js')
      const logger = createLogger({ level: opts.logLevel ?? file.logLevel ?? 'info' })
      const seconds = (v: number | undefined): number | undefined => v === undefined ? undefined : v * 1000
      const admissionFile = opts.admission ?? file.admission
      let admission: Uint8Array | undefined
      if (admissionFile !== undefined) {
        try {
          admission = new Uint8Array(await readFile(admissionFile))
        } catch (err) {
          throw new CliError(`cannot read --admission ${admissionFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, EXIT.UNAVAILABLE)
        }
      }
      if (apiSetting !== false && tcp !== undefined) await probeApiAddress(apiSetting as string, tcp)
      const agent = await Agent.start({
        stateDir,
        root: resolve(opts.root ?? file.root ?? '/'),
        listen: opts.listen ?? file.listen ?? ['/ip4/0.0.0.0/tcp/7410'],
        bootstrap: opts.bootstrap ?? file.bootstrap ?? [],
        trust,
        tags,
        name: opts.name ?? file.name,
        factsDir: opts.factsDir ?? file.factsDir,
        ...(opts.sandboxServices === true ? { serviceRuntime: 'sandbox' as const } : {}),
        admission,
        admittedOnly: opts.admittedOnly ?? file.admittedOnly ?? false,
        mdns: opts.mdns ?? file.mdns ?? false,
        swarmKey,
        mesh: opts.mesh ?? file.mesh,
        logger,
        reapplyInterval: seconds(opts.reapplyInterval ?? file.reapplyInterval),
        syncInterval: seconds(opts.syncInterval ?? file.syncInterval),
        announceThreshold: opts.announceThreshold ?? file.announceThreshold,
        processMetrics: true
      }).catch((err: Error) => {
        // Flags that cannot work are refused before anything starts (node/options.ts).
        if (err.name === 'AgentOptionsError') throw new CliError(err.message, EXIT.USAGE)
        if (err.name === 'StateDirLockedError') throw new CliError(err.message, EXIT.UNAVAILABLE)
        // A full --state disk that will not take the state lock: one line, as for apply.
        if (err.name === 'StateWriteError') throw new CliError(err.message, EXIT.IOERR)
        const listen = listenFailure(err)
        if (listen !== undefined) throw new CliError(listen, EXIT.UNAVAILABLE)
        // A certificate the node cannot use (another node's, forged, not one): refused before it joins.
        if (err.name === 'AdmissionNotEnforcedError') throw new CliError(err.message, EXIT.USAGE)
        if (err instanceof AdmissionError) throw new CliError(`${admissionFile ?? `${stateDir}/admission.cert`}: ${err.message}`, EXIT.USAGE)
        throw err
      })
      const stateMode = (await stat(stateDir)).mode & 0o777
      if ((stateMode & 0o007) !== 0) logger.warn({ stateDir, mode: stateMode.toString(8) }, 'other users can enter the state directory and read the envelopes and history in it, whatever the API allows: chmod o-rwx it')
      let api: Awaited<ReturnType<typeof startApi>> | undefined
      if (apiSetting !== false) {
        try {
          api = await startApi(agent, { stateDir, tcp, group: apiGroup })
        } catch (err) {
          await agent.stop()
          throw new CliError(`cannot serve the API${tcp !== undefined ? ` on ${apiSetting} and` : ''} on ${stateDir}/api.sock: ${(err as Error).message}`, EXIT.UNAVAILABLE)
        }
        if (api.sharedStateDir === true) logger.info({ stateDir, group: apiGroup }, 'gave the API group search permission on the state directory, to reach the socket')
        logger.info({ socket: api.socket, url: api.url, tokenFile: api.tokenFile, group: apiGroup }, 'api listening')
      }
      await new Promise<void>((resolveStop) => {
        const stop = (signal: string): void => {
          logger.info({ signal }, 'shutting down')
          process.off('SIGINT', onInt)
          process.off('SIGTERM', onTerm)
          void (async () => {
            await api?.close()
            await agent.stop()
            resolveStop()
          })()
        }
        const onInt = (): void => { stop('SIGINT') }
        const onTerm = (): void => { stop('SIGTERM') }
        process.on('SIGINT', onInt)
        process.on('SIGTERM', onTerm)
      })
      done(EXIT.OK)
    })
}
