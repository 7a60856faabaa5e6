import { execFile } from 'node:child_process'
import { describeCommand } from '../command.js'
import { AccountCommandFailedError, ProviderUnavailableError } from '../errors.js'
import { MAX_TOOL_OUTPUT_BYTES, TOOL_ERROR_TAIL_BYTES, TOOL_PATH } from './constants.js'
import type { ToolCall } from './plan.js'

/** Runs one shadow tool against the root; rejects with a named error when it fails. */
export type ToolRunner = (call: ToolCall, signal?: AbortSignal) => Promise<void>

/**
 * The tool's argv: `--root` (-R) chroots the tool into the sandbox before it opens anything,
 * so it reads and locks the sandbox's /etc files, takes its defaults from the sandbox's
 * login.defs, /etc/default/useradd and /etc/skel, and resolves every path (a symlinked
 * /etc/passwd, a home directory) inside it. `--prefix` (-P) would edit the same files from
 * outside, following symlinks on this machine, and its home handling is partial; the
 * shadow tools call it a cross-compilation aid. On `/` the tools run plainly.
 */
export function toolArgv (call: ToolCall, root: string): string[] {
  return root === '/' ? call.args : ['--root', root, ...call.args]
}

/** The last `max` bytes of a tool's stderr, trimmed, with `hide` (a password hash) never shown. Pure. */
export function stderrTail (stderr: string, hide: string | undefined, max = TOOL_ERROR_TAIL_BYTES): string {
  let text = stderr.trim()
  if (hide !== undefined && hide !== '') text = text.split(hide).join('(secret)')
  const bytes = Buffer.from(text)
  return bytes.length <= max ? text : `…${bytes.subarray(bytes.length - max).toString('utf8').replace(/^\uFFFD+/, '')}`
}

/**
 * The shadow tools with execFile: no shell, a minimal environment (the C locale, so messages
 * read the same everywhere), bounded output, the call's timeout and the apply's abort signal.
 */
export function shadowTools (root: string, type: 'user' | 'group', account: string): ToolRunner {
  return async (call, signal) => {
    const argv = toolArgv(call, root)
    const shown = describeCommand([call.tool, ...call.args])
    // chpasswd's stdin holds `name:hash`; whatever it says back is searched for the hash.
    const hide = call.input?.slice(call.input.indexOf(':') + 1).trim()
    await new Promise<void>((resolve, reject) => {
      const child = execFile(call.tool, argv, {
        env: { PATH: TOOL_PATH, LC_ALL: 'C' },
        timeout: call.timeoutMs,
        maxBuffer: MAX_TOOL_OUTPUT_BYTES,
        encoding: 'utf8',
        ...(signal !== undefined ? { signal } : {})
      }, (err, _stdout, stderr) => {
        if (err === null) { resolve(); return }
        const e = err as NodeJS.ErrnoException & { code?: number | string, killed?: boolean, signal?: NodeJS.Signals | null }
        if (e.code === 'ENOENT' || e.code === 'EACCES') {
          reject(new ProviderUnavailableError(type, account, `${call.tool} cannot run here (${e.code}): ${type} resources need the shadow tools (Debian and Ubuntu: the passwd package)`))
          return
        }
        const code = typeof e.code === 'number' ? e.code : null
        const detail = e.name === 'AbortError'
          ? 'stopped: the apply was aborted'
          : e.killed === true && code === null && signal?.aborted !== true
            ? (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER' ? `killed: wrote more than ${MAX_TOOL_OUTPUT_BYTES} bytes` : `timed out after ${call.timeoutMs / 1000} s and was killed`)
            : undefined
        reject(new AccountCommandFailedError(shown, code, e.signal ?? null, stderrTail(String(stderr), hide), detail))
      })
      child.stdin?.on('error', () => { /* a tool that exits before reading: its exit status says why */ })
      child.stdin?.end(call.input ?? '')
    })
  }
}
