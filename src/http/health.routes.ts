// GET /health: the process is alive. GET /ready: it can reach its database, so a load balancer may send traffic.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { sql } from 'kysely'
import { Type } from 'typebox'
import { AppError } from './problem.ts'
import { problems } from './responses.ts'

const Status = Type.Object({ status: Type.String() })

// Probes call these often, from the load balancer's addresses; they check no secret and cost little.
const probe = {
  auth: 'public',
  rateLimit: { none: 'a health probe: cheap, and polled by load balancers' },
} as const

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db } = app.deps

  app.get(
    '/health',
    {
      config: probe,
      schema: {
        operationId: 'getHealth',
        tags: ['health'],
        summary: 'Liveness: 200 while the process answers',
        response: { 200: Status },
      },
    },
    async () => ({ status: 'ok' }),
  )

  app.get(
    '/ready',
    {
      config: probe,
      schema: {
        operationId: 'getReadiness',
        tags: ['health'],
        summary: 'Readiness: 200 when the database answers, 503 not_ready otherwise',
        response: { 200: Status, ...problems(503) },
      },
    },
    async (request) => {
      try {
        await sql`select 1`.execute(db)
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed')
        throw new AppError('not_ready', 'The database is not reachable')
      }
      return { status: 'ready' }
    },
  )
}
