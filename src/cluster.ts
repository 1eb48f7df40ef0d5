// `tessera serve --workers N` (or WORKERS=N): N server processes sharing one port through node:cluster, so
// that one machine's cores all serve requests. The primary process serves nothing itself: it migrates the
// database and provisions the signing key once, starts the workers, replaces a worker that dies, and on
// SIGTERM passes the signal on and waits for every worker to finish its requests.
import cluster, { type Worker } from 'node:cluster'
import type { Config } from './config/load-config.ts'
import { createDb } from './db/create-db.ts'
import { migrateDatabase } from './db/migrator.ts'
import { holdServingLock } from './db/serving-lock.ts'
import { createKeyStore, type KeyProvision, provisionSigningKey, type SigningKey } from './keys/key-store.ts'
import { previousSecretNotices } from './keys/previous-secrets.ts'
import { systemClock } from './lib/clock.ts'
import { createLogger } from './lib/logger.ts'
import { serveMetrics } from './metrics/metrics-server.ts'
import { startLine } from './start-line.ts'

// A worker that dies this soon after starting is failing at start, not crashing under load: after a few
// such deaths in a row, restarting it again would only loop.
const EARLY_DEATH_MS = 5_000
const MAX_EARLY_DEATHS = 3
// Longer than a worker's own shutdown deadline (server.ts).
const WORKER_STOP_TIMEOUT_MS = 15_000

export async function runPrimary(config: Config, workers: number): Promise<void> {
  const log = createLogger(config.logLevel)
  // What the primary has to say waits for the start line, logged once the first worker listens: an operator
  // reads first where the instance serves and with what.
  const notes: (() => void)[] = []
  const flushNotes = () => {
    for (const note of notes.splice(0)) note()
  }
  const note = (level: 'info' | 'warn', details: object, message: string) =>
    notes.push(() => log[level](details, message))
  for (const warning of config.warnings) note('warn', {}, warning)
  for (const notice of previousSecretNotices(config)) note('info', {}, notice)
  // Held for the life of the primary, between workers too: `tessera restore` refuses to replace the database.
  holdServingLock(config.database)
  // Migrations and the first signing key, once, before any worker starts.
  const db = createDb(config.database)
  let keyProvision: KeyProvision
  let signingKey: SigningKey
  try {
    await migrateDatabase(config.database, db, log)
    keyProvision = await provisionSigningKey(db, systemClock, config)
    signingKey = (await createKeyStore(db, systemClock, config)).signingKey()
  } finally {
    await db.destroy()
  }
  if (!config.redis) {
    note(
      'warn',
      { workers },
      'no REDIS_URL: each worker counts rate limits on its own, and learns of revocations made by the others ' +
        'within AUTH_STATE_CACHE_TTL_MS',
    )
  }

  // METRICS_PORT, listened on before any worker starts: one answer adding up every worker's metrics, each
  // asked over the cluster's channel (prom-client's AggregatorRegistry; workers answer in deps.ts).
  const closeMetrics = await serveClusterMetrics(config, log, (url) =>
    note('info', { url }, 'metrics listening'),
  )

  let stopping = false
  let failed = false
  let earlyDeaths = 0
  const startedAt = new Map<Worker, number>()
  const fork = () => startedAt.set(cluster.fork(), Date.now())

  cluster.on('exit', (worker, code, signal) => {
    // A worker that failed at start never listened: the notes may say why (a warning about the settings).
    flushNotes()
    const lived = Date.now() - (startedAt.get(worker) ?? 0)
    startedAt.delete(worker)
    if (stopping) {
      if (startedAt.size === 0) process.exit(failed ? 1 : 0)
      return
    }
    earlyDeaths = lived < EARLY_DEATH_MS ? earlyDeaths + 1 : 0
    if (earlyDeaths >= MAX_EARLY_DEATHS) {
      log.fatal({ code, signal }, 'workers keep dying at start; stopping')
      stopping = true
      failed = true
      for (const other of startedAt.keys()) other.kill('SIGTERM')
      if (startedAt.size === 0) process.exit(1)
      return
    }
    log.error({ worker: worker.process.pid, code, signal }, 'worker died; starting another')
    fork()
  })

  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down: workers finish their in-flight requests')
    void closeMetrics()
    for (const worker of startedAt.keys()) worker.process.kill('SIGTERM')
    // Each worker gives up on its own after its shutdown deadline; this is for one that hangs regardless.
    setTimeout(() => {
      log.error('workers did not stop in time; killing them')
      for (const worker of startedAt.keys()) worker.process.kill('SIGKILL')
      failed = true
    }, WORKER_STOP_TIMEOUT_MS).unref()
  }
  process.once('SIGTERM', () => shutdown('SIGTERM'))
  process.once('SIGINT', () => shutdown('SIGINT'))

  cluster.once('listening', (_worker, address) => {
    log.info(
      startLine({
        address: `http://${config.host}:${address.port}`,
        config,
        signingKey,
        keyProvision,
        primary: true,
      }),
    )
    flushNotes()
  })
  for (let i = 0; i < workers; i++) fork()
}

async function serveClusterMetrics(
  config: Config,
  log: ReturnType<typeof createLogger>,
  onListening: (url: string) => void,
): Promise<() => Promise<void>> {
  const { port, host } = config.metrics
  if (port === undefined) return async () => {}
  const { AggregatorRegistry } = await import('prom-client')
  const aggregator = new AggregatorRegistry()
  const listener = await serveMetrics(
    { host, port },
    async () => ({ contentType: aggregator.contentType, text: await aggregator.clusterMetrics() }),
    (error) => log.error({ err: error }, "the workers' metrics could not be collected"),
  )
  onListening(listener.url)
  return listener.close
}
