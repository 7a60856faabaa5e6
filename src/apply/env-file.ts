import { ConfigFormatError } from './errors.js'

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const BARE = /^[A-Za-z0-9_@%+=:,./-]+$/

/**
 * `KEY=value` lines that POSIX sh (`. file`), systemd's EnvironmentFile and dotenv all read
 * the same way: plain values bare, anything else in double quotes with `\`, `"`, `$` and
 * `` ` `` escaped. Values must be strings, numbers or booleans.
 */
export function stringifyEnv (data: Record<string, unknown>): string {
  let out = ''
  for (const [key, value] of Object.entries(data)) {
    if (!NAME.test(key)) throw new ConfigFormatError('env', `"${key}" is not a valid variable name (letters, digits and _, not starting with a digit)`)
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new ConfigFormatError('env', `${key}: values must be strings, numbers or booleans, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`)
    }
    out += `${key}=${quoteEnv(String(value))}\n`
  }
  return out
}

export function quoteEnv (value: string): string {
  if (BARE.test(value)) return value
  return `"${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`
}

/**
 * Reads an env file the way sh would for the forms above: `export` prefixes, comments,
 * bare, single- and double-quoted values. Throws on a line it cannot read, so the caller
 * rewrites a file it does not understand.
 */
export function parseEnv (text: string): Record<string, string> {
  const out: Record<string, string> = {}
  let i = 0
  const n = text.length
  const fail = (what: string): never => {
    const line = text.slice(0, i).split('\n').length
    throw new SyntaxError(`line ${line}: ${what}`)
  }
  while (i < n) {
    // Skip blank space, blank lines and comment lines.
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++
    if (i >= n) break
    if (text[i] === '#') {
      while (i < n && text[i] !== '\n') i++
      continue
    }
    if (text.startsWith('export ', i)) i += 7
    const m = /^[A-Za-z_][A-Za-z0-9_]*=/.exec(text.slice(i, i + 256))
    if (m === null) fail('expected KEY=value')
    const key = (m as RegExpExecArray)[0].slice(0, -1)
    i += (m as RegExpExecArray)[0].length
    let value = ''
    while (i < n && text[i] !== '\n' && text[i] !== ' ' && text[i] !== '\t' && text[i] !== '\r') {
      const c = text[i] as string
      if (c === "'") {
        const end = text.indexOf("'", i + 1)
        if (end < 0) fail('unterminated single quote')
        value += text.slice(i + 1, end)
        i = end + 1
      } else if (c === '"') {
        i++
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n && '\\"$`\n'.includes(text[i + 1] as string)) {
            if (text[i + 1] !== '\n') value += text[i + 1]
            i += 2
          } else {
            value += text[i]
            i++
          }
        }
        if (i >= n) fail('unterminated double quote')
        i++
      } else if (c === '\\' && i + 1 < n) {
        if (text[i + 1] !== '\n') value += text[i + 1]
        i += 2
      } else if (c === '$' || c === '`') {
        fail('variable or command substitution is not supported')
      } else {
        value += c
        i++
      }
    }
    // After the value only a comment may follow on the line.
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\r')) i++
    if (i < n && text[i] === '#') while (i < n && text[i] !== '\n') i++
    else if (i < n && text[i] !== '\n') fail('unexpected text after the value')
    out[key] = value
  }
  return out
}
