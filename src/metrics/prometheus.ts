// The metrics, in prom-client: their names, labels and help text, declared once, in the order
// docs/operations.md lists them. Names follow Prometheus's conventions: the `tessera_` prefix, the unit in the
// name, `_total` on counters. Every label takes values from a closed list (route templates, limit names,
// event types), never from a request, so that no client can grow the number of series.
import type * as PromClient from 'prom-client'
import { type MetricSources, type Metrics, type MetricsRegistry, noMetrics } from './metrics.ts'

// From 1 ms (a cached `GET /auth/me`) to 10 s (a login queued behind other password hashes).
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
// A hash waits for a core: nothing at all, or up to a few seconds when the queue is full.
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

const LOGIN_OUTCOMES: Readonly<Record<string, string>> = {
  'login.succeeded': 'succeeded',
  'login.mfa_required': 'mfa_required',
  'login.failed': 'failed',
}

export function createPrometheusMetrics(client: typeof PromClient): MetricsRegistry {
  const { Counter, Gauge, Histogram, Registry } = client
  const registry = new Registry()
  // The process's own (CPU, memory, event-loop lag, GC, handles), under the names every Node.js dashboard
  // expects (`process_*`, `nodejs_*`): a `tessera_` prefix would only break those dashboards.
  client.collectDefaultMetrics({ register: registry })
  const registers = [registry]

  const httpRequests = new Histogram({
    name: 'tessera_http_request_duration_seconds',
    help: 'HTTP requests by route template (`unmatched` for no route), method and status, and how long each took to answer',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  })
  const logins = new Counter({
    name: 'tessera_logins_total',
    help: 'Logins by outcome (succeeded, mfa_required, failed) and, for failures, reason',
    labelNames: ['outcome', 'reason'] as const,
    registers,
  })
  const refreshes = new Counter({
    name: 'tessera_refreshes_total',
    help: 'POST /auth/refresh by outcome: succeeded, or the problem code it was refused with (refresh_token_reused, ...)',
    labelNames: ['outcome'] as const,
    registers,
  })
  const events = new Counter({
    name: 'tessera_security_events_total',
    help: 'Security events recorded, by type (README, Security events)',
    labelNames: ['type'] as const,
    registers,
  })
  const refusals = new Counter({
    name: 'tessera_rate_limit_refusals_total',
    help: 'Requests refused 429 by a rate limit, by limit name',
    labelNames: ['limit'] as const,
    registers,
  })
  const hashDepth = new Gauge({
    name: 'tessera_password_hash_queue_length',
    help: 'Password hashes waiting for a free core',
    registers,
  })
  const hashWait = new Histogram({
    name: 'tessera_password_hash_wait_seconds',
    help: 'How long each password hash waited for a free core before it ran',
    buckets: WAIT_BUCKETS,
    registers,
  })
  const hashRefused = new Counter({
    name: 'tessera_password_hash_refusals_total',
    help: 'Password hashes refused (429) because the queue, or the share of one account or address, was full',
    registers,
  })
  const webhookAttempts = new Counter({
    name: 'tessera_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome: delivered, failed (will be retried), dead (failed for the last time)',
    labelNames: ['outcome'] as const,
    registers,
  })

  let sources: MetricSources = {}
  const now = () => (sources.now ?? Date.now)()
  // Read at scrape time. A cluster's primary adds up the workers' values (sum, the default) unless the metric
  // says otherwise: workers reading one shared table or key set report the same value, so it takes the max.
  type PoolUsage = NonNullable<ReturnType<NonNullable<MetricSources['databasePool']>>>
  const pool = (name: string, help: string, read: (usage: PoolUsage) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.reset()
        const usage = sources.databasePool?.()
        if (usage) this.set(read(usage))
      },
    })
  pool(
    'tessera_db_pool_connections_in_use',
    'Database connections running a query or transaction',
    (p) => p.inUse,
  )
  pool('tessera_db_pool_connections_idle', 'Database connections open and free', (p) => p.idle)
  pool('tessera_db_pool_max_connections', 'The most connections the pool may open', (p) => p.max)
  pool('tessera_db_pool_waiting_requests', 'Queries waiting for a free connection', (p) => p.waiting)
  new Gauge({
    name: 'tessera_signing_keys_reload_age_seconds',
    help: 'Seconds since the signing keys were last read from the database',
    aggregator: 'max',
    registers,
    collect() {
      this.reset()
      const loadedAt = sources.keysLoadedAt?.()
      if (loadedAt !== undefined) this.set(Math.max(0, (now() - loadedAt) / 1000))
    },
  })
  new Gauge({
    name: 'tessera_webhook_deliveries',
    help: 'Webhook deliveries in the outbox by status: pending (not yet delivered) and dead (given up on)',
    labelNames: ['status'] as const,
    aggregator: 'max',
    registers,
    async collect() {
      this.reset()
      const backlog = await sources.webhookBacklog?.().catch(() => undefined)
      if (!backlog) return
      this.set({ status: 'pending' }, backlog.pending)
      this.set({ status: 'dead' }, backlog.dead)
    },
  })

  return {
    enabled: true,
    registry,
    httpRequests,
    eventRecorded(type, detail) {
      events.inc({ type })
      const outcome = LOGIN_OUTCOMES[type]
      if (outcome === undefined) return
      const reason = (detail as { reason?: unknown } | undefined)?.reason
      logins.inc(typeof reason === 'string' ? { outcome, reason } : { outcome })
    },
    refreshAnswered: (outcome) => refreshes.inc({ outcome }),
    rateLimitRefused: (limit) => refusals.inc({ limit }),
    hashQueue: {
      depth: (waiting) => hashDepth.set(waiting),
      waited: (seconds) => hashWait.observe(seconds),
      refused: () => hashRefused.inc(),
    },
    webhookAttempted: (outcome) => webhookAttempts.inc({ outcome }),
    watch(added) {
      sources = { ...sources, ...added }
    },
  }
}

/**
 * The server's metrics: prom-client's when they are served (METRICS_PORT or METRICS_TOKEN), loaded only then.
 * `clusterWorker`: this process is a worker whose primary serves METRICS_PORT for them all, and asks each
 * worker for its values (prom-client's AggregatorRegistry, over the cluster's IPC channel).
 */
export async function createMetrics(options: { enabled: boolean; clusterWorker: boolean }): Promise<Metrics> {
  if (!options.enabled) return noMetrics
  const client = await import('prom-client')
  const metrics = createPrometheusMetrics(client)
  if (options.clusterWorker) {
    client.AggregatorRegistry.setRegistries(metrics.registry)
    // Constructing one is what makes a worker answer the primary's requests.
    new client.AggregatorRegistry()
  }
  return metrics
}
