// Issue 11 ("Hardening from an outside security review"): what odd, hostile or malformed requests get back.
// Requests that light-my-request cannot send (bytes Node's HTTP parser refuses) go to a listening server over
// a raw socket.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { Type } from 'typebox'
import { AppError } from '../../src/http/problem.ts'
import { routeModules } from '../../src/modules.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, bearer, createAdmin, registerUser, uniqueUsername } from '../helpers/fixtures.ts'

type RawAnswer = { statusCode: number; headers: Record<string, string>; body: string }

/** Writes `bytes` to a new connection to the server on `port` and reads its one answer. */
function sendRaw(port: number, bytes: string | Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => socket.destroy(), 5_000)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      const text = Buffer.concat(chunks).toString('utf8')
      const end = text.indexOf('\r\n\r\n')
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(text)
      if (end < 0 || !status?.[1]) return reject(new Error(`not an HTTP answer: ${JSON.stringify(text)}`))
      const headers: Record<string, string> = {}
      for (const line of text.slice(0, end).split('\r\n').slice(1)) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      resolve({ statusCode: Number(status[1]), headers, body: text.slice(end + 4) })
    })
    socket.write(bytes)
  })
}

/** A JSON body whose `\xNN` characters are sent as those single bytes, which are not UTF-8. */
const latin1Json = (text: string) => Buffer.from(text, 'latin1')

const ADA = { firstName: 'Ada', lastName: 'Lovelace' }

describe('issue 11: validation errors are capped', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  it('a body with 7,000 unknown fields gets the first 20 errors and the count of the rest, in a short answer', async () => {
    const payload: Record<string, number> = {}
    for (let i = 0; i < 7_000; i++) payload[i.toString(36)] = 0
    const response = await t.app.inject({ method: 'POST', url: '/auth/register', payload })
    const problem = assertProblem(response, 400, 'validation_failed')
    // 7,000 unknown fields and 4 missing ones.
    assert.equal(problem.errors.length, 20)
    assert.equal(problem.errorsOmitted, 6_984)
    assert.match(problem.detail, /7004 fields are not valid/)
    assert.ok(response.body.length < 4_096, `${response.body.length} bytes`)
  })

  it('a body with a few bad fields lists them all, with no count of omitted ones', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username: uniqueUsername(), password: 'correct horse battery', ...ADA, a: 1, b: 2, c: 3 },
    })
    const problem = assertProblem(response, 400, 'validation_failed')
    assert.deepEqual(
      problem.errors.map((error: { field: string }) => error.field),
      ['/body/a', '/body/b', '/body/c'],
    )
    assert.equal(problem.errorsOmitted, undefined)
    assert.equal(problem.detail, 'One or more fields are not valid; see errors.')
  })
})

describe('issue 11: security headers', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  const assertGuarded = (response: { headers: Record<string, unknown> }, what: string) => {
    assert.equal(response.headers['x-content-type-options'], 'nosniff', what)
    assert.equal(response.headers['referrer-policy'], 'no-referrer', what)
  }

  it('every answer carries X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer', async () => {
    for (const [method, url] of [
      ['GET', '/health'],
      ['GET', '/no/such/route'],
      ['GET', '/auth/me'],
      ['GET', '/users/%zz'],
      ['GET', '/.well-known/jwks.json'],
    ] as const) {
      assertGuarded(await t.app.inject({ method, url }), `${method} ${url}`)
    }
  })

  it('answers that are authenticated or carry a token are Cache-Control: no-store', async () => {
    const user = await registerUser(t.app)
    const admin = await createAdmin(t.app, t.deps)
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: user.username, password: user.password },
    })
    const refresh = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refresh_token: login.json().refresh_token },
    })
    const answers = {
      register: await t.app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { username: uniqueUsername(), password: 'correct horse battery', ...ADA },
      }),
      login,
      refresh,
      'a refused login': await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: user.username, password: 'not the password' },
      }),
      '/auth/me': await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) }),
      '/auth/me without a token': await t.app.inject({ method: 'GET', url: '/auth/me' }),
      'PATCH /users/me': await t.app.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: bearer(user.token),
        payload: { firstName: 'Augusta' },
      }),
      '/users': await t.app.inject({ method: 'GET', url: '/users', headers: bearer(admin.token) }),
      [`/users/${user.id}`]: await t.app.inject({
        method: 'GET',
        url: `/users/${user.id}`,
        headers: bearer(admin.token),
      }),
    }
    for (const [what, response] of Object.entries(answers)) {
      assert.ok(response.statusCode < 500, `${what}: ${response.body}`)
      assert.equal(response.headers['cache-control'], 'no-store', what)
      assertGuarded(response, what)
    }
  })

  it('the public key documents keep their own public Cache-Control', async () => {
    for (const url of [
      '/.well-known/jwks.json',
      '/.well-known/openid-configuration',
      '/.well-known/oauth-authorization-server',
    ]) {
      const response = await t.app.inject({ method: 'GET', url })
      assert.match(String(response.headers['cache-control']), /^public, max-age=\d+$/, url)
    }
  })

  it('sends Strict-Transport-Security when PUBLIC_URL is https, and not over plain http', async () => {
    const https = await buildTestApp({ env: { PUBLIC_URL: 'https://auth.example.test' } })
    try {
      for (const url of ['/health', '/auth/me', '/users/%zz']) {
        const response = await https.app.inject({ method: 'GET', url })
        assert.equal(response.headers['strict-transport-security'], 'max-age=31536000', url)
      }
    } finally {
      await https.close()
    }
    const plain = await t.app.inject({ method: 'GET', url: '/health' })
    assert.equal(plain.headers['strict-transport-security'], undefined)
  })
})

describe('issue 11: framework and protocol errors are problems too', () => {
  let t: TestApp
  let port: number
  before(async () => {
    t = await buildTestApp()
    await t.app.listen({ port: 0, host: '127.0.0.1' })
    port = (t.app.server.address() as { port: number }).port
  })
  after(() => t.close())

  it('a path that is not valid percent-encoded UTF-8 is 400 malformed_request, not Fastify FST_ERR_BAD_URL', async () => {
    for (const url of ['/nope/%ff%fe', '/users/%zz']) {
      const response = await t.app.inject({ method: 'GET', url })
      const problem = assertProblem(response, 400, 'malformed_request')
      assert.equal(problem.instance, url)
      assert.ok(!response.body.includes('FST_ERR'), response.body)
    }
  })

  it('a path parameter over 100 characters is 414 uri_too_long', async () => {
    const response = await t.app.inject({ method: 'GET', url: `/users/${'a'.repeat(101)}` })
    assertProblem(response, 414, 'uri_too_long')
  })

  it('a 70,000-byte Authorization header is 431 headers_too_large', async () => {
    const response = await sendRaw(
      port,
      `GET /auth/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(70_000)}\r\n\r\n`,
    )
    assertProblem(response, 431, 'headers_too_large')
    assert.equal(response.headers['x-content-type-options'], 'nosniff')
  })

  const notHttp: [string, string][] = [
    ['an unknown method', 'FOO /health HTTP/1.1\r\nHost: x\r\n\r\n'],
    [
      'a duplicate Content-Length',
      'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}',
    ],
    [
      'Content-Length with Transfer-Encoding: chunked',
      'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
    ],
    ['a NUL in a header value', 'GET /health HTTP/1.1\r\nHost: x\r\nX-Note: a\0b\r\n\r\n'],
    [
      'a chunk size that is not hexadecimal',
      'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
    ],
  ]
  for (const [what, bytes] of notHttp) {
    it(`a request with ${what} is 400 malformed_request, written to the socket as problem+json`, async () => {
      const response = await sendRaw(port, bytes)
      const problem = assertProblem(response, 400, 'malformed_request')
      assert.equal(Number(response.headers['content-length']), Buffer.byteLength(response.body))
      assert.equal(response.headers.connection, 'close')
      assert.equal(response.headers['x-content-type-options'], 'nosniff')
      assert.equal(problem.instance, undefined, 'the request line may not have been read')
    })
  }

  it('the server keeps serving after refusing them', async () => {
    const response = await sendRaw(port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    assert.equal(response.statusCode, 200, response.body)
  })
})

describe('issue 11: a body that is not UTF-8 is refused', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  const post = (url: string, body: Buffer | string) =>
    t.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: body })

  it('a name with a byte that is not UTF-8 is 400 malformed_request, not stored as U+FFFD', async () => {
    const username = uniqueUsername()
    const response = await post(
      '/auth/register',
      latin1Json(
        `{"username":"${username}","password":"correct horse battery","firstName":"Ada\xff","lastName":"L"}`,
      ),
    )
    const problem = assertProblem(response, 400, 'malformed_request')
    assert.equal(problem.detail, 'The body is not valid UTF-8')
  })

  it('two passwords that differ only in bytes that are not UTF-8 cannot both match: neither is read', async () => {
    const username = uniqueUsername()
    const register = await post(
      '/auth/register',
      latin1Json(`{"username":"${username}","password":"pass-\xff-word","firstName":"Ada","lastName":"L"}`),
    )
    assertProblem(register, 400, 'malformed_request')
    const login = await post(
      '/auth/login',
      latin1Json(`{"username":"${username}","password":"pass-\xfe-word"}`),
    )
    assertProblem(login, 400, 'malformed_request')
  })

  it('JSON nested 10,000 deep, which parses, is checked against the schema (400 validation_failed), not called invalid JSON', async () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`
    const response = await post(
      '/auth/register',
      `{"username":${deep},"password":"x","firstName":"A","lastName":"L"}`,
    )
    assertProblem(response, 400, 'validation_failed')
    const hidden = await post(
      '/auth/register',
      `{"username":"${uniqueUsername()}","x":${'['.repeat(9_000)}"a\\u0000"${']'.repeat(9_000)}}`,
    )
    const problem = assertProblem(hidden, 400, 'malformed_request')
    assert.equal(problem.detail, 'The body contains a NUL character (\\u0000)')
  })

  it('UTF-8 text beyond ASCII is read as sent', async () => {
    const user = await registerUser(t.app, { firstName: 'Zoë', lastName: '李' })
    const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
    assert.equal(me.json().firstName, 'Zoë')
    assert.equal(me.json().lastName, '李')
  })
})

describe('issue 11: every invalid_token answer carries WWW-Authenticate', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp({
      modules: [
        ...routeModules,
        async (app) => {
          for (const code of ['invalid_token', 'token_expired'] as const) {
            app.get(
              `/throws/${code}`,
              {
                config: { auth: 'public', rateLimit: { none: 'a test' } },
                schema: { response: { 200: Type.Object({}) } },
              },
              async () => {
                throw new AppError(code, 'thrown with no headers')
              },
            )
          }
        },
      ],
    })
  })
  after(() => t.close())

  it('POST /auth/logout with no credentials is 401 invalid_token with the Bearer challenge', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/auth/logout' })
    assertProblem(response, 401, 'invalid_token')
    assert.match(String(response.headers['www-authenticate']), /^Bearer error="invalid_token"/)
  })

  it('an invalid_token or token_expired thrown without headers still gets the challenge', async () => {
    for (const code of ['invalid_token', 'token_expired']) {
      const response = await t.app.inject({ method: 'GET', url: `/throws/${code}` })
      assertProblem(response, 401, code)
      assert.equal(
        response.headers['www-authenticate'],
        'Bearer error="invalid_token", error_description="thrown with no headers"',
      )
    }
  })

  it('a challenge set where the error is thrown is kept as it is', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer('not.a.jwt') })
    assertProblem(response, 401, 'invalid_token')
    assert.match(String(response.headers['www-authenticate']), /^Bearer error="invalid_token"/)
  })
})

describe('issue 11: errors[].field is a JSON Pointer (RFC 6901)', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp({
      modules: [
        ...routeModules,
        async (app) => {
          app.post(
            '/pointer',
            {
              config: { auth: 'public', rateLimit: { none: 'a test' } },
              schema: {
                body: Type.Object({ 'a/b~c': Type.String() }, { additionalProperties: false }),
                response: { 200: Type.Object({}) },
              },
            },
            async () => ({}),
          )
        },
      ],
    })
  })
  after(() => t.close())

  it('an unknown field fz/x~y is reported as /body/fz~1x~0y', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username: uniqueUsername(), password: 'correct horse battery', ...ADA, 'fz/x~y': 1 },
    })
    const problem = assertProblem(response, 400, 'validation_failed')
    assert.deepEqual(problem.errors, [{ field: '/body/fz~1x~0y', message: 'is not an accepted field' }])
  })

  it('a missing required field a/b~c is reported as /body/a~1b~0c', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/pointer', payload: {} })
    const problem = assertProblem(response, 400, 'validation_failed')
    assert.deepEqual(
      problem.errors.map((error: { field: string }) => error.field),
      ['/body/a~1b~0c'],
    )
  })
})
