// GET /metrics on the API's own port, when METRICS_TOKEN is set: for a Prometheus that can reach only that
// port. It sends `Authorization: Bearer <METRICS_TOKEN>` (`authorization.credentials` in its scrape config).
// Hidden from the OpenAPI document, like /openapi.json: that document is the API's contract with its clients
// (the typed client is generated from it), and /metrics is for the operator's Prometheus, is not JSON, and
// exists only where an operator turned it on. /health and /ready, which every deployment's load balancer
// calls, are in it.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { Type } from 'typebox'
import { AppError } from '../http/problem.ts'
import { isServed } from './metrics.ts'

/** Compared as SHA-256 digests, of equal length whatever was sent, in constant time. */
const digest = (text: string) => createHash('sha256').update(text).digest()

export const metricsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { config, metrics } = app.deps
  const token = config.metrics.token
  if (token === undefined || !isServed(metrics)) return
  const expected = digest(token)
  const refuse = (detail: string) =>
    new AppError('invalid_token', detail, {
      headers: { 'www-authenticate': 'Bearer realm="metrics"' },
    })

  const checkToken = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const header = request.headers.authorization
    if (header === undefined) return done(refuse('Send METRICS_TOKEN as a bearer token'))
    // The scheme is case-insensitive (RFC 9110, section 11.1).
    const sent = /^bearer /i.test(header) ? header.slice(7) : ''
    if (!timingSafeEqual(digest(sent), expected)) return done(refuse('The metrics token is not right'))
    done()
  }

  app.get(
    '/metrics',
    {
      // Not an access token: METRICS_TOKEN, checked by this route's own hook, before anything else runs.
      config: {
        auth: 'public',
        rateLimit: { none: 'METRICS_TOKEN is at least 32 random characters: nothing to guess' },
      },
      onRequest: checkToken,
      schema: { hide: true, response: { 200: Type.String() } },
    },
    async (_request, reply) => {
      const text = await metrics.registry.metrics()
      return reply.type(metrics.registry.contentType).send(text)
    },
  )
}
