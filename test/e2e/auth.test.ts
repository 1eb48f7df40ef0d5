import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, bearer, login, registerUser, uniqueUsername } from '../helpers/fixtures.ts'

function decodePart(token: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString('utf8'))
}

describe('registration, login and the current user', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  it('registers a user and answers 201 with the user, never the password or its hash', async () => {
    const username = uniqueUsername('reg')
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username, password: 'correct horse battery', firstName: 'Ada', lastName: 'Lovelace' },
    })
    assert.equal(response.statusCode, 201)
    const user = response.json()
    assert.deepEqual(Object.keys(user).sort(), [
      'createdAt',
      'disabled',
      'firstName',
      'id',
      'lastName',
      'roles',
      'updatedAt',
      'username',
    ])
    assert.match(user.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.deepEqual(user.roles, ['user'])
    assert.ok(!response.body.includes('argon2'))
    assert.ok(!response.body.includes('correct horse'))
  })

  it('refuses a username taken in another case or Unicode form with 409', async () => {
    await registerUser(t.app, { username: 'Grace' })
    for (const username of ['grace', 'GRACE', 'Ｇｒａｃｅ']) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { username, password: 'another password', firstName: 'G', lastName: 'H' },
      })
      assertProblem(response, 409, 'username_taken')
    }
  })

  it('answers 400 with a detail per invalid field, and refuses unknown fields', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username: 'x', password: 'short', firstName: 'Ada', isAdmin: true },
    })
    const problem = assertProblem(response, 400, 'validation_failed')
    const fields = problem.errors.map((e: { field: string }) => e.field).sort()
    assert.deepEqual(fields, ['/body/isAdmin', '/body/lastName', '/body/password', '/body/username'])
  })

  it('does not coerce types in a body: a number is not a name', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username: uniqueUsername(), password: 'long enough pw', firstName: 42, lastName: 'L' },
    })
    assertProblem(response, 400, 'validation_failed')
  })

  it('logs in with any case of the username and returns a Bearer access token', async () => {
    const user = await registerUser(t.app, { username: uniqueUsername('Case') })
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: user.username.toUpperCase(), password: user.password },
    })
    assert.equal(response.statusCode, 200)
    assert.equal(response.headers['cache-control'], 'no-store')
    const body = response.json()
    assert.equal(body.token_type, 'Bearer')
    assert.equal(body.expires_in, 900)
    assert.deepEqual(Object.keys(body).sort(), [
      'access_token',
      'expires_in',
      'refresh_token',
      'refresh_token_expires_in',
      'token_type',
    ])
  })

  it('issues an RFC 9068 access token: typ at+jwt, kid, and sub is the user id, not the username', async () => {
    const user = await registerUser(t.app)
    const header = decodePart(user.token, 0)
    const claims = decodePart(user.token, 1)
    assert.equal(header.alg, 'HS256')
    assert.equal(header.typ, 'at+jwt')
    assert.equal(typeof header.kid, 'string')
    assert.equal(claims.sub, user.id)
    assert.equal(claims.iss, 'http://tessera.test')
    assert.equal(claims.aud, 'tessera')
    assert.equal(claims.username, user.username)
    assert.deepEqual(claims.roles, ['user'])
    assert.equal((claims.exp as number) - (claims.iat as number), 900)
    assert.equal(typeof claims.jti, 'string')
    assert.ok(!JSON.stringify(claims).includes(user.password))
  })

  it('answers 401 with one and the same body for an unknown user and a wrong password', async () => {
    const user = await registerUser(t.app)
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: user.username, password: 'not the password' },
    })
    const unknown = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: 'nobody_here', password: 'not the password' },
    })
    const a = assertProblem(wrong, 401, 'invalid_credentials')
    const b = assertProblem(unknown, 401, 'invalid_credentials')
    assert.deepEqual({ ...a, instance: '' }, { ...b, instance: '' })
  })

  it('GET /auth/me returns the signed-in user', async () => {
    const user = await registerUser(t.app, { firstName: 'Katherine', lastName: 'Johnson' })
    const response = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
    assert.equal(response.statusCode, 200)
    assert.equal(response.json().id, user.id)
    assert.equal(response.json().firstName, 'Katherine')
  })

  it('GET /auth/me without a token is 401 with WWW-Authenticate: Bearer error="invalid_token"', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/auth/me' })
    assertProblem(response, 401, 'invalid_token')
    assert.match(String(response.headers['www-authenticate']), /^Bearer error="invalid_token"/)
  })

  it('accepts the Bearer scheme in any case, as RFC 6750 allows', async () => {
    const user = await registerUser(t.app)
    const response = await t.app.inject({
      method: 'GET',
      url: '/auth/me',
      headers: { authorization: `bearer ${user.token}` },
    })
    assert.equal(response.statusCode, 200)
  })

  it('reads the token after several spaces, and before trailing ones, as the Bearer syntax allows', async () => {
    const user = await registerUser(t.app)
    for (const authorization of [`Bearer   ${user.token}`, `Bearer ${user.token}  `]) {
      const response = await t.app.inject({ method: 'GET', url: '/auth/me', headers: { authorization } })
      assert.equal(response.statusCode, 200, JSON.stringify(authorization))
    }
  })

  it('refuses an Authorization header that is not "Bearer <token>": 401 invalid_token', async () => {
    const user = await registerUser(t.app)
    // Accepted once, so that the server remembers the token, and the variants below cannot pass for it.
    const accepted = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
    assert.equal(accepted.statusCode, 200)
    const headers = [
      'Basic dXNlcjpwYXNzd29yZA==',
      'Bearer',
      `Bearer${user.token}`,
      `Bearer\t${user.token}`,
      `Bearer ${user.token} ${user.token}`,
      `Bearer ${user.token}\tmore`,
      `Bearer ${user.token}\u00a0`,
      user.token,
    ]
    for (const authorization of headers) {
      const response = await t.app.inject({ method: 'GET', url: '/auth/me', headers: { authorization } })
      assertProblem(response, 401, 'invalid_token')
    }
  })

  it('logs in after registration with the username as typed at registration, in NFKC form', async () => {
    await registerUser(t.app, { username: 'Ｍａｒｙ', password: 'mary password' })
    const token = await login(t.app, 'mary', 'mary password')
    const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })
    assert.equal(me.json().username, 'Mary')
  })
})
