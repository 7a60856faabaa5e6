// Log-log SVG line charts for the scale sweep (nodes on x, time or bytes on y), with dashed
// reference lines such as the physical limit. Pure: series in, SVG out. The run report's
// linear charts live in ../report.ts; its HTML helpers are reused here.

import { escapeHtml as esc } from '../report.js'

export interface Series {
  label: string
  points: Array<[number, number]>
  colour: string
  dashed?: boolean
}

const W = 760
const H = 360
const L = 78
const R = 190
const T = 24
const B = 48

function decades (min: number, max: number): number[] {
  const out: number[] = []
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e)
  return out
}

/** A log-log chart; values ≤ 0 or not finite are left out. */
export function logLogChart (series: Series[], opts: { title: string, x: string, y: string, formatX: (v: number) => string, formatY: (v: number) => string }): string {
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(y))
  if (pts.length === 0) return ''
  const xs = decades(Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0])))
  const ys = decades(Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1])))
  const x0 = Math.log10(xs[0] as number)
  const x1 = Math.log10(xs[xs.length - 1] as number)
  const y0 = Math.log10(ys[0] as number)
  const y1 = Math.log10(ys[ys.length - 1] as number)
  const pw = W - L - R
  const ph = H - T - B
  const px = (v: number): number => L + (x1 === x0 ? 0.5 : (Math.log10(v) - x0) / (x1 - x0)) * pw
  const py = (v: number): number => T + ph - (y1 === y0 ? 0.5 : (Math.log10(v) - y0) / (y1 - y0)) * ph
  const parts: string[] = []
  for (const v of ys) {
    parts.push(`<line x1="${L}" x2="${L + pw}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#e5e7eb"/>`)
    parts.push(`<text x="${L - 6}" y="${(py(v) + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="#374151">${esc(opts.formatY(v))}</text>`)
  }
  for (const v of xs) {
    parts.push(`<line x1="${px(v).toFixed(1)}" x2="${px(v).toFixed(1)}" y1="${T}" y2="${T + ph}" stroke="#f3f4f6"/>`)
    parts.push(`<text x="${px(v).toFixed(1)}" y="${T + ph + 16}" font-size="11" text-anchor="middle" fill="#374151">${esc(opts.formatX(v))}</text>`)
  }
  parts.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#9ca3af"/>`)
  parts.push(`<text x="${L + pw / 2}" y="${H - 8}" font-size="12" text-anchor="middle">${esc(opts.x)}</text>`)
  parts.push(`<text x="16" y="${T + ph / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${T + ph / 2})">${esc(opts.y)}</text>`)
  series.forEach((s, i) => {
    const sp = s.points.filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(y))
    if (sp.length === 0) return
    const d = sp.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join('')
    parts.push(`<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`)
    if (s.dashed !== true) for (const [x, y] of sp) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${s.colour}"/>`)
    const ly = T + 14 + i * 18
    parts.push(`<line x1="${L + pw + 12}" x2="${L + pw + 34}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.colour}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`)
    parts.push(`<text x="${L + pw + 40}" y="${ly}" font-size="11">${esc(s.label)}</text>`)
  })
  return `<figure><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(opts.title)}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">${parts.join('')}</svg><figcaption>${esc(opts.title)}</figcaption></figure>`
}

/** Grouped horizontal bars: one row per label, one bar per series (calibration, bytes per node). */
export function barChart (rows: Array<{ label: string, values: number[] }>, series: Array<{ label: string, colour: string }>, opts: { title: string, format: (v: number) => string }): string {
  const max = Math.max(1e-9, ...rows.flatMap((r) => r.values.filter(Number.isFinite)))
  const bh = 14
  const rh = series.length * bh + 12
  const h = T + rows.length * rh + 30
  const pw = W - 200 - 80
  const parts: string[] = []
  rows.forEach((r, i) => {
    const y = T + i * rh
    parts.push(`<text x="190" y="${y + rh / 2}" font-size="12" text-anchor="end">${esc(r.label)}</text>`)
    r.values.forEach((v, j) => {
      if (!Number.isFinite(v)) return
      const w = (v / max) * pw
      const s = series[j] as { colour: string }
      parts.push(`<rect x="200" y="${y + j * bh}" width="${w.toFixed(1)}" height="${bh - 2}" fill="${s.colour}"/>`)
      parts.push(`<text x="${(204 + w).toFixed(1)}" y="${y + j * bh + 11}" font-size="11">${esc(opts.format(v))}</text>`)
    })
  })
  series.forEach((s, j) => {
    parts.push(`<rect x="${200 + j * 160}" y="${h - 20}" width="12" height="12" fill="${s.colour}"/><text x="${216 + j * 160}" y="${h - 10}" font-size="11">${esc(s.label)}</text>`)
  })
  return `<figure><svg viewBox="0 0 ${W} ${h}" role="img" aria-label="${esc(opts.title)}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">${parts.join('')}</svg><figcaption>${esc(opts.title)}</figcaption></figure>`
}
