// The Tessera server under benchmark, in its own process: the production app (createDeps + buildApp, production
// argon2 parameters) plus GET /bench/verify-only, a route that does nothing but the default auth check (verify
// the token, then the cached revocation check). The parent sends the environment over IPC; we answer with the port.
// server.ts's periodic jobs (key reload every minute, session purge every hour) are left out: no request waits
// on them, and a two-minute run would see at most one.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { buildApp } from '../src/app.ts'
import { loadConfig } from '../src/config/load-config.ts'
import { createDeps } from '../src/deps.ts'
import { routeModules } from '../src/modules.ts'
import { BENCH_RESPONSE, BenchResponse } from './bench-response.ts'

const verifyOnlyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // No config.auth: any valid access token, which is what this route measures.
  app.get('/bench/verify-only', { schema: { response: { 200: BenchResponse } } }, async () => BENCH_RESPONSE)
}

type StartMessage = { type: 'start'; env: Record<string, string> }

async function start({ env }: StartMessage) {
  const config = loadConfig(env)
  const deps = await createDeps(config)
  const app = await buildApp({ deps, modules: [...routeModules, verifyOnlyRoutes], logger: false })
  await app.listen({ host: config.host, port: config.port })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening on a TCP port')

  const stop = async () => {
    await app.close()
    await deps.close()
    process.exit(0)
  }
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'stop') void stop()
  })
  process.send?.({ type: 'listening', port: address.port })
}

if (import.meta.main) {
  process.once('disconnect', () => process.exit(0))
  process.once('message', (message: StartMessage) =>
    start(message).catch((error: unknown) => {
      process.send?.({ type: 'error', message: error instanceof Error ? error.message : String(error) })
      process.exitCode = 1
    }),
  )
}
