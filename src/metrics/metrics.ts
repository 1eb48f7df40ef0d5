// What the server counts for Prometheus (GET /metrics, docs/operations.md): the interface features report
// through, given to them in deps, and its two implementations. With metrics off (neither METRICS_PORT nor
// METRICS_TOKEN), every report is a no-op and prom-client is never loaded.
import type { Histogram, Registry } from 'prom-client'

/** How a refresh was answered: `succeeded`, or the problem code of its refusal (`refresh_token_reused`...). */
export type RefreshOutcome = string

/** What the features report as it happens: each call is a few arithmetic operations, never I/O. */
export interface Metrics {
  readonly enabled: boolean
  /** A security event was recorded: logins by outcome, refresh-token reuse, lockouts... are counted from it. */
  eventRecorded(type: string, detail: unknown): void
  refreshAnswered(outcome: RefreshOutcome): void
  /** A request refused 429 by the named limit (RATE_LIMIT_*). */
  rateLimitRefused(limit: string): void
  /** The password-hash queue: its length now, how long a hash waited for a core, a hash refused as busy. */
  hashQueue: { depth(waiting: number): void; waited(seconds: number): void; refused(): void }
  /** One attempt of a webhook delivery: delivered, failed (to be retried), or failed for the last time. */
  webhookAttempted(outcome: 'delivered' | 'failed' | 'dead'): void
  /**
   * Values read when Prometheus scrapes, not kept up to date per request. A source that fails (a database
   * that is down) leaves its metric out of that scrape.
   */
  watch(sources: MetricSources): void
}

export type MetricSources = {
  /** Connections of the database: in use, idle, and requests waiting for one. */
  databasePool?: () => { inUse: number; idle: number; waiting: number; max: number } | undefined
  /** When the signing keys were last loaded from the database (epoch milliseconds). */
  keysLoadedAt?: () => number
  /** Webhook deliveries pending and dead, read from the outbox table. */
  webhookBacklog?: () => Promise<{ pending: number; dead: number }>
  /** Milliseconds since the epoch: the clock the other sources' times are read with. */
  now?: () => number
}

/** A Metrics that also serves what it counted: the server's. */
export interface MetricsRegistry extends Metrics {
  readonly registry: Registry
  /** Every HTTP request, observed by the hook of http-metrics.ts. */
  readonly httpRequests: Histogram<'route' | 'method' | 'status'>
}

const ignore = () => {}

/** Metrics off: every report costs a call to an empty function. */
export const noMetrics: Metrics = {
  enabled: false,
  eventRecorded: ignore,
  refreshAnswered: ignore,
  rateLimitRefused: ignore,
  hashQueue: { depth: ignore, waited: ignore, refused: ignore },
  webhookAttempted: ignore,
  watch: ignore,
}

export function isServed(metrics: Metrics): metrics is MetricsRegistry {
  return metrics.enabled && 'registry' in metrics
}
