import type { RunProgress } from './runner.js'

/**
 * Prints a run's progress for people: on a terminal, notable lines scroll above a live status
 * line that redraws in place; elsewhere (CI, pipes, files) just the notable lines.
 */
export function progressPrinter (out: NodeJS.WriteStream = process.stdout): { update: (p: RunProgress) => void, end: () => void } {
  const live = out.isTTY === true && process.env.CI === undefined
  let shown = false
  let last = 0
  const clear = (): void => {
    if (shown) out.write('\r\x1b[2K')
    shown = false
  }
  return {
    update: (p) => {
      if (p.message !== undefined) {
        clear()
        out.write(`${p.message}\n`)
      }
      if (!live || p.phase === 'done') return
      const now = Date.now()
      if (p.message === undefined && now - last < 100) return
      last = now
      const pubs = p.publishes.slice(-3).map((x) => `${x.id} ${x.applied}/${x.targeted}`).join('  ')
      const t = p.phase === 'setup' ? 'setup' : `t=${(p.t / 1000).toFixed(1)}s`
      const checks = p.checks.pass + p.checks.fail + p.checks.pending > 0 ? `  checks ${p.checks.pass} ok, ${p.checks.fail} failed, ${p.checks.pending} waiting` : ''
      clear()
      out.write(`${t}  nodes up ${p.up}/${p.total}${pubs !== '' ? `  applied: ${pubs}` : ''}${checks}`.slice(0, Math.max(40, (out.columns > 0 ? out.columns : 120) - 1)))
      shown = true
    },
    end: clear
  }
}
