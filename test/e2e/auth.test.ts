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
      'externalId',
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
      'device_token',
      'device_token_expires_in',
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
    // Not "mary password": a password may not contain the username (issue 11).
    await registerUser(t.app, { username: 'Ｍａｒｙ', password: 'her fleece was white' })
    const token = await login(t.app, 'mary', 'her fleece was white')
    const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })
    assert.equal(me.json().username, 'Mary')
  })
})

describe('issue 11: passwords that are easy to guess are refused', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  const register = (username: string, password: string) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username, password, firstName: 'Ada', lastName: 'Lovelace' },
    })
  const changePassword = (user: { token: string; password: string }, newPassword: string) =>
    t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(user.token),
      payload: { currentPassword: user.password, newPassword },
    })
  /** The one field error of a 400 validation_failed. */
  const fieldError = (response: Parameters<typeof assertProblem>[0]) => {
    const problem = assertProblem(response, 400, 'validation_failed')
    assert.equal(problem.errors.length, 1, response.body)
    return problem.errors[0] as { field: string; message: string }
  }

  it('refuses at registration a password found in the list of common passwords, in any case', async () => {
    for (const password of ['password', '12345678', 'PASSWORD', 'qwertyuiop', 'iloveyou', 'Password1']) {
      const error = fieldError(await register(uniqueUsername('weak'), password))
      assert.equal(error.field, '/body/password')
      assert.match(error.message, /too common/)
    }
  })

  it('refuses at registration a password equal to the username, in any case', async () => {
    const username = uniqueUsername('Katherine')
    const error = fieldError(await register(username, username.toUpperCase()))
    assert.deepEqual(error, { field: '/body/password', message: 'must not be the username' })
  })

  it('refuses at registration a password that contains the username, in any case', async () => {
    const username = uniqueUsername('hopper')
    const error = fieldError(await register(username, `My name is ${username.toUpperCase()}!`))
    assert.deepEqual(error, { field: '/body/password', message: 'must not contain the username' })
  })

  it('accepts a password that merely contains a three-letter username, as many words do', async () => {
    const response = await register('Ann', 'planning an annual trip')
    assert.equal(response.statusCode, 201, response.body)
  })

  it('refuses a common new password at password change, naming /body/newPassword; the old one still works', async () => {
    const user = await registerUser(t.app)
    const error = fieldError(await changePassword(user, 'letmein123'))
    assert.equal(error.field, '/body/newPassword')
    assert.match(error.message, /too common/)
    await login(t.app, user.username, user.password)
  })

  it('refuses a new password that contains the username at password change', async () => {
    const user = await registerUser(t.app)
    const error = fieldError(await changePassword(user, `${user.username} forever`))
    assert.deepEqual(error, { field: '/body/newPassword', message: 'must not contain the username' })
  })
})

describe('issue 11: names and usernames that look like something else are refused', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  const register = (fields: { username?: string; firstName?: string; lastName?: string }) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: {
        username: uniqueUsername('names'),
        password: 'correct horse battery',
        firstName: 'Ada',
        lastName: 'Lovelace',
        ...fields,
      },
    })
  const fields = (response: Parameters<typeof assertProblem>[0]) =>
    assertProblem(response, 400, 'validation_failed').errors.map((e: { field: string }) => e.field)

  // U+202E right-to-left override, U+200B zero-width space, U+2066 left-to-right isolate, U+00AD soft
  // hyphen, U+FEFF zero-width no-break space, U+3164 Hangul filler (a "letter" that shows as nothing).
  const INVISIBLE = ['\u202E', '\u200B', '\u2066', '\u00AD', '\uFEFF', '\u3164', '\u0007']

  it('refuses first and last names holding format, control or invisible characters, at registration', async () => {
    for (const char of INVISIBLE) {
      assert.deepEqual(fields(await register({ firstName: `Ada${char}` })), ['/body/firstName'], escape(char))
      assert.deepEqual(
        fields(await register({ lastName: `${char}Lovelace` })),
        ['/body/lastName'],
        escape(char),
      )
    }
  })

  it('refuses them in PATCH /users/me too, and keeps the name as it was', async () => {
    const user = await registerUser(t.app)
    for (const char of INVISIBLE) {
      const response = await t.app.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: bearer(user.token),
        payload: { firstName: `Ad${char}a` },
      })
      assert.deepEqual(fields(response), ['/body/firstName'], escape(char))
    }
    const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
    assert.equal(me.json().firstName, 'Ada')
  })

  it('still accepts names in any script, with accents, spaces, apostrophes and hyphens', async () => {
    for (const [firstName, lastName] of [
      ['José María', "O'Brien-Núñez"],
      ['Дмитрий', 'Иванов'],
      ['太郎', '山田'],
      ['Ελένη', 'Παπαδοπούλου'],
      ['محمد', 'الأحمد'],
    ]) {
      const response = await register({ firstName, lastName })
      assert.equal(response.statusCode, 201, response.body)
    }
  })

  it('refuses a username mixing scripts, such as Latin "admin" with a Cyrillic "а"', async () => {
    for (const username of ['\u0430dmin_ops', 'p\u0430ypal', 'g\u03bfogle', 'user\u0661\u0662']) {
      const problem = assertProblem(await register({ username }), 400, 'validation_failed')
      assert.equal(problem.errors[0]?.field, '/body/username', username)
      assert.match(problem.errors[0]?.message, /mixes scripts/, username)
    }
  })

  it('refuses a username mixing digits of different number systems, or holding an invisible letter', async () => {
    for (const username of ['\u0627\u062d\u0645\u062f\u0661\u0031', 'ada\u3164lace']) {
      assert.deepEqual(fields(await register({ username })), ['/body/username'], escape(username))
    }
  })

  it('accepts usernames of one script, and the combinations Unicode TS #39 allows (Latin with Han and kana)', async () => {
    for (const username of [
      'Дмитрий',
      'Ελένη_7',
      '山田たろう',
      'タロウ山田',
      'taro山田',
      '김민준',
      'محمد١٢',
      'ada.lovelace-1815',
    ]) {
      const response = await register({ username })
      assert.equal(response.statusCode, 201, `${username}: ${response.body}`)
    }
  })

  it('refuses a reserved username (RESERVED_USERNAMES), in any case or width', async () => {
    for (const username of ['admin', 'Root', 'SYSTEM', 'ａｄｍｉｎ']) {
      const problem = assertProblem(await register({ username }), 400, 'validation_failed')
      assert.deepEqual(problem.errors, [{ field: '/body/username', message: 'is reserved' }])
    }
  })

  it('reads the reserved usernames from RESERVED_USERNAMES', async () => {
    const custom = await buildTestApp({ env: { RESERVED_USERNAMES: 'helpdesk, Billing' } })
    try {
      const register = (username: string) =>
        custom.app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: { username, password: 'correct horse battery', firstName: 'A', lastName: 'B' },
        })
      assertProblem(await register('billing'), 400, 'validation_failed')
      assertProblem(await register('HelpDesk'), 400, 'validation_failed')
      assert.equal((await register('admin')).statusCode, 201)
    } finally {
      await custom.close()
    }
  })
})
