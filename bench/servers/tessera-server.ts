// The Tessera server under benchmark, in its own process: the production app (createDeps + buildApp, production
// argon2 parameters) plus four bench-only routes, which exist here and nowhere in src/:
// - GET /bench/verify-only: no config.auth, so it does nothing but the default auth check (verify the token,
//   then the cached revocation check).
// - GET /bench/signature-only: public; verifies the bearer token with tokens.verifyAccessToken and nothing else,
//   so that verify-only / signature-only is the cost of the revocation check.
// - POST /bench/mint: `count` access tokens for the caller's own session, as a login or refresh would issue them,
//   so that the bench can send a different valid token on every request.
// - POST /bench/sessions: `count` new sessions of the caller's user, as a login would start them but without the
//   password hash; answers their refresh tokens, so that every refresh run starts on sessions of its own.
// The parent sends the environment over IPC; we answer with the port and Node's version. server.ts's periodic
// jobs (key reload every minute, session purge every hour) are left out: no request waits on them. The webhook
// dispatcher runs when the bench sets WEBHOOK_URL.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { bearerToken } from '../../src/access/auth.plugin.ts'
import { invalidTokenError } from '../../src/access/token.service.ts'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load-config.ts'
import { createDeps } from '../../src/deps.ts'
import { routeModules } from '../../src/modules.ts'
import { BENCH_RESPONSE, BenchResponse, MINT_BATCH } from './bench-response.ts'
import { collectOnRequest } from './collect-on-request.ts'

const Count = Type.Object({ count: Type.Integer({ minimum: 1, maximum: MINT_BATCH }) })
const Tokens = { 200: Type.Object({ tokens: Type.Array(Type.String()) }) }

const benchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { tokens } = app.deps.access
  const { users } = app.deps.repositories
  const { sessions } = app.deps.services

  // No config.auth: any valid access token, which is what this route measures.
  app.get('/bench/verify-only', { schema: { response: { 200: BenchResponse } } }, async () => BENCH_RESPONSE)

  app.get(
    '/bench/signature-only',
    {
      config: { auth: 'public', rateLimit: { none: 'a bench-only route' } },
      schema: { response: { 200: BenchResponse } },
    },
    async (request) => {
      const token = bearerToken(request.headers.authorization ?? '')
      if (!token) throw invalidTokenError('The Authorization header is not "Bearer <token>"')
      await tokens.verifyAccessToken(token)
      return BENCH_RESPONSE
    },
  )

  const caller = async (userId: string) => {
    const user = await users.findById(userId)
    if (!user) throw invalidTokenError('The user no longer exists')
    return user
  }

  app.post('/bench/mint', { schema: { body: Count, response: Tokens } }, async (request) => {
    const user = await caller(request.auth.userId)
    const minted: string[] = []
    for (let i = 0; i < request.body.count; i++) {
      minted.push(
        tokens.issueAccessToken(user, request.auth.sessionId, {
          amr: ['pwd'],
          authTime: Math.floor(Date.now() / 1000),
        }).token,
      )
    }
    return { tokens: minted }
  })

  app.post('/bench/sessions', { schema: { body: Count, response: Tokens } }, async (request) => {
    const user = await caller(request.auth.userId)
    const started: string[] = []
    for (let i = 0; i < request.body.count; i++) {
      const grant = await sessions.start(user, { userAgent: 'tessera-bench', ip: '127.0.0.1' })
      started.push(grant.refresh_token)
    }
    return { tokens: started }
  })
}

type StartMessage = { type: 'start'; env: Record<string, string> }

async function start({ env }: StartMessage) {
  const config = loadConfig(env)
  const deps = await createDeps(config)
  // Logs only when the bench sets a LOG_LEVEL other than silent (BENCH_LOG_LEVEL).
  const app = await buildApp({ deps, modules: [...routeModules, benchRoutes], logger: true })
  await app.listen({ host: config.host, port: config.port })
  // The one periodic job a request's cost depends on: with webhooks, sending what each request enqueued (the
  // events section). Never on an earlier commit's tree, which the bench gives no WEBHOOK_URL.
  if (env.WEBHOOK_URL) deps.webhooks.dispatcher.start()
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
  collectOnRequest()
  process.send?.({ type: 'listening', port: address.port, node: process.version })
}

// Not behind `import.meta.main`: this file is only ever run, and built (bench/lib/build.ts) it would read false.
process.once('disconnect', () => process.exit(0))
process.once('message', (message: StartMessage) =>
  start(message).catch((error: unknown) => {
    process.send?.({ type: 'error', message: error instanceof Error ? error.message : String(error) })
    process.exitCode = 1
  }),
)
