import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'

describe('GET /openapi.json', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  it('is an OpenAPI 3.1 document of every endpoint, generated from the route schemas', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/openapi.json' })
    assert.equal(response.statusCode, 200)
    const doc = response.json()
    assert.equal(doc.openapi, '3.1.0')
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods as object).map((method) => `${method.toUpperCase()} ${path}`),
    )
    assert.deepEqual(operations.sort(), [
      'DELETE /auth/sessions/{id}',
      'DELETE /users/{id}',
      'GET /.well-known/jwks.json',
      'GET /.well-known/oauth-authorization-server',
      'GET /.well-known/openid-configuration',
      'GET /auth/me',
      'GET /auth/sessions',
      'GET /health',
      'GET /ready',
      'GET /users',
      'GET /users/{id}',
      'PATCH /users/me',
      'PATCH /users/{id}',
      'POST /auth/login',
      'POST /auth/logout',
      'POST /auth/logout-all',
      'POST /auth/refresh',
      'POST /auth/register',
      'POST /users/me/password',
    ])
  })

  it('documents request bodies with unknown fields refused, and users without any password field', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const register = doc.paths['/auth/register'].post
    const body = register.requestBody.content['application/json'].schema
    assert.equal(body.additionalProperties, false)
    assert.deepEqual(body.required.sort(), ['firstName', 'lastName', 'password', 'username'])
    const user = register.responses['201'].content['application/json'].schema
    assert.ok(!Object.keys(user.properties).some((name) => /password/i.test(name)))
    assert.ok(register.responses['409'], 'documents the conflict')
  })

  it('names the bearer security scheme and the shared Problem schema', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    assert.deepEqual(doc.components.securitySchemes.bearerAuth, {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    })
    assert.ok(doc.components.schemas.Problem)
    assert.deepEqual(doc.paths['/auth/me'].get.security, [{ bearerAuth: [] }])
    assert.equal(doc.paths['/auth/login'].post.security, undefined)
  })
})
