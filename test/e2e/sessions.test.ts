import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createPasswordHasher } from '../../src/auth/password-hasher.ts'
import { createFixedClock } from '../../src/lib/clock.ts'
import { buildTestApp, TEST_ARGON2, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, bearer, createAdmin, registerUser, type TestUser } from '../helpers/fixtures.ts'

type Grant = {
  access_token: string
  refresh_token: string
  expires_in: number
  refresh_token_expires_in: number
}

const DAY_MS = 86_400_000

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'))
}

async function signIn(t: TestApp, user: TestUser, userAgent = 'test-agent'): Promise<Grant> {
  const response = await t.app.inject({
    method: 'POST',
    url: '/auth/login',
    headers: { 'user-agent': userAgent },
    payload: { username: user.username, password: user.password },
  })
  assert.equal(response.statusCode, 200, response.body)
  return response.json()
}

function refresh(t: TestApp, refreshToken: string) {
  return t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })
}

async function me(t: TestApp, accessToken: string) {
  return t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(accessToken) })
}

describe('sessions: refresh-token rotation and reuse detection', () => {
  const clock = createFixedClock(Date.now())
  let t: TestApp
  before(async () => {
    t = await buildTestApp({ overrides: { clock } })
  })
  after(() => t.close())

  it('login starts a session: an opaque refresh token, and an access token carrying the session id', async () => {
    const grant = await signIn(t, await registerUser(t.app))
    assert.match(grant.refresh_token, /^[A-Za-z0-9_-]{71}$/)
    assert.equal(grant.refresh_token_expires_in, 30 * 86_400)
    const sid = String(claimsOf(grant.access_token).sid)
    const row = await t.deps.db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', sid)
      .executeTakeFirstOrThrow()
    assert.ok(!JSON.stringify(row).includes(grant.refresh_token), 'the token is not stored')
    assert.equal(row.refresh_generation, 0)
  })

  it('POST /auth/refresh spends the refresh token for a new access token and a new refresh token', async () => {
    const first = await signIn(t, await registerUser(t.app))
    const response = await refresh(t, first.refresh_token)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.headers['cache-control'], 'no-store')
    const second: Grant = response.json()
    assert.notEqual(second.refresh_token, first.refresh_token)
    assert.notEqual(second.access_token, first.access_token)
    assert.equal(claimsOf(second.access_token).sid, claimsOf(first.access_token).sid)
    assert.equal((await me(t, second.access_token)).statusCode, 200)
    assert.equal((await refresh(t, second.refresh_token)).statusCode, 200)
  })

  it('a repeat of the just-spent token, within the reuse window, gets the very same new refresh token', async () => {
    const first = await signIn(t, await registerUser(t.app))
    const a: Grant = (await refresh(t, first.refresh_token)).json()
    clock.advance(2_000)
    const b: Grant = (await refresh(t, first.refresh_token)).json()
    assert.equal(b.refresh_token, a.refresh_token, 'the session keeps one live refresh token')
    assert.equal((await me(t, b.access_token)).statusCode, 200)
    assert.equal((await refresh(t, a.refresh_token)).statusCode, 200)
  })

  it('N parallel refreshes with one token: one rotation, every caller gets a working token, nothing revoked', async () => {
    const first = await signIn(t, await registerUser(t.app))
    const responses = await Promise.all(Array.from({ length: 12 }, () => refresh(t, first.refresh_token)))
    for (const response of responses) assert.equal(response.statusCode, 200, response.body)
    const tokens = new Set(responses.map((r) => r.json().refresh_token))
    assert.equal(tokens.size, 1, 'all callers hold the same, single live refresh token')
    const sid = String(claimsOf(first.access_token).sid)
    const row = await t.deps.db
      .selectFrom('sessions')
      .select('refresh_generation')
      .where('id', '=', sid)
      .executeTakeFirstOrThrow()
    assert.equal(Number(row.refresh_generation), 1, 'exactly one rotation happened')
    for (const response of responses)
      assert.equal((await me(t, response.json().access_token)).statusCode, 200)
    const [live] = tokens
    assert.equal((await refresh(t, String(live))).statusCode, 200, 'the session is still alive')
  })

  it('reuse after the window answers 401 and revokes the session: its newer refresh and access tokens die too', async () => {
    const first = await signIn(t, await registerUser(t.app))
    const second: Grant = (await refresh(t, first.refresh_token)).json()
    clock.advance(6_000)
    assertProblem(await refresh(t, first.refresh_token), 401, 'refresh_token_reused')
    assertProblem(await refresh(t, second.refresh_token), 401, 'invalid_refresh_token')
    assertProblem(await me(t, second.access_token), 401, 'invalid_token')
    assertProblem(await me(t, first.access_token), 401, 'invalid_token')
  })

  it('refuses unknown and malformed refresh tokens, and an access token presented as a refresh token', async () => {
    const grant = await signIn(t, await registerUser(t.app))
    for (const token of ['A'.repeat(43), 'short', grant.access_token]) {
      assertProblem(await refresh(t, token), 401, 'invalid_refresh_token')
    }
    const empty = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: {} })
    assertProblem(empty, 401, 'invalid_refresh_token')
    assert.equal((await refresh(t, grant.refresh_token)).statusCode, 200, 'the session was not harmed')
  })

  it('refuses a refresh token presented as an access token', async () => {
    const grant = await signIn(t, await registerUser(t.app))
    assertProblem(await me(t, grant.refresh_token), 401, 'invalid_token')
  })
})

describe('sessions: logout and revocation', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  it('POST /auth/logout ends the current session: its access and refresh tokens stop working', async () => {
    const user = await registerUser(t.app)
    const other = await signIn(t, user)
    const grant = await signIn(t, user)
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers: bearer(grant.access_token),
    })
    assert.equal(response.statusCode, 204)
    assertProblem(await me(t, grant.access_token), 401, 'invalid_token')
    assertProblem(await refresh(t, grant.refresh_token), 401, 'invalid_refresh_token')
    assert.equal((await me(t, other.access_token)).statusCode, 200, 'other sessions are untouched')
  })

  it('POST /auth/logout also ends a session by its refresh token, and is idempotent', async () => {
    const grant = await signIn(t, await registerUser(t.app))
    for (let i = 0; i < 2; i++) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/auth/logout',
        payload: { refresh_token: grant.refresh_token },
      })
      assert.equal(response.statusCode, 204)
    }
    assertProblem(await me(t, grant.access_token), 401, 'invalid_token')
  })

  it('POST /auth/logout with nothing to identify a session is 401; with a bad access token too', async () => {
    assertProblem(await t.app.inject({ method: 'POST', url: '/auth/logout' }), 401, 'invalid_token')
    const bad = await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer('x.y.z') })
    assertProblem(bad, 401, 'invalid_token')
  })

  it('POST /auth/logout-all ends every session of the user', async () => {
    const user = await registerUser(t.app)
    const a = await signIn(t, user)
    const b = await signIn(t, user)
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/logout-all',
      headers: bearer(a.access_token),
    })
    assert.equal(response.statusCode, 204)
    for (const grant of [a, b]) {
      assertProblem(await me(t, grant.access_token), 401, 'invalid_token')
      assertProblem(await refresh(t, grant.refresh_token), 401, 'invalid_refresh_token')
    }
  })

  it("GET /auth/sessions lists the user's own active sessions, the current one marked", async () => {
    const user = await registerUser(t.app)
    await signIn(t, user, 'phone')
    const current = await signIn(t, user, 'laptop')
    await signIn(t, await registerUser(t.app), 'someone else')
    const response = await t.app.inject({
      method: 'GET',
      url: '/auth/sessions',
      headers: bearer(current.access_token),
    })
    assert.equal(response.statusCode, 200)
    const { sessions } = response.json()
    // registerUser's own login is a session too.
    assert.equal(sessions.length, 3)
    const marked = sessions.filter((s: { current: boolean }) => s.current)
    assert.equal(marked.length, 1)
    assert.equal(marked[0].id, claimsOf(current.access_token).sid)
    assert.equal(marked[0].userAgent, 'laptop')
    assert.equal(marked[0].ip, '127.0.0.1')
  })

  it("DELETE /auth/sessions/{id} ends one session; 404 for an unknown or another user's session", async () => {
    const user = await registerUser(t.app)
    const phone = await signIn(t, user, 'phone')
    const laptop = await signIn(t, user, 'laptop')
    const phoneSid = String(claimsOf(phone.access_token).sid)
    const response = await t.app.inject({
      method: 'DELETE',
      url: `/auth/sessions/${phoneSid}`,
      headers: bearer(laptop.access_token),
    })
    assert.equal(response.statusCode, 204)
    assertProblem(await me(t, phone.access_token), 401, 'invalid_token')
    assert.equal((await me(t, laptop.access_token)).statusCode, 200)

    const stranger = await signIn(t, await registerUser(t.app))
    const strangerSid = String(claimsOf(stranger.access_token).sid)
    const foreign = await t.app.inject({
      method: 'DELETE',
      url: `/auth/sessions/${strangerSid}`,
      headers: bearer(laptop.access_token),
    })
    assertProblem(foreign, 404, 'session_not_found')
    assert.equal((await me(t, stranger.access_token)).statusCode, 200)
    const again = await t.app.inject({
      method: 'DELETE',
      url: `/auth/sessions/${phoneSid}`,
      headers: bearer(laptop.access_token),
    })
    assertProblem(again, 404, 'session_not_found')
  })

  it('a password change ends every session of the user, refresh tokens included', async () => {
    const user = await registerUser(t.app)
    const grant = await signIn(t, user)
    const response = await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(grant.access_token),
      payload: { currentPassword: user.password, newPassword: 'an entirely new one' },
    })
    assert.equal(response.statusCode, 204)
    assertProblem(await refresh(t, grant.refresh_token), 401, 'invalid_refresh_token')
  })

  it('disabling a user ends their sessions; deleting one removes them', async () => {
    const admin = await createAdmin(t.app, t.deps)
    const disabled = await registerUser(t.app)
    const disabledGrant = await signIn(t, disabled)
    await t.app.inject({
      method: 'PATCH',
      url: `/users/${disabled.id}`,
      headers: bearer(admin.token),
      payload: { disabled: true },
    })
    assertProblem(await refresh(t, disabledGrant.refresh_token), 401, 'invalid_refresh_token')
    await t.app.inject({
      method: 'PATCH',
      url: `/users/${disabled.id}`,
      headers: bearer(admin.token),
      payload: { disabled: false },
    })
    assertProblem(await refresh(t, disabledGrant.refresh_token), 401, 'invalid_refresh_token')

    const deleted = await registerUser(t.app)
    const deletedGrant = await signIn(t, deleted)
    await t.app.inject({ method: 'DELETE', url: `/users/${deleted.id}`, headers: bearer(admin.token) })
    assertProblem(await refresh(t, deletedGrant.refresh_token), 401, 'invalid_refresh_token')
    const left = await t.deps.db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', deleted.id)
      .execute()
    assert.equal(left.length, 0)
  })
})

describe('sessions: expiry and housekeeping, with a controlled clock', () => {
  const clock = createFixedClock(Date.now())
  let t: TestApp
  before(async () => {
    t = await buildTestApp({ overrides: { clock } })
  })
  after(() => t.close())

  it('ends a session not refreshed for 7 days (idle expiry)', async () => {
    const grant = await signIn(t, await registerUser(t.app))
    clock.advance(7 * DAY_MS + 1_000)
    assertProblem(await refresh(t, grant.refresh_token), 401, 'session_expired')
  })

  it('keeps a session refreshed within 7 days alive, until its 30-day absolute expiry', async () => {
    let grant = await signIn(t, await registerUser(t.app))
    for (let day = 6; day < 30; day += 6) {
      clock.advance(6 * DAY_MS)
      const response = await refresh(t, grant.refresh_token)
      assert.equal(response.statusCode, 200, `day ${day}: ${response.body}`)
      grant = response.json()
      assert.ok(grant.refresh_token_expires_in <= (30 - day) * 86_400)
    }
    clock.advance(6 * DAY_MS)
    assertProblem(await refresh(t, grant.refresh_token), 401, 'session_expired')
  })

  it('purges expired and revoked sessions with their refresh tokens, and keeps live ones', async () => {
    const user = await registerUser(t.app)
    const live = await signIn(t, user)
    const revoked = await signIn(t, user)
    await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(revoked.access_token) })
    const purged = await t.deps.services.sessions.purge()
    assert.ok(purged >= 1)
    const sessions = await t.deps.db
      .selectFrom('sessions')
      .select('id')
      .where('user_id', '=', user.id)
      .execute()
    assert.deepEqual(
      sessions.map((s) => s.id).sort(),
      [String(claimsOf(live.access_token).sid), String(claimsOf(user.token).sid)].sort(),
    )
    const orphans = await t.deps.db
      .selectFrom('refresh_tokens')
      .leftJoin('sessions', 'sessions.id', 'refresh_tokens.session_id')
      .where('sessions.id', 'is', null)
      .select('token_hash')
      .execute()
    assert.equal(orphans.length, 0)
    clock.advance(31 * DAY_MS)
    await t.deps.services.sessions.purge()
    const after = await t.deps.db.selectFrom('sessions').select('id').where('user_id', '=', user.id).execute()
    assert.equal(after.length, 0)
  })
})

describe('sessions: browser cookie mode', () => {
  // Secure (PUBLIC_URL is https-like in tests: not plain-HTTP localhost), hence the __Host- prefix.
  const COOKIE = '__Host-tessera_refresh_token'
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  function cookieOf(response: { headers: Record<string, unknown> }): string {
    const header = [response.headers['set-cookie']].flat().find((c) => String(c).startsWith(`${COOKIE}=`))
    assert.ok(header, 'sets the refresh cookie')
    return String(header)
  }

  async function cookieLogin(user: TestUser) {
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: user.username, password: user.password, refresh_token_delivery: 'cookie' },
    })
    assert.equal(response.statusCode, 200, response.body)
    return { response, cookie: cookieOf(response) }
  }

  const cookieValue = (setCookie: string) => setCookie.split(';')[0]?.split('=')[1] ?? ''

  it('login sets the refresh token as a __Host- cookie: HttpOnly, Secure, SameSite=Strict, Path=/, no Domain; not in the body (issue 11)', async () => {
    const { response, cookie } = await cookieLogin(await registerUser(t.app))
    assert.equal(response.json().refresh_token, undefined)
    assert.match(cookie, /^__Host-tessera_refresh_token=/)
    assert.match(cookie, /; HttpOnly/)
    assert.match(cookie, /; Secure/)
    assert.match(cookie, /; SameSite=Strict/)
    assert.match(cookie, /; Path=\/(;|$)/)
    assert.doesNotMatch(cookie, /Domain=/i)
    assert.match(cookie, /; Max-Age=2592000/)
  })

  it('refuses a refresh or logout that carries two refresh cookies (one may be planted), and spends neither (issue 11)', async () => {
    const { cookie } = await cookieLogin(await registerUser(t.app))
    const planted = `${COOKIE}=planted-by-a-sibling-subdomain`
    // The parser trims a name, so a planted one with blanks before its `=` is the same cookie (an outside attack).
    const spaced = `${COOKIE} =planted`
    const tabbed = `${COOKIE}\t=planted`
    const real = cookie.split(';')[0]
    for (const url of ['/auth/refresh', '/auth/logout']) {
      for (const pair of [
        `${planted}; ${real}`,
        `${real}; ${planted}`,
        `${spaced}; ${real}`,
        `${tabbed};${real}`,
      ]) {
        const response = await t.app.inject({
          method: 'POST',
          url,
          headers: { cookie: pair, 'x-tessera-csrf': '1' },
        })
        assertProblem(response, 400, 'malformed_request')
      }
    }
    const ok = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      cookies: { [COOKIE]: cookieValue(cookie) },
      headers: { 'x-tessera-csrf': '1' },
    })
    assert.equal(ok.statusCode, 200, 'the session was neither spent nor ended')
  })

  it('over plain-HTTP localhost (no Secure), the cookie keeps its unprefixed name, scoped to /auth', async () => {
    const local = await buildTestApp({ env: { PUBLIC_URL: 'http://127.0.0.1:8000' } })
    try {
      const user = await registerUser(local.app)
      const response = await local.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: user.username, password: user.password, refresh_token_delivery: 'cookie' },
      })
      const cookie = String([response.headers['set-cookie']].flat()[0])
      assert.match(cookie, /^tessera_refresh_token=.*; Path=\/auth/)
      assert.doesNotMatch(cookie, /; Secure/)
    } finally {
      await local.close()
    }
  })

  it('refresh by cookie without the CSRF header is 403 csrf_check_failed, and rotates nothing', async () => {
    const { cookie } = await cookieLogin(await registerUser(t.app))
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      cookies: { [COOKIE]: cookieValue(cookie) },
    })
    assertProblem(response, 403, 'csrf_check_failed')
    const ok = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      cookies: { [COOKIE]: cookieValue(cookie) },
      headers: { 'x-tessera-csrf': '1' },
    })
    assert.equal(ok.statusCode, 200, 'the token was not spent by the refused request')
  })

  it('refresh by cookie with the CSRF header rotates the cookie and returns only the access token', async () => {
    const { cookie } = await cookieLogin(await registerUser(t.app))
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      cookies: { [COOKIE]: cookieValue(cookie) },
      headers: { 'x-tessera-csrf': '1' },
    })
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json().refresh_token, undefined)
    assert.notEqual(cookieValue(cookieOf(response)), cookieValue(cookie))
    assert.equal((await me(t, response.json().access_token)).statusCode, 200)
  })

  it('logout by cookie needs the CSRF header too, ends the session and clears the cookie', async () => {
    const { response: login, cookie } = await cookieLogin(await registerUser(t.app))
    const refused = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      cookies: { [COOKIE]: cookieValue(cookie) },
    })
    assertProblem(refused, 403, 'csrf_check_failed')
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      cookies: { [COOKIE]: cookieValue(cookie) },
      headers: { 'x-tessera-csrf': '1' },
    })
    assert.equal(response.statusCode, 204)
    assert.match(cookieOf(response), /Expires=Thu, 01 Jan 1970/)
    assertProblem(await me(t, login.json().access_token), 401, 'invalid_token')
  })
})

describe('sessions: races (review findings)', () => {
  it('a login whose password check races a password change gets no session (401), not one that outlives it', async () => {
    // A hasher whose verify of the old password waits until the test lets it go, so the race is certain.
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const real = createPasswordHasher(TEST_ARGON2)
    let gated = true // armed only for the racing login below
    const hasher = {
      ...real,
      async verify(hash: string, password: string) {
        const result = await real.verify(hash, password)
        if (password === 'the old password' && !gated) {
          gated = true
          await gate
        }
        return result
      },
    }
    const t = await buildTestApp({ overrides: { hasher } })
    try {
      const user = await registerUser(t.app, { password: 'the old password' })
      gated = false
      const racingLogin = t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: user.username, password: 'the old password' },
      })
      await new Promise((resolve) => setTimeout(resolve, 20))
      const change = await t.app.inject({
        method: 'POST',
        url: '/users/me/password',
        headers: bearer(user.token),
        payload: { currentPassword: 'the old password', newPassword: 'the new password' },
      })
      assert.equal(change.statusCode, 204)
      release()
      assertProblem(await racingLogin, 401, 'invalid_credentials')
      const live = await t.deps.services.sessions.list(user.id)
      assert.deepEqual(live, [], 'no session survives the password change')
    } finally {
      await t.close()
    }
  })

  it('a refresh token is not spent once its session was revoked, even by a refresh already under way', async () => {
    const t = await buildTestApp()
    try {
      const grant = await signIn(t, await registerUser(t.app))
      const sid = String(claimsOf(grant.access_token).sid)
      await t.deps.repositories.sessions.revoke(sid, 'logout', Math.floor(Date.now() / 1000))
      const rotated = await t.deps.repositories.sessions.rotate(sid, 0, Math.floor(Date.now() / 1000))
      assert.equal(rotated, false)
      assertProblem(await refresh(t, grant.refresh_token), 401, 'invalid_refresh_token')
    } finally {
      await t.close()
    }
  })

  it('with REFRESH_REUSE_WINDOW_SECONDS=0, a repeat in the same second is reuse and revokes the session', async () => {
    const t = await buildTestApp({
      env: { REFRESH_REUSE_WINDOW_SECONDS: '0' },
      overrides: { clock: createFixedClock(Date.now()) },
    })
    try {
      const grant = await signIn(t, await registerUser(t.app))
      assert.equal((await refresh(t, grant.refresh_token)).statusCode, 200)
      assertProblem(await refresh(t, grant.refresh_token), 401, 'refresh_token_reused')
    } finally {
      await t.close()
    }
  })
})
