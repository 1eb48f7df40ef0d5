// Types for the part of autocannon's programmatic API the bench uses; the package ships none and
// @types/autocannon is not a dependency.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  export type Options = {
    url: string
    method?: 'GET' | 'POST'
    headers?: Record<string, string>
    body?: string
    connections?: number
    /** Seconds. */
    duration?: number
    /** Requests per second over all connections; each connection sends its share, then waits for the next second. */
    overallRate?: number
    ignoreCoordinatedOmission?: boolean
    /** Seconds. */
    timeout?: number
  }

  export type Result = {
    /** Seconds, to 10 ms. */
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
    statusCodeStats: Record<string, { count: number }>
  }

  export interface Instance extends EventEmitter {
    on(
      event: 'response',
      listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void,
    ): this
    stop(): void
  }

  export default function autocannon(
    options: Options,
    callback: (error: Error | null, result: Result) => void,
  ): Instance
}
