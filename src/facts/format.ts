/**
 * Pure: facts as `dotted.path: value` lines, sorted as gathered; lists by index
 * (`processors.models.0`), which is also how templates and targets name them.
 */
export function flattenFacts (facts: unknown, prefix = ''): string[] {
  if (facts === null || typeof facts !== 'object') return [`${prefix}: ${typeof facts === 'string' ? facts : JSON.stringify(facts)}`]
  const entries = Array.isArray(facts) ? facts.map((v, i) => [String(i), v] as const) : Object.entries(facts)
  if (entries.length === 0) return [`${prefix}: ${Array.isArray(facts) ? '[]' : '{}'}`]
  return entries.flatMap(([k, v]) => flattenFacts(v, prefix === '' ? k : `${prefix}.${k}`))
}
