import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { LatencyDist } from '../random.js'
import { DelayerBuildError, NetworkCommandError } from './errors.js'
import { DELAYER_MAX_QUEUE, DELAYER_PACKAGES, DELAYER_READY_MS, QUEUE_NUM } from './constants.js'
import { delayerArgs } from './plan.js'

const run = promisify(execFile)

/** The package root: this file is src/sim/netns/delayer.ts or dist/sim/netns/delayer.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export const DELAYER_SOURCE = join(ROOT, 'native', 'nfq-delay.c')
export const DELAYER_BINARY = join(ROOT, 'dist', 'native', 'nfq-delay')

/**
 * The NFQUEUE delayer's binary, built on first use (or by `npm run build:native`). It is not
 * built by `npm install`: only the netns engine needs it, and a machine without a C compiler
 * must still install Grapevine; the netns engine already needs root and a Linux kernel, so one
 * more named prerequisite costs its users little.
 */
export async function delayerBinary (): Promise<string> {
  if (existsSync(DELAYER_BINARY)) return DELAYER_BINARY
  await buildDelayer()
  return DELAYER_BINARY
}

export async function buildDelayer (out = DELAYER_BINARY): Promise<void> {
  await mkdir(dirname(out), { recursive: true })
  try {
    await run('cc', ['-O2', '-Wall', '-o', out, DELAYER_SOURCE, '-lnetfilter_queue', '-lm'])
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    const why = e.code === 'ENOENT' ? 'no C compiler (cc)' : /libnetfilter_queue|netfilter_queue/.test(e.stderr ?? '') ? 'no libnetfilter_queue headers or library' : (e.stderr ?? e.message).split('\n')[0]
    throw new DelayerBuildError(`cannot build the NFQUEUE delayer (${DELAYER_SOURCE}): ${why}; install the Debian packages ${DELAYER_PACKAGES} (apt-get install ${DELAYER_PACKAGES})`)
  }
}

/** Starts a delayer inside a namespace and waits for it to bind its queue. */
export async function startDelayer (binary: string, namespace: string, latency: LatencyDist, seed: number): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', namespace, binary, String(QUEUE_NUM), ...delayerArgs(latency), String(seed), String(DELAYER_MAX_QUEUE)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-2000) })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { finish(new NetworkCommandError(`the delayer in ${namespace} did not start within ${DELAYER_READY_MS} ms`)) }, DELAYER_READY_MS)
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      child.stdout?.removeAllListeners('data')
      if (err !== undefined) { child.kill('SIGKILL'); reject(err) } else resolve()
    }
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { if (d.includes('ready')) finish() })
    child.once('exit', (code) => { finish(new NetworkCommandError(`the delayer in ${namespace} exited (code ${code ?? 'signal'}): ${stderr.trim().split('\n')[0] ?? ''}`)) })
  })
  // Nothing more to read; keep draining so a full pipe never blocks it.
  child.stdout?.resume()
  return child
}
