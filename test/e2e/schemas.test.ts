// Validators and serializers are compiled on a route's first request (issue 19: a server holds only those of the
// routes it serves). app.compileAllSchemas() compiles them all at once, so that a schema that cannot compile is
// found here, by the suite, and not by a user's first request.
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { routeModules } from '../../src/modules.ts'
import { buildTestApp } from '../helpers/build-test-app.ts'
import { TEST_WEBHOOK_SECRET } from '../helpers/webhook-receiver.ts'

// The settings that add routes: the password-reset request, /metrics on the API port, CORS's preflight. Nothing
// is sent to the hook: the app only compiles.
const EVERY_ROUTE = {
  PASSWORD_RESET_WEBHOOK_URL: 'http://127.0.0.1:9/reset',
  PASSWORD_RESET_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
  METRICS_TOKEN: 'mK3v9QzR7pL2xW8nT4bY6cJ1hF5dG0sA',
  CORS_ORIGINS: 'https://app.example.com',
}

describe('every route schema', () => {
  const apps: { close(): Promise<void> }[] = []
  after(async () => {
    for (const app of apps) await app.close()
  })

  it('compiles, every validator and every serializer of every route, those that settings add included', async () => {
    const t = await buildTestApp({ env: EVERY_ROUTE })
    apps.push(t)
    assert.ok(t.app.hasRoute({ method: 'POST', url: '/auth/password-reset/request' }))
    assert.ok(t.app.hasRoute({ method: 'GET', url: '/metrics' }))
    assert.doesNotThrow(() => t.app.compileAllSchemas())
  })

  it('would be found broken without a request: a body schema naming a schema that does not exist', async () => {
    const broken: FastifyPluginAsyncTypebox = async (app) => {
      app.post(
        '/broken',
        {
          config: { auth: 'public', rateLimit: { none: 'a test route' } },
          schema: { body: { $ref: 'NoSuchSchema#' }, response: { 204: { type: 'null' } } },
        },
        async (_request, reply) => reply.code(204).send(null),
      )
    }
    const t = await buildTestApp({ modules: [...routeModules, broken] })
    apps.push(t)
    assert.throws(
      () => t.app.compileAllSchemas(),
      (error: AggregateError) => error.errors.some((each) => /NoSuchSchema/.test(String(each))),
    )
  })

  it('would be found broken without a request: a response schema naming a schema that does not exist', async () => {
    const broken: FastifyPluginAsyncTypebox = async (app) => {
      app.get(
        '/broken',
        {
          config: { auth: 'public', rateLimit: { none: 'a test route' } },
          schema: { response: { 200: { $ref: 'NoSuchAnswer#' } } },
        },
        async () => ({}),
      )
    }
    const t = await buildTestApp({ modules: [...routeModules, broken] })
    apps.push(t)
    assert.throws(
      () => t.app.compileAllSchemas(),
      (error: AggregateError) => error.errors.some((each) => /NoSuchAnswer/.test(String(each))),
    )
  })
})
