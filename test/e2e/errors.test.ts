import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem } from '../helpers/fixtures.ts'

describe('every error is application/problem+json, never a stack trace or a 500 for bad input', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  /** POST /auth/login with a raw body of the given content type. */
  const postLogin = (contentType: string, payload: string) =>
    t.app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': contentType }, payload })

  it('an unknown route is 404 not_found', async () => {
    assertProblem(await t.app.inject({ method: 'GET', url: '/no/such/route' }), 404, 'not_found')
  })

  it('malformed JSON is 400 malformed_request', async () => {
    const response = await postLogin('application/json', '{"username": "ada", ')
    assertProblem(response, 400, 'malformed_request')
  })

  it('an empty JSON body is 400, a JSON array or string body is 400 validation_failed', async () => {
    const empty = await postLogin('application/json', '')
    assertProblem(empty, 400, 'malformed_request')
    for (const payload of ['[]', '"ada"', 'null', '42']) {
      const response = await postLogin('application/json', payload)
      assert.equal(response.statusCode, 400, `${payload}: ${response.body}`)
    }
  })

  it('a body that is not JSON is 415 unsupported_media_type', async () => {
    const response = await postLogin('application/x-www-form-urlencoded', 'username=ada&password=x')
    assertProblem(response, 415, 'unsupported_media_type')
  })

  it('a text/plain body is 415 too: bodies are JSON only', async () => {
    const response = await postLogin('text/plain', '{"username":"ada","password":"whatever1"}')
    assertProblem(response, 415, 'unsupported_media_type')
  })

  it('a body over 64 KiB is 413 payload_too_large', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: 'ada', password: 'x'.repeat(70 * 1024) },
    })
    assertProblem(response, 413, 'payload_too_large')
  })

  it('a __proto__ key in a body is refused, not merged', async () => {
    const response = await postLogin(
      'application/json',
      '{"username":"ada","password":"whatever1","__proto__":{"admin":true}}',
    )
    assert.equal(response.statusCode, 400)
  })

  it('an unexpected failure is 500 internal_error with no detail of the cause', async () => {
    const broken = await buildTestApp({
      modules: [
        async (app) => {
          app.get(
            '/explode',
            {
              config: { auth: 'public', rateLimit: { none: 'a test' } },
              schema: { response: { 200: { type: 'object' } } },
            },
            async () => {
              throw new Error('database password is hunter2')
            },
          )
        },
      ],
    })
    try {
      const response = await broken.app.inject({ method: 'GET', url: '/explode' })
      const problem = assertProblem(response, 500, 'internal_error')
      assert.ok(!response.body.includes('hunter2'))
      assert.ok(!('stack' in problem))
    } finally {
      await broken.close()
    }
  })
})

describe('health and readiness', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  it('GET /health is 200 while the process is alive', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/health' })
    assert.deepEqual(response.json(), { status: 'ok' })
  })

  it('GET /ready is 200 with a reachable database, and 503 not_ready without one', async () => {
    const ready = await t.app.inject({ method: 'GET', url: '/ready' })
    assert.deepEqual(ready.json(), { status: 'ready' })
    await t.deps.db.destroy()
    const notReady = await t.app.inject({ method: 'GET', url: '/ready' })
    assertProblem(notReady, 503, 'not_ready')
  })
})
