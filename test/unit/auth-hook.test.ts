// The auth hook fails closed: whatever authenticate throws or rejects with, even a value that is not an Error
// (which Fastify's done() would take for success), the route's handler does not run.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import Fastify from 'fastify'
import { type Authenticate, authPlugin } from '../../src/access/auth.plugin.ts'
import { Problem } from '../../src/http/problem.ts'

async function appWith(authenticate: Authenticate) {
  const app = Fastify()
  let handled = 0
  // The plugin adds a 401 answer to the route's schema, by reference to the shared Problem schema.
  app.addSchema(Problem)
  await app.register(authPlugin, { authenticate })
  app.get('/protected', { schema: { response: { 200: { type: 'object' } } } }, async () => {
    handled++
    return {}
  })
  await app.ready()
  return { app, handled: () => handled }
}

describe('the auth hook', () => {
  const failures: [string, Authenticate][] = [
    [
      'throws undefined',
      () => {
        throw undefined
      },
    ],
    ['rejects with undefined', () => Promise.reject(undefined)],
    ['rejects with null', () => Promise.reject(null)],
  ]
  for (const [name, authenticate] of failures) {
    it(`does not run the handler when authenticate ${name}`, async () => {
      const { app, handled } = await appWith(authenticate)
      const response = await app.inject({ method: 'GET', url: '/protected' })
      assert.notEqual(response.statusCode, 200)
      assert.equal(handled(), 0)
      await app.close()
    })
  }

  it('runs the handler when authenticate returns without a promise, or resolves', async () => {
    for (const authenticate of [() => {}, () => Promise.resolve()] as Authenticate[]) {
      const { app, handled } = await appWith(authenticate)
      const response = await app.inject({ method: 'GET', url: '/protected' })
      assert.equal(response.statusCode, 200)
      assert.equal(handled(), 1)
      await app.close()
    }
  })
})
