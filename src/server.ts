// Entry point: load config, build dependencies and the app, listen; close cleanly on SIGTERM or SIGINT.
import { buildApp } from './app.ts'
import { ConfigError, loadConfig, readProcessEnv } from './config/load-config.ts'
import { createDeps } from './deps.ts'

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
  const deps = await createDeps(config)
  const app = await buildApp({ deps })

  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    await app.close()
    await deps.close()
    process.exit(0)
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))

  await app.listen({ host: config.host, port: config.port })
}

if (import.meta.main) await serve()
