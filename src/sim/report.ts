// The HTML report of a simulation run: one self-contained file (inline CSS and SVG, no
// scripts, no network), readable in any browser and printable. Pure: SimResult in, HTML out,
// so the model engine renders its runs with the same code.

import type { PublishResult, SimResult } from './result.js'

const PALETTE = ['#2563eb', '#d97706', '#059669', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#92400e', '#475569']

export function escapeHtml (s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)
}

const esc = escapeHtml

export function formatMs (ms: number | undefined): string {
  if (ms === undefined) return '—'
  if (ms < 1000) return `${Math.round(ms)} ms`
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
}

export function formatBytes (b: number): string {
  if (b < 1024) return `${Math.round(b)} B`
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(b < 10 * 1024 ? 1 : 0)} KiB`
  if (b < 1024 ** 3) return `${(b / 1024 / 1024).toFixed(1)} MiB`
  return `${(b / 1024 ** 3).toFixed(2)} GiB`
}

/** 1, 2 or 5 times a power of ten: axis steps a person reads at a glance. */
export function niceStep (range: number, ticks = 5): number {
  if (!(range > 0)) return 1
  const raw = range / ticks
  const pow = 10 ** Math.floor(Math.log10(raw))
  const f = raw / pow
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow
}

interface Axis { max: number, step: number, format: (v: number) => string, label: string }

function axis (maxValue: number, format: (v: number) => string, label: string, ticks = 5): Axis {
  const step = niceStep(maxValue, ticks)
  return { max: Math.max(step, Math.ceil(maxValue / step - 1e-9) * step), step, format, label }
}

interface Frame { w: number, h: number, left: number, right: number, top: number, bottom: number }

const FRAME: Frame = { w: 1130, h: 320, left: 64, right: 16, top: 28, bottom: 44 }

function frame (x: Axis, y: Axis, f: Frame = FRAME): { px: (v: number) => number, py: (v: number) => number, svg: string } {
  const pw = f.w - f.left - f.right
  const ph = f.h - f.top - f.bottom
  const px = (v: number): number => f.left + (v / x.max) * pw
  const py = (v: number): number => f.top + ph - (v / y.max) * ph
  const parts: string[] = []
  for (let v = 0; v <= y.max + 1e-9; v += y.step) {
    parts.push(`<line x1="${f.left}" x2="${f.w - f.right}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" class="grid"/>`)
    parts.push(`<text x="${f.left - 8}" y="${(py(v) + 4).toFixed(1)}" class="tick" text-anchor="end">${esc(y.format(v))}</text>`)
  }
  for (let v = 0; v <= x.max + 1e-9; v += x.step) {
    parts.push(`<line x1="${px(v).toFixed(1)}" x2="${px(v).toFixed(1)}" y1="${f.top + ph}" y2="${f.top + ph + 5}" class="axis"/>`)
    parts.push(`<text x="${px(v).toFixed(1)}" y="${f.top + ph + 18}" class="tick" text-anchor="middle">${esc(x.format(v))}</text>`)
  }
  parts.push(`<line x1="${f.left}" x2="${f.w - f.right}" y1="${f.top + ph}" y2="${f.top + ph}" class="axis"/>`)
  parts.push(`<line x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${f.top + ph}" class="axis"/>`)
  parts.push(`<text x="${f.left + pw / 2}" y="${f.h - 6}" class="label" text-anchor="middle">${esc(x.label)}</text>`)
  parts.push(`<text x="14" y="${f.top + ph / 2}" class="label" text-anchor="middle" transform="rotate(-90 14 ${f.top + ph / 2})">${esc(y.label)}</text>`)
  return { px, py, svg: parts.join('') }
}

/** A step curve: the value holds until the next point. */
function stepPath (points: Array<[number, number]>, px: (v: number) => number, py: (v: number) => number, extendTo?: number): string {
  if (points.length === 0) return ''
  const out: string[] = []
  let prev: [number, number] | undefined
  for (const [x, y] of points) {
    if (prev === undefined) out.push(`M${px(x).toFixed(1)},${py(y).toFixed(1)}`)
    else out.push(`H${px(x).toFixed(1)}V${py(y).toFixed(1)}`)
    prev = [x, y]
  }
  if (extendTo !== undefined && prev !== undefined && extendTo > prev[0]) out.push(`H${px(extendTo).toFixed(1)}`)
  return out.join('')
}

function svg (body: string, f: Frame = FRAME, title = ''): string {
  return `<svg viewBox="0 0 ${f.w} ${f.h}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg">${body}</svg>`
}

function legend (items: Array<{ label: string, colour: string, dashed?: boolean }>): string {
  return `<div class="legend">${items.map((i) => `<span><i style="background:${i.colour}${i.dashed === true ? ';opacity:.5' : ''}"></i>${esc(i.label)}</span>`).join('')}</div>`
}

function colourOf (i: number): string {
  return PALETTE[i % PALETTE.length] as string
}

const seconds = (ms: number): string => {
  const s = ms / 1000
  return Number.isInteger(s) ? `${s} s` : `${s.toFixed(s < 1 ? 2 : 1)} s`
}

/** Coverage of each publish over scenario time, with the timeline's events as vertical marks. */
export function coverageChart (r: SimResult): string {
  const pubs = r.publishes.filter((p) => p.id !== 'trust')
  if (pubs.length === 0) return '<p class="muted">No publishes.</p>'
  const start = Math.min(0, ...pubs.map((p) => p.at))
  const maxT = Math.max(r.durationMs, ...pubs.flatMap((p) => p.coverage.map(([t]) => t)))
  const x = axis(maxT - start, (v) => seconds(v + start), 'scenario time')
  const y = axis(100, (v) => `${v}%`, 'targeted nodes that applied', 4)
  const { px, py, svg: grid } = frame(x, y)
  const marks = r.markers.filter((m) => m.do !== 'publish').map((m, i) => {
    const X = px(m.at - start).toFixed(1)
    return `<line x1="${X}" x2="${X}" y1="${FRAME.top}" y2="${FRAME.h - FRAME.bottom}" class="mark"/><text x="${(Number(X) + 3).toFixed(1)}" y="${FRAME.top - 14 + (i % 2) * 10}" class="marktext">${esc(`${m.do} (${m.id})`)}</text>`
  }).join('')
  const lines = pubs.map((p, i) => {
    const pts = p.coverage.map(([t, f]): [number, number] => [t - start, f * 100])
    const X = px(p.at - start).toFixed(1)
    return `<line x1="${X}" x2="${X}" y1="${py(0)}" y2="${py(100)}" stroke="${colourOf(i)}" class="pubmark"/>` +
      `<path d="${stepPath(pts, px, py, maxT - start)}" stroke="${colourOf(i)}" class="curve"/>`
  }).join('')
  return svg(grid + marks + lines, FRAME, 'coverage over time') + legend(pubs.map((p, i) => ({ label: `${p.id}: ${p.name} v${p.version} (published at ${seconds(p.at)})`, colour: colourOf(i) })))
}

const STAGE_COLOUR: Record<string, string> = { passed: '#16a34a', halted: '#dc2626', aborted: '#64748b', running: '#d97706', paused: '#d97706' }

/**
 * A staged publish's stages over scenario time: one bar per stage from the record that started
 * it to the one that ended it (green passed, red halted, grey aborted, amber still standing),
 * with the share of targeted nodes that applied the version drawn over them, and each
 * record signed by someone else than the evaluator (pause, resume, abort) marked.
 */
export function rolloutChart (r: SimResult, p: PublishResult): string {
  const ro = p.rollout
  if (ro === undefined) return ''
  const start = p.at
  const end = Math.max(r.durationMs, ...ro.stages.flatMap((s) => s.endedAt !== undefined ? [s.endedAt] : []))
  const x = axis(Math.max(1, end - start), (v) => seconds(v + start), 'scenario time')
  const y = axis(100, (v) => `${v}%`, 'targeted nodes', 4)
  const f: Frame = { ...FRAME, h: 260 }
  const { px, py, svg: grid } = frame(x, y, f)
  const rows = ro.stages.length
  const band = (py(0) - py(100)) / rows
  const bars = ro.stages.map((s, i) => {
    const top = py(100) + (rows - 1 - i) * band
    const label = `<text x="${f.left + 4}" y="${(top + band / 2 + 4).toFixed(1)}" class="marktext">${esc(`${s.text} · ${s.members} node${s.members === 1 ? '' : 's'}`)}</text>`
    if (s.startedAt === undefined) return label
    const x0 = px(s.startedAt - start)
    const x1 = px((s.endedAt ?? end) - start)
    const title = `<title>${esc(`stage ${i + 1} (${s.text}): ${s.members} nodes, ${seconds(s.startedAt)} to ${s.endedAt !== undefined ? seconds(s.endedAt) : 'the end'}, ${s.outcome ?? ''}`)}</title>`
    return `<g>${title}<rect x="${x0.toFixed(1)}" y="${(top + 3).toFixed(1)}" width="${Math.max(2, x1 - x0).toFixed(1)}" height="${(band - 6).toFixed(1)}" fill="${STAGE_COLOUR[s.outcome ?? 'running']}" opacity="0.35"/></g>${label}`
  }).join('')
  const curve = `<path d="${stepPath(p.coverage.filter(([t]) => t >= start).map(([t, v]): [number, number] => [t - start, v * 100]), px, py, end - start)}" stroke="#1d4ed8" class="curve"/>`
  const marks = ro.steps.filter((s) => s.action === 'pause' || s.action === 'resume' || s.action === 'abort' || s.action === 'halt').map((s, i) => {
    const X = px(s.at - start).toFixed(1)
    return `<line x1="${X}" x2="${X}" y1="${f.top}" y2="${f.h - f.bottom}" class="mark"/><text x="${(Number(X) + 3).toFixed(1)}" y="${f.top - 12 + (i % 2) * 10}" class="marktext">${esc(`${s.action} by ${s.signer}`)}</text>`
  }).join('')
  const kill = r.markers.filter((m) => m.do === 'kill' || m.do === 'partition' || m.do === 'heal').filter((m) => m.at >= start).map((m) => {
    const X = px(m.at - start).toFixed(1)
    return `<line x1="${X}" x2="${X}" y1="${f.top}" y2="${f.h - f.bottom}" class="mark"/><text x="${(Number(X) + 3).toFixed(1)}" y="${f.h - f.bottom - 4}" class="marktext">${esc(m.id)}</text>`
  }).join('')
  const h = p.health
  const summary = [
    `${ro.state}${ro.rolledBack ? ', rolled back' : ''} at stage ${ro.stage + 1}/${ro.stages.length}${ro.reason !== undefined ? `: ${ro.reason}` : ''}`,
    ...(ro.doneMs !== undefined ? [`done ${formatMs(ro.doneMs)} after the publish (bakes ${formatMs(ro.bakeMs * ro.stages.length)} in all)`] : []),
    ...(h !== undefined ? [`blast radius ${h.blastRadius} node${h.blastRadius === 1 ? '' : 's'} (${h.blastRadiusPercent.toFixed(1)}%)`, h.allHealthyMs !== undefined ? `every node healthy ${formatMs(h.allHealthyMs)} after the publish` : 'not every node healthy by the end'] : [])
  ]
  return `<h3>${esc(`${p.id}: ${p.name} v${p.version}, --rollout ${ro.spec}`)}</h3><p>${esc(summary.join(' · '))}</p>` +
    svg(grid + bars + curve + marks + kill, f, `stages of ${p.id}`) +
    legend([{ label: 'passed', colour: STAGE_COLOUR.passed as string }, { label: 'halted', colour: STAGE_COLOUR.halted as string }, { label: 'standing (running or paused)', colour: STAGE_COLOUR.running as string }, { label: 'aborted', colour: STAGE_COLOUR.aborted as string }, { label: 'targeted nodes that applied it', colour: '#1d4ed8' }])
}

/** Distribution of time-to-apply among the nodes online at the publish. */
export function latencyCdfChart (r: SimResult): string {
  const pubs = r.publishes.filter((p) => p.id !== 'trust' && p.latencies.length > 0)
  if (pubs.length === 0) return '<p class="muted">No node applied a publish while online.</p>'
  const maxL = Math.max(...pubs.map((p) => p.latencies[p.latencies.length - 1] as number), 1)
  const x = axis(maxL, (v) => formatMs(v), 'time from publish to apply')
  const y = axis(100, (v) => `${v}%`, 'of nodes that applied', 4)
  const { px, py, svg: grid } = frame(x, y)
  const lines = pubs.map((p) => {
    const n = p.latencies.length
    const pts: Array<[number, number]> = [[0, 0], ...p.latencies.map((l, k): [number, number] => [l, ((k + 1) / n) * 100])]
    return `<path d="${stepPath(pts, px, py, x.max)}" stroke="${colourOf(r.publishes.filter((q) => q.id !== 'trust').indexOf(p))}" class="curve"/>` +
      p.latencies.map((l, k) => `<circle cx="${px(l).toFixed(1)}" cy="${py(((k + 1) / n) * 100).toFixed(1)}" r="2.2" fill="${colourOf(r.publishes.filter((q) => q.id !== 'trust').indexOf(p))}"/>`).join('')
  }).join('')
  const p99 = `<line x1="${FRAME.left}" x2="${FRAME.w - FRAME.right}" y1="${py(99).toFixed(1)}" y2="${py(99).toFixed(1)}" class="mark"/><text x="${FRAME.w - FRAME.right - 4}" y="${(py(99) - 4).toFixed(1)}" class="marktext" text-anchor="end">99%</text>`
  return svg(grid + p99 + lines, FRAME, 'latency CDF') + legend(pubs.map((p) => ({ label: `${p.id}: ${p.name} v${p.version}`, colour: colourOf(r.publishes.filter((q) => q.id !== 'trust').indexOf(p)) })))
}

/** Bytes each node sent over the run: gossip and sync stacked, publishers marked. */
export function bytesChart (r: SimResult): string {
  const nodes = r.nodes
  if (nodes.length === 0) return ''
  const total = (n: (typeof nodes)[number]): number => n.traffic.gossipBytesSent + n.traffic.syncBytesSent
  const maxB = Math.max(1, ...nodes.map(total))
  const unit = maxB >= 1024 * 1024 ? 1024 * 1024 : 1024
  const unitName = unit === 1024 ? 'KiB' : 'MiB'
  const y = axis(maxB / unit, (v) => `${Number(v.toFixed(2))}`, `${unitName} sent`)
  const x = axis(nodes.length, () => '', '')
  const f = FRAME
  const pw = f.w - f.left - f.right
  const { py, svg: gridAll } = frame(x, y)
  // Keep the horizontal grid; the x axis is nodes, labelled below.
  const grid = gridAll.replace(/<text[^>]*class="tick" text-anchor="middle">[^<]*<\/text>/g, '')
  const bw = pw / nodes.length
  const publishers = new Set(r.publishes.filter((p) => p.id !== 'trust').map((p) => p.from))
  const bars = nodes.map((n, i) => {
    const x0 = f.left + i * bw + Math.min(2, bw * 0.15)
    const w = Math.max(1, bw - 2 * Math.min(2, bw * 0.15))
    const g = n.traffic.gossipBytesSent / unit
    const s = n.traffic.syncBytesSent / unit
    const title = `<title>${esc(`${n.name} (${Object.entries(n.tags).map(([k, v]) => `${k}=${v}`).join(', ')}): gossip ${formatBytes(n.traffic.gossipBytesSent)}, sync ${formatBytes(n.traffic.syncBytesSent)} sent; ${n.traffic.policyDuplicates} duplicate policy messages`)}</title>`
    const label = nodes.length <= 40 ? `<text x="${(x0 + w / 2).toFixed(1)}" y="${f.h - f.bottom + 14}" class="tick" text-anchor="middle">${n.index}</text>` : ''
    const star = publishers.has(n.name) ? `<text x="${(x0 + w / 2).toFixed(1)}" y="${(py(g + s) - 4).toFixed(1)}" class="marktext" text-anchor="middle">★</text>` : ''
    return `<g>${title}<rect x="${x0.toFixed(1)}" y="${py(g).toFixed(1)}" width="${w.toFixed(1)}" height="${(py(0) - py(g)).toFixed(1)}" fill="${PALETTE[0]}"${n.up ? '' : ' opacity="0.45"'}/>` +
      `<rect x="${x0.toFixed(1)}" y="${py(g + s).toFixed(1)}" width="${w.toFixed(1)}" height="${(py(g) - py(g + s)).toFixed(1)}" fill="${PALETTE[1]}"${n.up ? '' : ' opacity="0.45"'}/>${star}${label}</g>`
  }).join('')
  const xl = `<text x="${f.left + pw / 2}" y="${f.h - 6}" class="label" text-anchor="middle">node index (★ published; faded: not running at the end)</text>`
  return svg(grid + bars + xl, f, 'bytes per node') + legend([{ label: 'gossip (gossipsub RPCs: policies, receipts, control)', colour: PALETTE[0] as string }, { label: 'anti-entropy sync', colour: PALETTE[1] as string }])
}

function viaText (p: PublishResult): string {
  const order = ['gossip', 'sync', 'local', 'disk', 'api'] as const
  return order.filter((k) => (p.via[k] ?? 0) > 0).map((k) => `${p.via[k]} ${k}`).join(', ') || '—'
}

function publishRows (r: SimResult): string {
  const visible = r.publishes.filter((q) => q.id !== 'trust')
  return r.publishes.map((p) => {
    const colour = p.id === 'trust' ? '#94a3b8' : colourOf(visible.indexOf(p))
    const t = p.times
    const conflict = p.conflict !== undefined ? `<br><span class="${p.conflict.won ? 'ok' : 'warn'}">${p.conflict.won ? 'won' : 'lost'} a same-version conflict with ${esc(p.conflict.with)}</span>` : ''
    const tr = p.traffic
    const notes = [
      ...(p.catchUp.length > 0 ? [`${p.catchUp.length} caught up after (re)start, slowest in ${formatMs(Math.max(...p.catchUp.map((c) => c.ms)))}`] : []),
      // A rollout that did not finish leaves nodes beyond its stage on the previous version: by design, not missing.
      ...(p.missing.length > 0 && p.rollout !== undefined && p.rollout.state !== 'done' ? [`<span class="muted">${p.missing.length} beyond the stage it ${p.rollout.state === 'running' || p.rollout.state === 'paused' ? 'stands at' : `was ${p.rollout.state} at`}</span>`] : []),
      ...(p.missing.length > 0 && (p.rollout === undefined || p.rollout.state === 'done') ? [`<span class="bad">missing on ${esc(p.missing.slice(0, 6).join(', '))}${p.missing.length > 6 ? ' …' : ''}</span>`] : []),
      ...(p.failures.length > 0 ? [`<span class="bad">${p.failures.length} failed apply(s)</span>`] : []),
      ...(p.forkedBy !== undefined ? [`<span class="warn">held back as a fork by ${p.forkedBy.length} node(s): it does not extend what they hold</span>`] : []),
      ...(p.rollout !== undefined ? [`<span class="${p.rollout.state === 'done' ? 'ok' : 'warn'}">rollout ${esc(p.rollout.spec)}: ${p.rollout.state} at stage ${p.rollout.stage + 1}/${p.rollout.stages.length}</span>`] : []),
      ...(p.health !== undefined ? [`<span class="${p.health.unhealthy > 0 ? 'bad' : 'muted'}">blast radius ${p.health.blastRadius}, ${p.health.unhealthy} unhealthy</span>`] : [])
    ]
    return `<tr><td><i class="dot" style="background:${colour}"></i><b>${esc(p.name)}</b> v${p.version}<br><span class="muted">${esc(p.id)} · <span class="mono">${esc(p.hash.replace(/^sha256:/, '').slice(0, 12))}</span></span>${conflict}</td>` +
      `<td>${seconds(p.at)} from ${esc(p.from)}<br><span class="muted">signed by ${esc(p.signer)}</span></td>` +
      `<td class="num">${p.applied}/${p.targeted}</td>` +
      `<td class="num">${formatMs(t.t50)}</td><td class="num">${formatMs(t.t90)}</td><td class="num">${formatMs(t.t99)}</td><td class="num"><b>${formatMs(t.t100)}</b></td>` +
      `<td class="num">${p.held?.t100 !== undefined ? formatMs(p.held.t100) : '—'}<br><span class="muted">${p.applyMs !== undefined ? `apply ${formatMs(p.applyMs.p50)}` : ''}</span></td>` +
      `<td>${esc(viaText(p))}</td>` +
      `<td class="num">${tr !== undefined ? tr.duplicatesPerNode.toFixed(1) : '—'}</td>` +
      `<td class="num">${tr?.publisherBytes !== undefined ? `${formatBytes(tr.publisherBytes)} <span class="muted">publisher</span><br>` : ''}<span class="muted">${tr !== undefined ? `${formatBytes(tr.totalBytes)} all` : ''}</span>` +
      `${tr?.receivedPerNode !== undefined ? `<br>${formatBytes(tr.receivedPerNode.mean)} <span class="muted">in per node${tr.receivedPerNode.meanX !== undefined ? ` (${tr.receivedPerNode.meanX.toFixed(2)}× the envelope, max ${(tr.receivedPerNode.maxX ?? 0).toFixed(2)}×)` : ''}</span>` : ''}</td>` +
      `<td>${notes.join('<br>') || '<span class="muted">—</span>'}</td></tr>`
  }).join('')
}

/** The figures a reader wants first: how fast, how complete, how it settled. */
function headline (r: SimResult): string {
  const pubs = r.publishes.filter((p) => p.id !== 'trust')
  const cards: Array<[string, string, string]> = []
  const t100 = pubs.flatMap((p) => p.times.t100 !== undefined ? [p.times.t100] : [])
  const t99 = pubs.flatMap((p) => p.times.t99 !== undefined ? [p.times.t99] : [])
  if (pubs.length > 0) cards.push(['slowest T100', t100.length === pubs.length ? formatMs(Math.max(...t100)) : 'not reached', `every online targeted node applied, worst of ${pubs.length} publish${pubs.length === 1 ? '' : 'es'}`])
  if (t99.length > 0) cards.push(['best T99', formatMs(Math.min(...t99)), '99% of online targeted nodes applied'])
  const via = pubs.reduce((acc, p) => { acc.gossip += p.via.gossip ?? 0; acc.sync += p.via.sync ?? 0; return acc }, { gossip: 0, sync: 0 })
  if (via.gossip + via.sync > 0) cards.push(['by gossip', `${Math.round((via.gossip / (via.gossip + via.sync)) * 100)}%`, `${via.gossip} deliveries by gossip, ${via.sync} by anti-entropy sync`])
  const conv = r.convergence.filter((c) => c.after !== 'trust')
  const last = conv[conv.length - 1]
  if (last !== undefined) cards.push(['one version', last.ms !== undefined ? formatMs(last.ms) : 'never', `after ${last.after}, every running node on the newest of everything`])
  const dups = pubs.flatMap((p) => p.traffic !== undefined ? [p.traffic.duplicatesPerNode] : [])
  if (dups.length > 0) cards.push(['duplicates', (dups.reduce((a, b) => a + b, 0) / dups.length).toFixed(1), 'extra copies of a policy message each node received, per publish'])
  return cards.length === 0 ? '' : `<div class="cards">${cards.map(([k, v, d]) => `<div><b>${esc(k)}</b><span>${esc(v)}</span><small>${esc(d)}</small></div>`).join('')}</div>`
}

const STYLE = `
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#0f172a;background:#f8fafc;margin:0}
main{max-width:1180px;margin:0 auto;padding:28px 24px 60px}h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 8px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
p{margin:6px 0}.muted{color:#64748b}.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.badge{display:inline-block;padding:3px 12px;border-radius:999px;font-weight:700;font-size:14px;vertical-align:middle;margin-left:10px}
.badge.engine{background:#e0e7ff;color:#3730a3}
.pass{background:#dcfce7;color:#166534}.fail{background:#fee2e2;color:#991b1b}
.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:6px 18px;margin:14px 0;padding:12px 16px;background:#fff;border:1px solid #e2e8f0;border-radius:8px}
.meta div b{display:block;font-size:12px;color:#64748b;font-weight:600;text-transform:uppercase;letter-spacing:.03em}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e2e8f0;border-radius:8px;font-size:13px}.wide{overflow-x:auto}
th,td{padding:5px 7px;border-bottom:1px solid #eef2f7;text-align:left;vertical-align:top}th{background:#f1f5f9;font-size:12px;color:#334155}
td.num,th.num{text-align:right;white-space:nowrap}.ok{color:#166534}.bad{color:#b91c1c}.warn{color:#b45309}
.checks li{margin:5px 0;list-style:none;padding-left:70px;text-indent:-70px}.checks{padding:0}.checks b{display:inline-block;width:70px;text-indent:0;white-space:nowrap}
.nowrap{white-space:nowrap}.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:10px;margin:16px 0}
.cards div{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 14px}.cards b{display:block;font-size:12px;color:#64748b;text-transform:uppercase;letter-spacing:.03em}
.cards span{display:block;font-size:26px;font-weight:700;margin:2px 0}.cards small{color:#64748b;font-size:12px;line-height:1.3;display:block}
svg{width:100%;height:auto;background:#fff;border:1px solid #e2e8f0;border-radius:8px}
.grid{stroke:#e2e8f0;stroke-width:1}.axis{stroke:#94a3b8;stroke-width:1}.tick{font-size:11px;fill:#475569}.label{font-size:12px;fill:#334155}
.curve{fill:none;stroke-width:2.2}.mark{stroke:#94a3b8;stroke-dasharray:4 3}.pubmark{stroke-dasharray:2 3;stroke-width:1}.marktext{font-size:10.5px;fill:#475569}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12.5px;margin:6px 2px 0}.legend i,.dot{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
details{margin-top:10px}summary{cursor:pointer;color:#334155}footer{margin-top:40px;font-size:12px;color:#64748b}
`

/** Which engine ran, and on what: side-by-side reports of one scenario differ here. */
function engineText (e: SimResult['engine']): string {
  if (e.kind === 'model') {
    const host = e.host?.kind === 'shared' ? `every agent sharing ${e.host.cores} core${e.host.cores === 1 ? '' : 's'} (as the live engine runs them)` : 'one agent per host'
    return `model (discrete-event simulation), ${host}`
  }
  return `live${e.workers !== undefined ? `, ${e.workers} worker process${e.workers === 1 ? '' : 'es'}` : ''}${e.transport !== undefined ? `, ${e.transport} on 127.0.0.1` : ''}`
}

export function renderReport (r: SimResult): string {
  const s = r.scenario
  const passed = r.passed
  const meta: Array<[string, string]> = [
    ['nodes', `${s.nodes}`],
    ['topology', s.topology],
    ['network', s.network],
    ['engine', engineText(r.engine)],
    ...(r.engine.load !== undefined ? [['machine load', `${r.engine.load[0].toFixed(1)} at the start, ${r.engine.load[1].toFixed(1)} at the end (${r.engine.cpus ?? '?'} CPUs); figures stretch on a busy machine`] as [string, string]] : []),
    ['seed', `${s.seed}`],
    ['setup', `${formatMs(r.setupMs)}${r.agentStart !== undefined ? ` (agent start: mean ${formatMs(r.agentStart.meanMs)}, max ${formatMs(r.agentStart.maxMs)})` : ''}`],
    ['timeline ran', formatMs(r.durationMs)],
    ...(r.memory !== undefined ? [['memory', `${formatBytes(r.memory.rssBytes)} RSS${r.memory.perAgentBytes !== undefined ? `, ${formatBytes(r.memory.perAgentBytes)} per agent` : ''}`] as [string, string]] : []),
    ['started', r.startedAt.replace('T', ' ').slice(0, 19) + ' UTC']
  ]
  const checks = r.checks.length === 0
    ? '<p class="muted">This scenario declares no checks.</p>'
    : `<ul class="checks">${r.checks.map((c) => `<li><b class="${c.status === 'pass' ? 'ok' : 'bad'}">${c.status === 'pass' ? '✓ pass' : '✗ fail'}</b> ${esc(c.text)} <span class="muted">— ${esc(c.detail)}</span></li>`).join('')}</ul>`
  const convergence = r.convergence.length === 0
    ? ''
    : `<h2>Time to one version</h2><p class="muted">After each event, how long until every running node held the newest version of every policy.</p>
<table><tr><th>after</th><th class="num">at</th><th class="num">one version after</th></tr>${r.convergence.map((c) => `<tr><td>${esc(c.after)}</td><td class="num">${seconds(c.at)}</td><td class="num">${c.ms !== undefined ? formatMs(c.ms) : '<span class="bad">not before the run ended</span>'}</td></tr>`).join('')}</table>`
  const events = r.markers.length === 0
    ? ''
    : `<h2>Timeline</h2><table><tr><th class="num">at</th><th>event</th><th>what happened</th></tr>${r.markers.map((m) => `<tr><td class="num">${seconds(m.at)}</td><td>${esc(m.do)} <span class="muted">(${esc(m.id)})</span></td><td>${esc(m.detail)}</td></tr>`).join('')}</table>`
  const nodes = `<details><summary>Every node (${r.nodes.length}): traffic and what it holds</summary><table><tr><th>node</th><th>tags</th><th>state</th><th class="num">gossip sent</th><th class="num">sync sent</th><th class="num">received</th><th class="num">dup. policy msgs</th><th>holds</th></tr>${r.nodes.map((n) => `<tr><td>${esc(n.name)}<br><span class="muted mono">${esc((n.peerId ?? '').slice(-10))}</span></td><td>${esc(Object.entries(n.tags).map(([k, v]) => `${k}=${v}`).join(', '))}</td><td>${n.up ? 'running' : '<span class="warn">stopped</span>'}${n.restarts > 0 ? `, ${n.restarts} restart(s)` : ''}</td><td class="num">${formatBytes(n.traffic.gossipBytesSent)}</td><td class="num">${formatBytes(n.traffic.syncBytesSent)}</td><td class="num">${formatBytes(n.traffic.gossipBytesReceived + n.traffic.syncBytesReceived)}</td><td class="num">${n.traffic.policyDuplicates}</td><td>${Object.entries(n.policies).map(([name, p]) => `${esc(name)} v${p.version}${p.via !== undefined ? ` <span class="muted">(${p.via})</span>` : ''}`).join('<br>')}</td></tr>`).join('')}</table></details>`
  const failures = (r.failures.length === 0 ? '' : `<h2>Failures</h2><ul>${r.failures.slice(0, 50).map((f) => `<li class="bad">${esc(f)}</li>`).join('')}${r.failures.length > 50 ? `<li>… and ${r.failures.length - 50} more (results.json has them all)</li>` : ''}</ul>`) +
    ((r.warnings ?? []).length === 0 ? '' : `<h2>Warnings</h2><ul>${(r.warnings ?? []).slice(0, 20).map((f) => `<li class="warn">${esc(f)}</li>`).join('')}</ul>`)
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(`Grapevine simulation: ${s.name} (${r.engine.kind} engine)`)}</title><style>${STYLE}</style></head>
<body><main>
<h1>${esc(s.name)} <span class="badge ${passed ? 'pass' : 'fail'}">${passed ? 'PASSED' : 'FAILED'}</span> <span class="badge engine">${r.engine.kind} engine</span></h1>
${s.description !== undefined ? `<p>${esc(s.description)}</p>` : ''}
<p class="muted">${esc(`${s.nodes} nodes · ${s.topology} · ${s.network} · ${engineText(r.engine)} · seed ${s.seed} · ${r.startedAt.replace('T', ' ').slice(0, 19)} UTC`)}</p>
<p class="muted mono">${esc(s.file)}</p>
${headline(r)}
<h2>Checks</h2>${checks}
<h2>Publishes</h2>
<p class="muted">T50…T100: time from the publish until that share of the targeted nodes that were running throughout had applied it. "All held": until every one of them held the envelope (gossip or sync), before applying; "apply": the median time the applier took. "Sent": bytes sent during the publish's window by the publisher and by all nodes. Nodes that (re)started later are counted under catch-up, from their start.</p>
<div class="wide"><table><tr><th>policy</th><th>published</th><th class="num">applied</th><th class="num">T50</th><th class="num">T90</th><th class="num">T99</th><th class="num">T100</th><th class="num">all held</th><th>how it arrived</th><th class="num">dup./node</th><th class="num">sent</th><th>late nodes, problems</th></tr>
${publishRows(r)}</table></div>
<h2>Coverage over time</h2><p class="muted">Share of targeted nodes (running at the end) holding each publish, against scenario time; dashed lines are timeline events.</p>
${coverageChart(r)}
${r.publishes.some((p) => p.rollout !== undefined) ? `<h2>Staged rollouts</h2><p class="muted">Each stage from the record that started it to the one that ended it; the line is the share of targeted nodes that had applied the version.</p>${r.publishes.map((p) => rolloutChart(r, p)).join('')}` : ''}
<h2>Latency distribution</h2><p class="muted">Time from publish to apply on each node that was online throughout (one dot per node).</p>
${latencyCdfChart(r)}
<h2>Bytes sent per node</h2><p class="muted">Over the whole run, including receipts, presence beacons and gossipsub control traffic.</p>
${bytesChart(r)}
${convergence}
${events}
<h2>Nodes</h2>${nodes}
${failures}
<h2>Setup</h2><div class="meta">${meta.map(([k, v]) => `<div><b>${esc(k)}</b>${esc(v)}</div>`).join('')}</div>
<footer>Grapevine simulation report · format ${r.format} · ${esc(r.engine.node ?? '')} · results.json beside this file holds every figure.</footer>
</main></body></html>
`
}
