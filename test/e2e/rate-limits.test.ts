// Rate limits on login, register, refresh and password change: per client address and per account, 429
// problem+json with Retry-After; and the hash queue's fair shares. In the runs with Redis the counters live there; otherwise in the process.
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  createPasswordHasher,
  type HashRequester,
  type PasswordHasher,
} from '../../src/auth/password-hasher.ts'
import { AppError } from '../../src/http/problem.ts'
import { buildTestApp, TEST_ARGON2, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, bearer, registerUser, uniqueUsername } from '../helpers/fixtures.ts'

const PASSWORD = 'correct horse battery'

describe('rate limits', () => {
  let t: TestApp
  afterEach(() => t?.close())

  const start = async (limits: Record<string, string>) => {
    t = await buildTestApp({ env: { RATE_LIMIT_WINDOW_SECONDS: '60', ...limits } })
    return t
  }
  const loginFrom = (ip: string, username: string, password = PASSWORD) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/login',
      remoteAddress: ip,
      payload: { username, password },
    })
  const registerFrom = (ip: string, username: string) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/register',
      remoteAddress: ip,
      payload: { username, password: PASSWORD, firstName: 'Ada', lastName: 'Lovelace' },
    })
  const refreshFrom = (ip: string, refreshToken: string) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      remoteAddress: ip,
      payload: { refresh_token: refreshToken },
    })

  const assertLimited = (response: Awaited<ReturnType<typeof loginFrom>>, windowSeconds = 60) => {
    assertProblem(response, 429, 'rate_limited')
    const retryAfter = Number(response.headers['retry-after'])
    assert.ok(
      Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= windowSeconds,
      `Retry-After: ${response.headers['retry-after']}`,
    )
  }

  it('counts logins per client address: past the limit 429 with Retry-After; other addresses go on', async () => {
    await start({ RATE_LIMIT_LOGIN_PER_IP: '3' })
    const user = await registerUser(t.app)
    for (let i = 0; i < 3; i++) assert.equal((await loginFrom('10.0.0.1', user.username)).statusCode, 200)
    assertLimited(await loginFrom('10.0.0.1', user.username))
    assertLimited(await loginFrom('10.0.0.1', uniqueUsername()), 60)
    assert.equal((await loginFrom('10.0.0.2', user.username)).statusCode, 200)
  })

  it("counts failed logins per username across addresses and case; the owner's logins do not clear them", async () => {
    await start({ RATE_LIMIT_LOGIN_PER_USERNAME: '3' })
    const user = await registerUser(t.app)
    const other = await registerUser(t.app)
    assert.equal((await loginFrom('10.0.1.1', user.username, 'wrong password')).statusCode, 401)
    for (let i = 0; i < 5; i++) {
      assert.equal((await loginFrom('10.0.1.2', user.username)).statusCode, 200, 'a success is not counted')
    }
    assert.equal((await loginFrom('10.0.1.3', user.username, 'wrong password')).statusCode, 401)
    assert.equal((await loginFrom('10.0.1.4', user.username.toUpperCase(), 'wrong again')).statusCode, 401)
    // Even the right password waits now: otherwise the limit would still let guessing go on.
    assertLimited(await loginFrom('10.0.1.5', user.username))
    assert.equal((await loginFrom('10.0.1.5', other.username)).statusCode, 200)
  })

  it('counts parallel guesses before the password is checked, so a burst cannot slip past', async () => {
    await start({ RATE_LIMIT_LOGIN_PER_USERNAME: '5' })
    const user = await registerUser(t.app)
    const burst = await Promise.all(
      Array.from({ length: 20 }, (_, i) => loginFrom(`10.0.2.${i}`, user.username, `guess number ${i}`)),
    )
    const statuses = burst.map((response) => response.statusCode).sort()
    assert.equal(statuses.filter((status) => status === 401).length, 5)
    assert.equal(statuses.filter((status) => status === 429).length, 15)
  })

  it('counts registrations per client address and per username', async () => {
    await start({ RATE_LIMIT_REGISTER_PER_IP: '2', RATE_LIMIT_REGISTER_PER_USERNAME: '2' })
    assert.equal((await registerFrom('10.0.3.1', uniqueUsername())).statusCode, 201)
    assert.equal((await registerFrom('10.0.3.1', uniqueUsername())).statusCode, 201)
    assertLimited(await registerFrom('10.0.3.1', uniqueUsername()))

    const contested = uniqueUsername()
    assert.equal((await registerFrom('10.0.3.2', contested)).statusCode, 201)
    assertProblem(await registerFrom('10.0.3.3', contested.toUpperCase()), 409, 'username_taken')
    assertLimited(await registerFrom('10.0.3.4', contested))
  })

  it('counts refreshes per client address and per session', async () => {
    await start({ RATE_LIMIT_REFRESH_PER_IP: '3', RATE_LIMIT_REFRESH_PER_SESSION: '4' })
    const user = await registerUser(t.app)
    let refreshToken = (await loginFrom('10.0.4.1', user.username)).json().refresh_token as string
    const refresh = async (ip: string) => {
      const response = await refreshFrom(ip, refreshToken)
      if (response.statusCode === 200) refreshToken = response.json().refresh_token
      return response
    }
    for (let i = 0; i < 3; i++) assert.equal((await refresh('10.0.4.2')).statusCode, 200)
    assertLimited(await refresh('10.0.4.2'))
    // The same session from another address: its fourth refresh is its last in this window.
    assert.equal((await refresh('10.0.4.3')).statusCode, 200)
    assertLimited(await refresh('10.0.4.4'))
  })

  it('never lets the per-session limit hide the reuse of a spent refresh token', async () => {
    t = await buildTestApp({
      env: { RATE_LIMIT_REFRESH_PER_SESSION: '2', REFRESH_REUSE_WINDOW_SECONDS: '0' },
    })
    const user = await registerUser(t.app)
    const stolen = (await loginFrom('10.0.7.1', user.username)).json().refresh_token as string
    // The thief refreshes as fast as the limit allows...
    const first = await refreshFrom('10.0.7.2', stolen)
    assert.equal(first.statusCode, 200)
    const second = await refreshFrom('10.0.7.2', first.json().refresh_token)
    assert.equal(second.statusCode, 200)
    assertLimited(await refreshFrom('10.0.7.2', second.json().refresh_token))
    // ...and the owner's spent token is still recognized as reuse, which ends the session.
    assertProblem(await refreshFrom('10.0.7.3', stolen), 401, 'refresh_token_reused')
    const afterReuse = await refreshFrom('10.0.7.2', second.json().refresh_token)
    assertProblem(afterReuse, 401, 'invalid_refresh_token')
  })

  it('lifts a limit when its window ends', async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_WINDOW_SECONDS: '1', RATE_LIMIT_LOGIN_PER_IP: '1' } })
    const user = await registerUser(t.app)
    assert.equal((await loginFrom('10.0.5.1', user.username)).statusCode, 200)
    assertLimited(await loginFrom('10.0.5.1', user.username), 1)
    await sleep(1100)
    assert.equal((await loginFrom('10.0.5.1', user.username)).statusCode, 200)
  })

  it('turns a limit off with 0', async () => {
    await start({ RATE_LIMIT_LOGIN_PER_IP: '0', RATE_LIMIT_LOGIN_PER_USERNAME: '0' })
    const user = await registerUser(t.app)
    for (let i = 0; i < 30; i++) {
      assert.equal((await loginFrom('10.0.6.1', user.username, 'wrong password')).statusCode, 401)
    }
  })
})

describe('POST /users/me/password is limited like a login (issue 10)', () => {
  let t: TestApp
  afterEach(() => t?.close())

  const changeFrom = (ip: string, token: string, currentPassword: string) =>
    t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      remoteAddress: ip,
      headers: bearer(token),
      payload: { currentPassword, newPassword: 'a brand new passphrase' },
    })

  it('counts password changes per signed-in user, across addresses: past the limit 429 with Retry-After', async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_PASSWORD_CHANGE_PER_USER: '3' } })
    const user = await registerUser(t.app)
    for (let i = 0; i < 3; i++) {
      assertProblem(
        await changeFrom(`10.0.0.${i}`, user.token, 'wrong guess'),
        400,
        'invalid_current_password',
      )
    }
    const limited = await changeFrom('10.0.0.9', user.token, user.password)
    assertProblem(limited, 429, 'rate_limited')
    assert.ok(Number(limited.headers['retry-after']) >= 1)
  })

  it('counts password changes per client address, across users', async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_PASSWORD_CHANGE_PER_IP: '2' } })
    const [ada, grace, alan] = [
      await registerUser(t.app),
      await registerUser(t.app),
      await registerUser(t.app),
    ]
    assertProblem(await changeFrom('10.0.0.1', ada.token, 'wrong'), 400, 'invalid_current_password')
    assertProblem(await changeFrom('10.0.0.1', grace.token, 'wrong'), 400, 'invalid_current_password')
    assertProblem(await changeFrom('10.0.0.1', alan.token, alan.password), 429, 'rate_limited')
    assert.equal((await changeFrom('10.0.0.2', alan.token, alan.password)).statusCode, 204)
  })

  it('does not count a refused new password (checked before the current one) as a failed login', async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_LOGIN_PER_USERNAME: '2' } })
    const user = await registerUser(t.app)
    for (let i = 0; i < 3; i++) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/users/me/password',
        headers: bearer(user.token),
        payload: { currentPassword: 'not even checked', newPassword: 'password123' },
      })
      assertProblem(response, 400, 'validation_failed')
    }
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: user.username, password: user.password },
    })
    assert.equal(login.statusCode, 200, login.body)
  })

  it('counts a wrong current password as a failed login of the account, and a right one not', async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_LOGIN_PER_USERNAME: '3' } })
    const user = await registerUser(t.app)
    const other = await registerUser(t.app)
    // A right current password is given back: these leave the account's failures at 0.
    assert.equal((await changeFrom('10.0.0.1', other.token, other.password)).statusCode, 204)
    for (let i = 0; i < 3; i++) {
      assertProblem(await changeFrom('10.0.0.1', user.token, `guess ${i}`), 400, 'invalid_current_password')
    }
    // Three failures, from a stolen token: the account's login now waits too, even with the right password.
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      remoteAddress: '192.0.2.1',
      payload: { username: user.username, password: user.password },
    })
    assertProblem(login, 429, 'rate_limited')
  })
})

describe('password checks share the hash queue fairly (issue 10)', () => {
  let t: TestApp
  afterEach(() => t?.close())

  it("a flood of wrong guesses from one account does not refuse another user's correct login", async () => {
    // Slow hashes (about 0.1 s), two at a time: the flood queues for real, and drains slowly enough that the
    // login below arrives while it holds all the room it can. The route's own limits are off (TEST_ENV), so
    // that only the hash queue stands between the flood and everyone else.
    t = await buildTestApp({
      overrides: { hasher: createPasswordHasher({ memoryKib: 65_536, iterations: 3, parallelism: 1 }, 2) },
    })
    const attacker = await registerUser(t.app)
    const victim = await registerUser(t.app)
    const flood = Array.from({ length: 150 }, (_, i) =>
      t.app.inject({
        method: 'POST',
        url: '/users/me/password',
        remoteAddress: '203.0.113.7',
        headers: bearer(attacker.token),
        payload: { currentPassword: `wrong guess ${i}`, newPassword: 'a brand new passphrase' },
      }),
    )
    // The first answer to the flood comes once it has taken all the room it can take (the rest is refused).
    await Promise.race(flood)
    const loginResponse = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      remoteAddress: '198.51.100.20',
      payload: { username: victim.username, password: victim.password },
    })
    const floodResponses = await Promise.all(flood)
    assert.equal(loginResponse.statusCode, 200, loginResponse.body)
    const statuses = floodResponses.map((response) => response.statusCode)
    // The flood is refused past its share at once (429), and what it was allowed was checked (400).
    assert.ok(
      statuses.every((status) => status === 400 || status === 429),
      String(new Set(statuses)),
    )
    assert.ok(statuses.filter((status) => status === 429).length >= 100)
  })
})

describe('what a flood must not do (issue 10, from an outside review)', () => {
  let t: TestApp
  afterEach(() => t?.close())

  it('a refused first hash does not make every unknown username answer 429 from then on', async () => {
    const real = createPasswordHasher(TEST_ARGON2)
    let refusals = 1
    const hasher: PasswordHasher = {
      ...real,
      async hash(password, requester) {
        if (refusals-- > 0) throw new AppError('rate_limited', 'busy')
        return real.hash(password, requester)
      },
    }
    t = await buildTestApp({ overrides: { hasher } })
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: uniqueUsername('nobody'), password: 'any password at all' },
    })
    assertProblem(login, 401, 'invalid_credentials')
  })

  it("registering a taken name costs the address's share of the hash queue, not the name owner's", async () => {
    const real = createPasswordHasher(TEST_ARGON2)
    const requesters: (HashRequester | undefined)[] = []
    const hasher: PasswordHasher = {
      ...real,
      hash: (password, requester) => {
        requesters.push(requester)
        return real.hash(password, requester)
      },
    }
    t = await buildTestApp({ overrides: { hasher } })
    requesters.length = 0
    await registerFrom(t, '203.0.113.9', uniqueUsername())
    assert.deepEqual(requesters, [{ address: '203.0.113.9' }])
  })

  it('a 429 on a cookie refresh leaves the cookie alone: it still holds the live token', async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_REFRESH_PER_SESSION: '1' } })
    const user = await registerUser(t.app)
    const login = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: user.username, password: user.password, refresh_token_delivery: 'cookie' },
    })
    const cookieOf = (response: typeof login) =>
      String(String([response.headers['set-cookie']].flat()[0]).split(';')[0])
    const refreshWith = (cookie: string) =>
      t.app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, 'x-tessera-csrf': '1' } })
    const first = await refreshWith(cookieOf(login))
    assert.equal(first.statusCode, 200)
    const limited = await refreshWith(cookieOf(first))
    assertProblem(limited, 429, 'rate_limited')
    assert.equal(limited.headers['set-cookie'], undefined)
  })
})

function registerFrom(t: TestApp, ip: string, username: string) {
  return t.app.inject({
    method: 'POST',
    url: '/auth/register',
    remoteAddress: ip,
    payload: { username, password: 'correct horse battery', firstName: 'Ada', lastName: 'Lovelace' },
  })
}
