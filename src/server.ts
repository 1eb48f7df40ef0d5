// Entry point: load config, build dependencies and the app, listen; close cleanly on SIGTERM or SIGINT.
// With more than one worker, this process becomes the cluster's primary (cluster.ts) and each worker runs
// this file again as a single server.
import cluster from 'node:cluster'
import { buildApp } from './app.ts'
import { ConfigError, loadConfig, readProcessEnv } from './config/load-config.ts'
import { DatabaseUnavailableError } from './db/database-errors.ts'
import { createDeps, type Deps } from './deps.ts'
import { KeyStoreError } from './keys/key-store.ts'

/**
 * Deletes expired and revoked sessions every SESSION_PURGE_INTERVAL_SECONDS. A DELETE by expiry time is
 * idempotent, so instances sharing a database need no coordination. Returns the function that stops it.
 */
function startSessionPurge(deps: Deps, onError: (error: unknown) => void): () => void {
  const seconds = deps.config.sessions.purgeIntervalSeconds
  if (seconds === 0) return () => {}
  const timer = setInterval(() => deps.sessions.purge().catch(onError), seconds * 1000)
  timer.unref()
  return () => clearInterval(timer)
}

const SHUTDOWN_TIMEOUT_MS = 10_000

/** Errors that stop the start with a message of their own, not a stack trace. */
function exitOnStartError(error: unknown): never {
  if (
    error instanceof ConfigError ||
    error instanceof KeyStoreError ||
    error instanceof DatabaseUnavailableError
  ) {
    console.error(error.message)
    process.exit(1)
  }
  throw error
}

/** `workers`: from `tessera serve --workers`; defaults to WORKERS. */
export async function serve(options: { workers?: number } = {}): Promise<void> {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig(readProcessEnv())
  } catch (error) {
    exitOnStartError(error)
  }
  const workers = options.workers ?? config.workers
  if (workers > 1 && cluster.isPrimary) {
    const { runPrimary } = await import('./cluster.ts')
    await runPrimary(config, workers).catch(exitOnStartError)
    return
  }
  let deps: Deps
  try {
    deps = await createDeps(config)
  } catch (error) {
    exitOnStartError(error)
  }
  const app = await buildApp({ deps })
  const stopPurging = startSessionPurge(deps, (error) =>
    app.log.error({ err: error }, 'session purge failed'),
  )
  const stopKeyReload = deps.keyStore.startAutoReload(config.keysReloadIntervalSeconds * 1000, (error) =>
    app.log.error({ err: error }, 'signing key reload failed'),
  )

  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    stopPurging()
    stopKeyReload()
    // Closing cuts idle keep-alive connections once; a connection whose request finishes afterwards would
    // otherwise stay open until its keep-alive timeout (72 s). Cut those as they become idle, and give up on
    // requests that have not finished in time.
    const sweep = setInterval(() => app.server.closeIdleConnections(), 50)
    const deadline = setTimeout(() => {
      app.log.warn({ afterMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown: closing connections still busy')
      app.server.closeAllConnections()
    }, SHUTDOWN_TIMEOUT_MS)
    await app.close()
    clearInterval(sweep)
    clearTimeout(deadline)
    await deps.close()
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))

  await app.listen({ host: config.host, port: config.port })
}

if (import.meta.main) await serve()
