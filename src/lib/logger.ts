// The log of what happens outside a request: a lost database or Redis connection, a failed timer. Same
// format and level as Fastify's request log (both are pino, writing JSON lines to stdout).
import { type Logger, pino } from 'pino'
import type { Config } from '../config/load-config.ts'

export type { Logger }

export function createLogger(level: Config['logLevel']): Logger {
  return pino({ level })
}
