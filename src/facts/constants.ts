/** Where custom facts live, as Facter's external facts do (/etc/facter/facts.d); `--facts-dir` overrides it. */
export const DEFAULT_FACTS_DIR = '/etc/grapevine/facts.d'

/**
 * Bytes of custom facts read over all files of a facts directory. Facts go in templates and,
 * summarised, in every beacon: an inventory belongs in a database, a few dozen facts here.
 * A file that would pass it is skipped (with a warning), never cut.
 */
export const MAX_CUSTOM_FACTS_BYTES = 64 * 1024

/** Files read from a facts directory; the rest (in name order) are skipped with a warning. */
export const MAX_FACT_FILES = 256

/** Nesting of a custom fact, the file's map counting as one: `a.b.c.d…` eight deep is ample. */
export const MAX_FACT_DEPTH = 8

/**
 * Values (scalars, maps and lists) in one fact file once decoded. YAML aliases let 64 KiB
 * expand to gigabytes; counting values as they are visited stops that before anything is copied.
 */
export const MAX_FACT_VALUES = 10_000

/** A top-level fact name: what `{{ facts.NAME }}` and `target.facts` can reach. */
export const FACT_NAME = /^[A-Za-z0-9_-]+$/

/** The facts a presence beacon carries first, in this order (docs/facts.md): what `fleet --where` and `publish --wait` judge targets by. */
export const SUMMARY_FACTS = ['os', 'kernel', 'architecture', 'hostname', 'fqdn', 'domain', 'processors.count', 'memory.system.total_bytes', 'init', 'networking.ip', 'networking.ip6', 'networking.primary'] as const
