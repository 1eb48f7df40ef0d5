// Rate limits on login, register and refresh: per client address and per account, 429 problem+json with
// Retry-After. In the runs with Redis the counters live there; otherwise in the process.
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, registerUser, uniqueUsername } from '../helpers/fixtures.ts'

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
