/**
 * Debian version order (deb-version(7)): epoch, then upstream version and revision compared
 * piece by piece, non-digits by a character order where `~` sorts before everything (even the
 * end), then digit runs as numbers. Pure, so upgrade or downgrade is decided without a process.
 */
export function compareVersions (a: string, b: string): number {
  const [ea, ua, ra] = split(a)
  const [eb, ub, rb] = split(b)
  if (ea !== eb) return ea < eb ? -1 : 1
  return compareFragment(ua, ub) || compareFragment(ra, rb)
}

function split (v: string): [number, string, string] {
  const colon = v.indexOf(':')
  const epoch = colon > 0 ? Number(v.slice(0, colon)) : 0
  const rest = colon > 0 ? v.slice(colon + 1) : v
  const dash = rest.lastIndexOf('-')
  return dash >= 0 ? [epoch, rest.slice(0, dash), rest.slice(dash + 1)] : [epoch, rest, '']
}

/** `~` first, then the end of the string, then letters, then everything else. */
function order (c: string | undefined): number {
  if (c === undefined) return 0
  if (c === '~') return -1
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0)
  return c.charCodeAt(0) + 256
}

function compareFragment (a: string, b: string): number {
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    // The non-digit prefix, character by character.
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const ca = i < a.length && !isDigit(a[i]) ? a[i] : undefined
      const cb = j < b.length && !isDigit(b[j]) ? b[j] : undefined
      const d = order(ca) - order(cb)
      if (d !== 0) return d < 0 ? -1 : 1
      if (ca !== undefined) i++
      if (cb !== undefined) j++
    }
    // Then the digit run, as a number (leading zeros do not count).
    let na = ''
    let nb = ''
    while (i < a.length && isDigit(a[i])) na += a[i++] as string
    while (j < b.length && isDigit(b[j])) nb += b[j++] as string
    const x = na.replace(/^0+/, '')
    const y = nb.replace(/^0+/, '')
    if (x.length !== y.length) return x.length < y.length ? -1 : 1
    if (x !== y) return x < y ? -1 : 1
  }
  return 0
}

function isDigit (c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9'
}
