/**
 * The members of a JSON object's top level, found without decoding anything: one pass over
 * the bytes, no recursion, nothing allocated per nested value. The envelope validator uses it
 * to parse the header alone before the signature check, whatever the policy holds.
 */

const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a
const COMMA = 0x2c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const isOpen = (c: number | undefined): boolean => c === OPEN_BRACE || c === 0x5b
const isClose = (c: number | undefined): boolean => c === CLOSE_BRACE || c === 0x5d
const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** A member of the top-level object: byte ranges of its name (quotes included) and of its value. */
export interface Member { keyStart: number, keyEnd: number, valueStart: number, valueEnd: number }

function skipSpace (b: Uint8Array, i: number): number {
  while (isSpace(b[i])) i++
  return i
}

/** From an opening quote to just past the closing one; -1 when it never closes. */
function skipString (b: Uint8Array, i: number): number {
  for (i++; i < b.length; i++) {
    if (b[i] === BACKSLASH) i++
    else if (b[i] === QUOTE) return i + 1
  }
  return -1
}

/** Past one value: a string, a bracketed value however deep (counted, never recursed), or a bare literal; -1 when it never ends. */
function skipValue (b: Uint8Array, i: number): number {
  if (b[i] === QUOTE) return skipString(b, i)
  if (!isOpen(b[i])) {
    const start = i
    while (i < b.length && b[i] !== COMMA && !isClose(b[i]) && !isSpace(b[i])) i++
    return i > start ? i : -1
  }
  for (let depth = 0; i < b.length;) {
    const c = b[i]
    if (c === QUOTE) {
      i = skipString(b, i)
      if (i === -1) return -1
      continue
    }
    if (isOpen(c)) depth++
    else if (isClose(c) && --depth === 0) return i + 1
    i++
  }
  return -1
}

/**
 * The members of the top-level object, found by one pass over the bytes that decodes nothing:
 * how deep or big a value is costs only the time to step over it. Checks structure only; the
 * header's values are parsed next and the policy's after the signature. A string says why
 * the bytes are not an object.
 */
export function topLevelMembers (b: Uint8Array): Member[] | string {
  let i = skipSpace(b, 0)
  if (b[i] !== OPEN_BRACE) return `expected "{" at byte ${i}`
  const members: Member[] = []
  i = skipSpace(b, i + 1)
  if (b[i] === CLOSE_BRACE) i++
  else {
    for (;;) {
      if (b[i] !== QUOTE) return `expected a member name at byte ${i}`
      const keyStart = i
      const keyEnd = skipString(b, i)
      if (keyEnd === -1) return `unterminated string at byte ${keyStart}`
      i = skipSpace(b, keyEnd)
      if (b[i] !== COLON) return `expected ":" at byte ${i}`
      const valueStart = skipSpace(b, i + 1)
      const valueEnd = skipValue(b, valueStart)
      if (valueEnd === -1) return `unterminated value at byte ${valueStart}`
      members.push({ keyStart, keyEnd, valueStart, valueEnd })
      i = skipSpace(b, valueEnd)
      if (b[i] === COMMA) i = skipSpace(b, i + 1)
      else if (b[i] === CLOSE_BRACE) { i++; break } else return `expected "," or "}" at byte ${i}`
    }
  }
  return skipSpace(b, i) === b.length ? members : `unexpected bytes after the object at byte ${i}`
}
