// Entry point: load config, build dependencies and the app, listen; close cleanly on SIGTERM or SIGINT.
// With more than one worker, this process becomes the cluster's primary (cluster.ts) and each worker runs
// this file again as a single server (from the production build, dist/node/server.js: bin/start.js).
import cluster from 'node:cluster'
import { loadConfig, readProcessEnv } from './config/load-config.ts'
import { holdServingLock } from './db/serving-lock.ts'
import { createDeps, type Deps } from './deps.ts'
import { previousSecretNotices } from './keys/previous-secrets.ts'
import { listenForMetrics } from './metrics/metrics-server.ts'
import { isOperatorError, operatorMessage } from './start-errors.ts'
import { startLine } from './start-line.ts'

/**
 * Deletes expired and revoked sessions, security events past their retention, expired reset tokens and
 * forgotten failed-login counters, every
 * SESSION_PURGE_INTERVAL_SECONDS. A DELETE by time is idempotent, so instances sharing a database need no
 * coordination. Returns the function that stops it.
 */
function startSessionPurge(deps: Deps, onError: (error: unknown) => void): () => void {
  const seconds = deps.config.sessions.purgeIntervalSeconds
  if (seconds === 0) return () => {}
  const purge = () => {
    deps.services.sessions.purge().catch(onError)
    deps.services.events.purge().catch(onError)
    deps.services.passwordResets.purge().catch(onError)
    deps.services.lockout.purge().catch(onError)
    deps.services.mfa.purge().catch(onError)
  }
  const timer = setInterval(purge, seconds * 1000)
  timer.unref()
  return () => clearInterval(timer)
}

const SHUTDOWN_TIMEOUT_MS = 10_000

/** Ends a start that failed: a known cause in one line, anything else with its stack; exit code 1. */
function exitOnStartError(error: unknown): never {
  console.error(isOperatorError(error) ? operatorMessage(error) : error)
  process.exit(1)
}

/** `workers`: from `tessera serve --workers`; defaults to WORKERS. */
export async function serve(options: { workers?: number } = {}): Promise<void> {
  let config: ReturnType<typeof loadConfig>
  try {
    const env = readProcessEnv()
    // The command-line option is validated like the variable (a :memory: database cannot be shared).
    config = loadConfig(options.workers === undefined ? env : { ...env, WORKERS: String(options.workers) }, {
      serving: true,
    })
  } catch (error) {
    exitOnStartError(error)
  }
  if (config.workers > 1 && cluster.isPrimary) {
    // The primary logs the warnings and notices, once for the instance, after its start line.
    const { runPrimary } = await import('./cluster.ts')
    await runPrimary(config, config.workers).catch(exitOnStartError)
    return
  }
  // Any failure to start (a port in use, say) ends the process: open pools must not keep a server that
  // serves nothing alive, and a cluster's primary must see the worker die.
  try {
    await start(config)
  } catch (error) {
    exitOnStartError(error)
  }
}

async function start(config: ReturnType<typeof loadConfig>): Promise<void> {
  // Imported here: a cluster's primary, which serves nothing, does not load Fastify and the routes.
  const { buildApp } = await import('./app.ts')
  // Before the database is opened, and for the life of the process: `tessera restore` refuses to replace it.
  holdServingLock(config.database)
  const deps = await createDeps(config)
  let app: Awaited<ReturnType<typeof buildApp>>
  try {
    app = await buildApp({ deps })
  } catch (error) {
    await deps.close()
    throw error
  }
  // The periodic jobs start once the server listens (below).
  let stopJobs = () => {}
  let closeMetrics = async () => {}
  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    stopJobs()
    // Webhook attempts under way finish, or are given back pending, while the requests finish.
    const stopDelivering = deps.webhooks.dispatcher.stop()
    // Closing cuts idle keep-alive connections once; a connection whose request finishes afterwards would
    // otherwise stay open until its keep-alive timeout (72 s). Cut those as they become idle. Past the
    // deadline, whatever still holds the shutdown (a busy request, a database that does not answer) is
    // abandoned, and the exit code says so.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50)
    await closeMetrics()
    const deadline = setTimeout(() => {
      app.log.warn({ afterMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown did not finish in time; exiting')
      process.exit(1)
    }, SHUTDOWN_TIMEOUT_MS)
    await app.close()
    clearInterval(sweep)
    await stopDelivering
    await deps.close()
    clearTimeout(deadline)
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))

  try {
    // Fastify logs this text once per address it listens on: the start line, first in the log.
    const signingKey = deps.access.keyStore.signingKey()
    await app.listen({
      host: config.host,
      port: config.port,
      listenTextResolver: (address) =>
        startLine({ address, config, signingKey, keyProvision: deps.signingKeyProvision }),
    })
    if (cluster.isPrimary) for (const warning of config.warnings) app.log.warn(warning)
    if (cluster.isPrimary) for (const notice of previousSecretNotices(config)) app.log.info(notice)
    // METRICS_PORT: a worker's metrics are served by its primary (cluster.ts), for all the workers.
    if (cluster.isPrimary) closeMetrics = await listenForMetrics(config.metrics, deps.metrics, app.log)
  } catch (error) {
    await app.close()
    await deps.close()
    throw error
  }
  const stopPurging = startSessionPurge(deps, (error) =>
    app.log.error(
      { err: error },
      'the periodic purge (sessions, events, resets, lockouts, MFA challenges) failed',
    ),
  )
  const stopKeyReload = deps.access.keyStore.startAutoReload(
    config.keysReloadIntervalSeconds * 1000,
    (error) => app.log.error({ err: error }, 'signing key reload failed'),
  )
  stopJobs = () => {
    stopPurging()
    stopKeyReload()
  }
  // Sends the webhook outbox (what is pending from before a restart too); stopped by the shutdown above.
  deps.webhooks.dispatcher.start()
}

if (import.meta.main) await serve()
