// The extension point: a developer adds a feature in a few lines, declaring its auth and its rate limits next
// to its schema. This runs examples/notes/notes.routes.ts, the file docs/adding-a-route.md shows (a test below
// checks that the guide quotes it as it is).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { notesRoutes } from '../../examples/notes/notes.routes.ts'
import type { RouteAuth } from '../../src/access/auth.plugin.ts'
import type { RouteRateLimit } from '../../src/access/rate-limit.plugin.ts'
import { buildApp } from '../../src/app.ts'
import { routeModules } from '../../src/modules.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, bearer, createAdmin, registerUser } from '../helpers/fixtures.ts'

/** A module with one GET /x route declared with `config`, and an optional body schema. */
const oneRoute =
  (config: Record<string, unknown>, body?: ReturnType<typeof Type.Object>): FastifyPluginAsyncTypebox =>
  async (app) => {
    const method = body ? 'post' : 'get'
    app[method](
      '/x',
      { config, schema: { ...(body ? { body } : {}), response: { 200: Type.Null() } } },
      async () => null,
    )
  }

describe('adding your own routes', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp({ modules: [...routeModules, notesRoutes()] })
  })
  after(() => t.close())

  it('docs/adding-a-route.md shows examples/notes/notes.routes.ts as it is', () => {
    const guide = readFileSync(new URL('../../docs/adding-a-route.md', import.meta.url), 'utf8')
    const example = readFileSync(new URL('../../examples/notes/notes.routes.ts', import.meta.url), 'utf8')
    assert.ok(guide.includes(`\`\`\`ts\n${example}\`\`\``), 'the guide quotes the example file whole')
  })

  it("a route declared { auth: 'public' } answers without a token", async () => {
    const response = await t.app.inject({ method: 'GET', url: '/notes/about' })
    assert.equal(response.statusCode, 200)
  })

  it('a route with no auth setting needs a valid token, and sees who is calling', async () => {
    const body = { text: 'buy milk' }
    assertProblem(await t.app.inject({ method: 'POST', url: '/notes', body }), 401, 'invalid_token')
    const ada = await registerUser(t.app)
    const created = await t.app.inject({ method: 'POST', url: '/notes', headers: bearer(ada.token), body })
    assert.equal(created.statusCode, 201)
    const url = `/notes/${created.json().id}`
    assert.deepEqual((await t.app.inject({ url, headers: bearer(ada.token) })).json(), created.json())
    const grace = await registerUser(t.app)
    assertProblem(await t.app.inject({ url, headers: bearer(grace.token) }), 404, 'not_found')
  })

  it('a route declared { roles: [...] } needs one of those roles: 401 without a token, 403 without the role', async () => {
    assertProblem(await t.app.inject({ method: 'DELETE', url: '/notes' }), 401, 'invalid_token')
    const user = await registerUser(t.app)
    const denied = await t.app.inject({ method: 'DELETE', url: '/notes', headers: bearer(user.token) })
    assertProblem(denied, 403, 'insufficient_role')
    const admin = await createAdmin(t.app, t.deps)
    const allowed = await t.app.inject({ method: 'DELETE', url: '/notes', headers: bearer(admin.token) })
    assert.equal(allowed.statusCode, 204)
  })

  it('the OpenAPI document marks the protected routes as needing a bearer token', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    assert.deepEqual(doc.paths['/notes/about'].get.security, [], 'a public route says it takes none')
    assert.deepEqual(doc.paths['/notes/{id}'].get.security, [{ bearerAuth: [] }])
    assert.ok(doc.paths['/notes'].delete.responses['403'])
  })

  it('the server refuses to start with a route whose auth setting is malformed', async () => {
    for (const auth of ['private', { role: 'admin' }, { roles: [] }, { roles: 'admin' }]) {
      const broken = oneRoute({ auth: auth as RouteAuth })
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

describe('rate limits declared on the route (issue 10)', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  const refusesToStart = (module: FastifyPluginAsyncTypebox, message: RegExp) =>
    assert.rejects(buildApp({ deps: t.deps, modules: [module], logger: false }), message)

  it('the server refuses to start with a public route that declares no limit, naming the route', async () => {
    await refusesToStart(
      oneRoute({ auth: 'public' }),
      /GET \/x: a public route must declare config\.rateLimit/,
    )
  })

  it('the server refuses to start with a route that checks a secret and declares no limit', async () => {
    const withSecret = Type.Object({ pin: Type.String({ writeOnly: true }) })
    await refusesToStart(oneRoute({}, withSecret), /POST \/x: a route that checks a secret must declare/)
    const namedLikeOne = Type.Object({ apiToken: Type.String() })
    await refusesToStart(oneRoute({}, namedLikeOne), /POST \/x: a route that checks a secret must declare/)
  })

  it('the server refuses to start with a secret nested in the body, or in the query string, and no limit', async () => {
    const nested = Type.Object({ device: Type.Object({ pairing: Type.String({ writeOnly: true }) }) })
    await refusesToStart(oneRoute({}, nested), /POST \/x: a route that checks a secret must declare/)
    const inQuery: FastifyPluginAsyncTypebox = async (app) => {
      const querystring = Type.Object({ resetToken: Type.String() })
      app.get('/x', { schema: { querystring, response: { 200: Type.Null() } } }, async () => null)
    }
    await refusesToStart(inQuery, /GET \/x: a route that checks a secret must declare/)
  })

  it('the server refuses to start with a limit whose key the route cannot supply', async () => {
    const noUsername = oneRoute({ auth: 'public', rateLimit: ['loginPerUsername'] })
    await refusesToStart(noUsername, /names loginPerUsername, which needs a username in the body/)
    const noUser = oneRoute({ auth: 'public', rateLimit: ['passwordChangePerUser'] })
    await refusesToStart(noUser, /names passwordChangePerUser, which needs a signed-in user/)
  })

  it('the server refuses to start with an unknown limit, an empty list, or { none } without a reason', async () => {
    const malformed: unknown[] = [
      ['loginPerPlanet'],
      [],
      { none: '' },
      { none: 'ok', also: 1 },
      'none',
      ['loginPerIp', 'loginPerIp'],
    ]
    for (const rateLimit of malformed) {
      await refusesToStart(
        oneRoute({ auth: 'public', rateLimit: rateLimit as RouteRateLimit }),
        /config\.rateLimit/,
      )
    }
  })

  it("a public route may say { none: '<reason>' }, and a signed-in route without a secret may declare nothing", async () => {
    const app = await buildApp({
      deps: t.deps,
      modules: [
        oneRoute({ auth: 'public', rateLimit: { none: 'static' } }),
        async (a) => {
          a.get('/y', { schema: { response: { 200: Type.Null() } } }, async () => null)
        },
      ],
      logger: false,
    })
    await app.close()
  })

  it("every limited route's OpenAPI operation lists its limits and a 429 answer with Retry-After", async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const login = doc.paths['/auth/login'].post
    assert.deepEqual(
      login['x-rate-limits'].map((limit: { name: string }) => limit.name),
      ['loginPerIp', 'loginPerUsername'],
    )
    assert.match(login.description, /Rate limits: `loginPerIp`/)
    assert.ok(login.responses['429'].headers['Retry-After'])
    const change = doc.paths['/users/me/password'].post
    assert.deepEqual(
      change['x-rate-limits'].map((limit: { name: string }) => limit.name),
      ['passwordChangePerUser', 'passwordChangePerIp', 'loginPerUsername'],
    )
    assert.equal(doc.paths['/health'].get.responses['429'], undefined)
  })
})
