// Issue 16, point 1: browser apps on other origins. CORS_ORIGINS lists the exact origins whose scripts may call
// the API with credentials; preflights are answered for the API's methods and headers (the CSRF header of the
// cookie mode included); any other origin gets no CORS headers. COOKIE_SAME_SITE sets the cookies' SameSite.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { loadConfig } from '../../src/config/load-config.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { registerUser } from '../helpers/fixtures.ts'

const APP = 'http://localhost:5173'
const OTHER = 'https://evil.example'

const preflight = (t: TestApp, origin: string, url = '/auth/refresh', method = 'POST') =>
  t.app.inject({
    method: 'OPTIONS',
    url,
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'content-type,x-tessera-csrf',
    },
  })

describe('CORS_ORIGINS', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp({ env: { CORS_ORIGINS: `${APP}, https://app.example.com` } })
  })
  after(() => t.close())

  it('answers a preflight of a listed origin for the methods and headers the API reads, with credentials', async () => {
    const response = await preflight(t, APP)
    assert.equal(response.statusCode, 204, response.body)
    assert.equal(response.headers['access-control-allow-origin'], APP)
    assert.equal(response.headers['access-control-allow-credentials'], 'true')
    const methods = String(response.headers['access-control-allow-methods'])
    for (const method of ['GET', 'POST', 'PATCH', 'DELETE']) assert.match(methods, new RegExp(method))
    const headers = String(response.headers['access-control-allow-headers']).toLowerCase()
    for (const header of ['authorization', 'content-type', 'x-tessera-csrf'])
      assert.match(headers, new RegExp(header))
    assert.match(String(response.headers.vary), /Origin/)
    assert.ok(Number(response.headers['access-control-max-age']) > 0)
  })

  it("marks a listed origin's answers, errors included, and lets it read the challenge headers", async () => {
    const user = await registerUser(t.app)
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      headers: { origin: APP },
      payload: { username: user.username, password: user.password },
    })
    assert.equal(login.statusCode, 200)
    assert.equal(login.headers['access-control-allow-origin'], APP)
    assert.equal(login.headers['access-control-allow-credentials'], 'true')
    assert.match(String(login.headers.vary), /Origin/)
    const refused = await t.app.inject({ method: 'GET', url: '/auth/me', headers: { origin: APP } })
    assert.equal(refused.statusCode, 401)
    assert.equal(refused.headers['access-control-allow-origin'], APP)
    assert.match(String(refused.headers['access-control-expose-headers']).toLowerCase(), /www-authenticate/)
  })

  it('gives an origin not on the list no CORS headers, on a preflight or an answer', async () => {
    for (const origin of [OTHER, `${APP}.evil.example`, 'http://localhost:5174', 'null']) {
      const response = await preflight(t, origin)
      assert.equal(response.headers['access-control-allow-origin'], undefined, origin)
      assert.equal(response.headers['access-control-allow-credentials'], undefined, origin)
      const answer = await t.app.inject({ method: 'GET', url: '/health', headers: { origin } })
      assert.equal(answer.headers['access-control-allow-origin'], undefined, origin)
      assert.match(String(answer.headers.vary), /Origin/)
    }
  })
})

describe('without CORS_ORIGINS', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  it('answers no preflight and marks no answer: a browser keeps other origins out', async () => {
    const response = await preflight(t, APP)
    assert.equal(response.statusCode, 404)
    assert.equal(response.headers['access-control-allow-origin'], undefined)
    const answer = await t.app.inject({ method: 'GET', url: '/health', headers: { origin: APP } })
    assert.equal(answer.headers['access-control-allow-origin'], undefined)
  })
})

describe('COOKIE_SAME_SITE', () => {
  it('sets the cookies of the cookie mode SameSite=None for an app on another site, over https only', async () => {
    const t = await buildTestApp({
      env: { PUBLIC_URL: 'https://auth.example.com', COOKIE_SAME_SITE: 'none' },
    })
    try {
      const user = await registerUser(t.app)
      const login = await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: user.username, password: user.password, refresh_token_delivery: 'cookie' },
      })
      const cookies = [login.headers['set-cookie']].flat().map(String)
      assert.equal(cookies.length, 2)
      for (const cookie of cookies) {
        assert.match(cookie, /SameSite=None/)
        assert.match(cookie, /Secure/)
        assert.match(cookie, /HttpOnly/)
      }
    } finally {
      await t.close()
    }
    assert.throws(
      () => loadConfig({ PUBLIC_URL: 'http://localhost:8000', COOKIE_SAME_SITE: 'none' }),
      /COOKIE_SAME_SITE=none needs Secure cookies/,
    )
  })

  it('keeps SameSite=Strict by default', async () => {
    const t = await buildTestApp()
    try {
      const user = await registerUser(t.app)
      const login = await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: user.username, password: user.password, refresh_token_delivery: 'cookie' },
      })
      const cookies = [login.headers['set-cookie']].flat().map(String)
      assert.equal(cookies.length, 2, 'the refresh cookie and the device cookie')
      for (const cookie of cookies) assert.match(cookie, /SameSite=Strict/)
    } finally {
      await t.close()
    }
  })

  it('refuses a CORS_ORIGINS entry that is not an exact origin', () => {
    for (const bad of [
      'localhost:5173',
      'https://app.example.com/',
      'https://app.example.com/path',
      '*',
      'https://app.example.com:443',
      'http://app.example.com:80',
    ]) {
      assert.throws(() => loadConfig({ CORS_ORIGINS: bad }), /CORS_ORIGINS/, bad)
    }
  })
})
