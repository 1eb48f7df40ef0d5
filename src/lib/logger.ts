// The log of what happens outside a request: a lost database or Redis connection, a failed timer. Same
// format, level and error serializer as Fastify's request log (both are pino, writing JSON lines to stdout).
import { type LevelWithSilent, type Logger, pino } from 'pino'

export type { Logger }

/** The levels pino knows, and `silent`. config/ declares LOG_LEVEL's choices as a list of these. */
export type LogLevel = LevelWithSilent

// Fields that drivers hang on their errors and that must never reach a log: ioredis puts the failed command
// and its arguments there (a refused AUTH carries the password), pg the whole client.
const UNSAFE_ERROR_FIELDS = ['command', 'client', 'args', 'parameters']

/** pino's error serializer, without the fields above, down the chain of causes. */
export function serializeError(error: Error): ReturnType<typeof pino.stdSerializers.err> {
  const serialized = pino.stdSerializers.err(error)
  const scrub = (value: unknown, depth: number): void => {
    if (typeof value !== 'object' || value === null || depth > 5) return
    const record = value as Record<string, unknown>
    for (const field of UNSAFE_ERROR_FIELDS) delete record[field]
    scrub(record.cause, depth + 1)
  }
  scrub(serialized, 0)
  return serialized
}

/**
 * Fastify's request line, without the query string: a client may put anything there (a token in a link
 * someone followed), and the log is no place for it. The path is enough to find the route.
 */
export function serializeRequest(request: {
  method: string
  url: string
  host?: string
  ip?: string
  socket?: { remotePort?: number }
}) {
  const query = request.url.indexOf('?')
  return {
    method: request.method,
    url: query === -1 ? request.url : request.url.slice(0, query),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  }
}

export const LOG_SERIALIZERS = { err: serializeError, req: serializeRequest }

export function createLogger(level: LogLevel): Logger {
  return pino({ level, serializers: LOG_SERIALIZERS })
}
