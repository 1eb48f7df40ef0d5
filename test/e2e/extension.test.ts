// The extension point: a developer adds a protected route in a few lines, declaring its auth next to its
// schema. This is the example from docs/adding-a-route.md, run as it is written there.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { buildApp } from '../../src/app.ts'
import type { RouteAuth } from '../../src/auth/auth.plugin.ts'
import { routeModules } from '../../src/modules.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, bearer, createAdmin, registerUser } from '../helpers/fixtures.ts'

const notesRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/notes/public',
    { config: { auth: 'public' }, schema: { response: { 200: Type.Object({ hello: Type.String() }) } } },
    async () => ({ hello: 'world' }),
  )
  app.get(
    '/notes/mine',
    { schema: { response: { 200: Type.Object({ owner: Type.String() }) } } },
    async (request) => ({ owner: request.auth.username }),
  )
  app.delete(
    '/notes/all',
    {
      config: { auth: { roles: ['admin'] } },
      schema: { response: { 200: Type.Object({ deleted: Type.Integer() }) } },
    },
    async () => ({ deleted: 0 }),
  )
}

describe('adding your own routes', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp({ modules: [...routeModules, notesRoutes] })
  })
  after(() => t.close())

  it("a route declared { auth: 'public' } answers without a token", async () => {
    const response = await t.app.inject({ method: 'GET', url: '/notes/public' })
    assert.deepEqual(response.json(), { hello: 'world' })
  })

  it('a route with no auth setting needs a valid token, and sees who is calling', async () => {
    assertProblem(await t.app.inject({ method: 'GET', url: '/notes/mine' }), 401, 'invalid_token')
    const user = await registerUser(t.app)
    const response = await t.app.inject({ method: 'GET', url: '/notes/mine', headers: bearer(user.token) })
    assert.deepEqual(response.json(), { owner: user.username })
  })

  it('a route declared { roles: [...] } needs one of those roles: 401 without a token, 403 without the role', async () => {
    assertProblem(await t.app.inject({ method: 'DELETE', url: '/notes/all' }), 401, 'invalid_token')
    const user = await registerUser(t.app)
    const denied = await t.app.inject({ method: 'DELETE', url: '/notes/all', headers: bearer(user.token) })
    assertProblem(denied, 403, 'insufficient_role')
    const admin = await createAdmin(t.app, t.deps)
    const allowed = await t.app.inject({ method: 'DELETE', url: '/notes/all', headers: bearer(admin.token) })
    assert.deepEqual(allowed.json(), { deleted: 0 })
  })

  it('the OpenAPI document marks the protected routes as needing a bearer token', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    assert.equal(doc.paths['/notes/public'].get.security, undefined)
    assert.deepEqual(doc.paths['/notes/mine'].get.security, [{ bearerAuth: [] }])
    assert.ok(doc.paths['/notes/all'].delete.responses['403'])
  })

  it('the server refuses to start with a route whose auth setting is malformed', async () => {
    for (const auth of ['private', { role: 'admin' }, { roles: [] }, { roles: 'admin' }]) {
      const broken: FastifyPluginAsyncTypebox = async (app) => {
        app.get(
          '/x',
          { config: { auth: auth as RouteAuth }, schema: { response: { 200: Type.Null() } } },
          async () => null,
        )
      }
      await assert.rejects(buildApp({ deps: t.deps, modules: [broken], logger: false }), /config\.auth/)
    }
  })

  it('the server refuses to start with a route that has no response schema', async () => {
    const broken: FastifyPluginAsyncTypebox = async (app) => {
      app.get('/x', { config: { auth: 'public' } }, async () => ({ password_hash: 'oops' }))
    }
    await assert.rejects(buildApp({ deps: t.deps, modules: [broken], logger: false }), /response schema/)
  })
})
