const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000, y: 365 * 86_400_000 }

/**
 * A duration flag as milliseconds: a number with a unit (`500ms`, `1.5s`, `10m`, `12h`, `90d`,
 * `2w`, `1y`), or `0`. Undefined when it is none of these: the caller names its flag in the error.
 */
export function parseDuration (text: string): number | undefined {
  if (text.trim() === '0') return 0
  const m = /^\s*(\d{1,9}(?:\.\d{1,3})?)\s*(ms|s|m|h|d|w|y)\s*$/.exec(text)
  if (m === null) return undefined
  return Math.round(Number(m[1]) * (UNITS[m[2] as string] as number))
}
