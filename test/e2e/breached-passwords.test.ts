// Issue 14, point 4: with PWNED_PASSWORDS_URL, a password found in breaches is refused at register, change and
// reset, by a local server that speaks the real range protocol; when that service does not answer in time,
// the password goes through (fail open).
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { BREACHED } from '../../src/auth/new-password.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, bearer, createAdmin, registerUser, uniqueUsername } from '../helpers/fixtures.ts'
import { type PwnedRangeServer, startPwnedRangeServer } from '../helpers/pwned-range-server.ts'

const BREACHED_PASSWORD = 'a breached long passphrase'
const CLEAN_PASSWORD = 'an unbreached long passphrase'

describe('issue 14: passwords found in breaches (PWNED_PASSWORDS_URL)', () => {
  let pwned: PwnedRangeServer
  let t: TestApp
  before(async () => {
    pwned = await startPwnedRangeServer({ breached: { [BREACHED_PASSWORD]: 42 } })
    t = await buildTestApp({ env: { PWNED_PASSWORDS_URL: pwned.url, PWNED_PASSWORDS_TIMEOUT_MS: '300' } })
  })
  after(async () => {
    await t.close()
    await pwned.close()
  })

  const register = (password: string) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username: uniqueUsername(), password, firstName: 'Ada', lastName: 'Lovelace' },
    })

  it('refuses one at registration, naming the field and the rule, having sent only 5 characters of its SHA-1', async () => {
    const sent = pwned.requests.length
    const body = assertProblem(await register(BREACHED_PASSWORD), 400, 'validation_failed')
    assert.deepEqual(body.errors, [{ field: '/body/password', message: BREACHED }])
    assert.deepEqual(
      pwned.requests.slice(sent).map((path) => /^\/range\/[0-9A-F]{5}$/.test(path)),
      [true],
    )
    assert.equal((await register(CLEAN_PASSWORD)).statusCode, 201)
  })

  it('refuses one as a new password, at password change and at reset', async () => {
    const user = await registerUser(t.app, { password: CLEAN_PASSWORD })
    const change = await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(user.token),
      payload: { currentPassword: CLEAN_PASSWORD, newPassword: BREACHED_PASSWORD },
    })
    assert.deepEqual(assertProblem(change, 400, 'validation_failed').errors, [
      { field: '/body/newPassword', message: BREACHED },
    ])
    const admin = await createAdmin(t.app, t.deps)
    const { token } = (
      await t.app.inject({
        method: 'POST',
        url: `/users/${user.id}/password-reset`,
        headers: bearer(admin.token),
      })
    ).json()
    const reset = (newPassword: string) =>
      t.app.inject({ method: 'POST', url: '/auth/password-reset', payload: { token, newPassword } })
    assert.deepEqual(assertProblem(await reset(BREACHED_PASSWORD), 400, 'validation_failed').errors, [
      { field: '/body/newPassword', message: BREACHED },
    ])
    assert.equal((await reset('another clean passphrase')).statusCode, 204)
  })

  it('lets a password through when the service does not answer in time (fail open)', async () => {
    pwned.answer.delayMs = 1000
    try {
      assert.equal((await register(BREACHED_PASSWORD)).statusCode, 201)
    } finally {
      pwned.answer.delayMs = 0
    }
  })
})
