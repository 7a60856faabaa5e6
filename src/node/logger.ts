import { pino } from 'pino'

type LogFn = (obj: object, msg?: string) => void

/** The logging surface the agent uses; pino's loggers satisfy it. */
export interface Logger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
}

const noop: LogFn = () => {}
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }

/**
 * Structured JSON lines on stdout, one event per line with `level`, `time` and `msg`, which
 * journald, Docker and every log shipper collect as they are.
 */
export function createLogger (opts: { level?: string, name?: string } = {}): Logger {
  return pino({ level: opts.level ?? 'info', base: opts.name !== undefined ? { node: opts.name } : {}, timestamp: pino.stdTimeFunctions.isoTime })
}
