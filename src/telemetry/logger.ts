import { pino, type Logger } from 'pino'

export type { Logger }

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/**
 * JSON lines on stdout, written synchronously: the proxy logs a handful of lines a minute, and a synchronous
 * destination cannot lose the final counters when the process exits on SIGTERM.
 */
export function createLogger(
  level: LogLevel,
  destination: pino.DestinationStream = pino.destination({ dest: 1, sync: true }),
): Logger {
  return pino({ name: 'statsd-filter-proxy', level, base: { pid: process.pid } }, destination)
}
