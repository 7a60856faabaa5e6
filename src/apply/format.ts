import type { Action, ApplyReport, ResourceResult } from './report.js'

type Paint = (text: string) => string

/** The few colours the report uses; picocolors' `createColors()` fits. */
export interface Palette {
  green: Paint
  yellow: Paint
  red: Paint
  cyan: Paint
  magenta: Paint
  dim: Paint
  bold: Paint
}

export const plainPalette: Palette = { green: String, yellow: String, red: String, cyan: String, magenta: String, dim: String, bold: String }

export interface FormatOptions {
  palette?: Palette
  /** List unchanged resources too. */
  verbose?: boolean
  /** Where the policy was applied, for the header (`--root`). */
  root?: string
}

const PLAN_WORDS: Record<Action, string> = { create: 'create', modify: 'modify', delete: 'delete', run: 'run', none: 'unchanged' }
const APPLY_WORDS: Record<Action, string> = { create: 'created', modify: 'modified', delete: 'deleted', run: 'ran', none: 'unchanged' }
const SYMBOLS: Record<Action, string> = { create: '+', modify: '~', delete: '-', run: '>', none: '=' }

/** The status word, padded before it is painted so columns line up with or without colour. */
function label (r: ResourceResult, dryRun: boolean, p: Palette): string {
  const pad = (t: string): string => t.padEnd(11)
  if (r.status === 'failed') return p.red(p.bold(pad('! failed')))
  if (r.status === 'skipped') return p.dim(pad('  skipped'))
  if (r.status === 'unknown') return p.magenta(pad(`? ${dryRun ? 'maybe run' : 'unknown'}`))
  const word = pad(`${SYMBOLS[r.action]} ${(dryRun ? PLAN_WORDS : APPLY_WORDS)[r.action]}`)
  switch (r.action) {
    case 'create': return p.green(word)
    case 'modify': return p.yellow(word)
    case 'delete': return p.red(word)
    case 'run': return p.cyan(word)
    case 'none': return p.dim(word)
  }
}

/** Summary words in a fixed order, e.g. `2 to create, 1 failed, 5 unchanged`. */
export function summarise (report: ApplyReport): string {
  const n = { create: 0, modify: 0, delete: 0, run: 0, none: 0 }
  for (const r of report.resources) if (r.status === 'ok') n[r.action]++
  const parts: string[] = []
  for (const a of ['create', 'modify', 'delete', 'run'] as const) {
    if (n[a] > 0) parts.push(report.dryRun ? `${n[a]} to ${a}` : `${n[a]} ${APPLY_WORDS[a]}`)
  }
  if (report.counts.unknown > 0) parts.push(`${report.counts.unknown} may run`)
  if (report.counts.failed > 0) parts.push(`${report.counts.failed} failed`)
  if (report.counts.skipped > 0) parts.push(`${report.counts.skipped} skipped`)
  parts.push(`${n.none} unchanged`)
  return parts.join(', ')
}

const indent = (text: string, by = '      '): string[] => text.replace(/\n$/, '').split('\n').map((l) => by + l)

/**
 * The report for people: a header, then one line per resource that needs or got attention
 * (every resource with `verbose`), each followed by its changes, diff, warnings or error.
 */
export function formatReport (report: ApplyReport, opts: FormatOptions = {}): string[] {
  const p = opts.palette ?? plainPalette
  const shown = report.resources.filter((r) => opts.verbose === true || r.action !== 'none' || r.status !== 'ok' || (r.warnings?.length ?? 0) > 0)
  const idWidth = Math.min(24, Math.max(0, ...shown.map((r) => r.id.length)))
  const where = opts.root !== undefined && opts.root !== '/' ? ` under ${opts.root}` : ''
  const seconds = (report.durationMs / 1000).toFixed(2)
  const lines = [report.dryRun
    ? `${p.bold(`plan for "${report.policy}"`)}${where}: ${summarise(report)} (nothing was changed)`
    : `${p.bold(`applied "${report.policy}"`)}${where}: ${summarise(report)} in ${seconds} s${report.aborted === true ? p.red(' (aborted)') : ''}`]
  for (const r of shown) {
    const subject = r.path ?? r.name
    const what = subject ?? (r.reason ?? '')
    lines.push(`  ${label(r, report.dryRun, p)} ${r.type.padEnd(9)} ${r.id.padEnd(idWidth)}  ${what}`.trimEnd())
    if (subject !== undefined && r.reason !== undefined) lines.push(...indent(r.reason))
    for (const c of r.changes ?? []) {
      // A removal says what goes (a package's version), a creation what comes.
      if (r.action === 'create' || r.action === 'delete' || c.from === undefined || c.to === undefined) lines.push(p.dim(`      ${c.field}: ${c.to ?? c.from ?? ''}`))
      else lines.push(`      ${c.field}: ${p.red(c.from)} -> ${p.green(c.to ?? '')}`)
    }
    if (r.diff !== undefined) {
      for (const l of indent(r.diff)) {
        const body = l.slice(6)
        lines.push(body.startsWith('+') && !body.startsWith('+++') ? p.green(l) : body.startsWith('-') && !body.startsWith('---') ? p.red(l) : body.startsWith('@@') ? p.cyan(l) : l)
      }
    }
    for (const w of r.warnings ?? []) lines.push(p.yellow(`      warning: ${w}`))
    if (r.error !== undefined) lines.push(...indent(`${r.error.name}: ${r.error.message}`).map((l) => p.red(l)))
  }
  lines.push(...formatChecks(report, p))
  return lines
}

/**
 * The health checks: `healthy` or `unhealthy` with the failing checks' ids, then one line per
 * check, each failing one followed by its output tail. A plan's checks are labelled as checks
 * of the current state, since the plan changed nothing before running them.
 */
export function formatChecks (report: ApplyReport, p: Palette = plainPalette): string[] {
  const checks = report.checks
  if (checks === undefined || report.health === undefined) return []
  const failed = checks.filter((c) => !c.passed)
  const of = report.dryRun ? 'checks of the current state (plan changes nothing first)' : 'checks after the apply'
  const lines = [failed.length === 0
    ? `${p.bold('health:')} ${p.green('healthy')}, ${checks.length} ${of} passed`
    : `${p.bold('health:')} ${p.red(p.bold('unhealthy'))}, ${failed.length} of ${checks.length} ${of} failed: ${failed.map((c) => c.id).join(', ')}`]
  const idWidth = Math.min(24, Math.max(0, ...checks.map((c) => c.id.length)))
  for (const c of checks) {
    const word = c.passed ? p.green('✓ passed'.padEnd(11)) : p.red(p.bold('! failed'.padEnd(11)))
    const tries = c.attempts > 1 ? ` (${c.attempts} attempts)` : ''
    lines.push(`  ${word} ${`check ${c.type}`.padEnd(10)} ${c.id.padEnd(idWidth)}  ${c.message}${tries}`)
    if (!c.passed && c.output !== undefined) lines.push(...indent(c.output).map((l) => p.dim(l)))
  }
  return lines
}
