// Entry point: load config, build dependencies and the app, listen; close cleanly on SIGTERM or SIGINT.
import { buildApp } from './app.ts'
import { ConfigError, loadConfig, readProcessEnv } from './config/load-config.ts'
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

export async function serve(): Promise<void> {
  let config: ReturnType<typeof loadConfig>
  try {
    config = loadConfig(readProcessEnv())
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message)
      process.exit(1)
    }
    throw error
  }
  let deps: Deps
  try {
    deps = await createDeps(config)
  } catch (error) {
    if (error instanceof KeyStoreError) {
      console.error(error.message)
      process.exit(1)
    }
    throw error
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
    await app.close()
    await deps.close()
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))

  await app.listen({ host: config.host, port: config.port })
}

if (import.meta.main) await serve()
