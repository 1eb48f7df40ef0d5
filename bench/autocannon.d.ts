// Types for the part of autocannon's programmatic API the bench uses; the package ships none and
// @types/autocannon is not a dependency.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  /** One request of a connection's cycle. Without setupRequest it is built once; with it, before every send. */
  export type Request = {
    method?: 'GET' | 'POST'
    path?: string
    headers?: Record<string, string>
    body?: string
    setupRequest?: (request: Request, context: Record<string, unknown>) => Request
    /** Called with the status and the whole body of the response to this request. */
    onResponse?: (status: number, body: string, context: Record<string, unknown>) => void
  }

  /** One connection. */
  export interface Client {
    /** Replaces the cycle of requests this connection sends (pipelining 1 only). */
    setRequests(requests: Request[]): void
  }

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
    /** Called once per connection as it is created, before its first request. */
    setupClient?: (client: Client) => void
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
