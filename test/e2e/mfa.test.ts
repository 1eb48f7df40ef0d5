// Issue 15: a second factor. TOTP enrolment with recovery codes, login in two steps, step-up for sensitive
// routes (RFC 9470), and removal by the user, an admin or the operator. All through HTTP; every TOTP code sent
// is computed by the tests' own RFC 6238 (test/helpers/totp.ts), never by the server's library.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { base32Of } from '../../src/auth/totp.ts'
import { createFixedClock } from '../../src/lib/clock.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import {
  assertProblem,
  bearer,
  createAdmin,
  login,
  registerUser,
  type TestUser,
} from '../helpers/fixtures.ts'
import { base32Decode, totp } from '../helpers/totp.ts'

// biome-ignore lint/suspicious/noExplicitAny: the tests read the fields they expect and assert on them.
type Json = any
type Clock = ReturnType<typeof createFixedClock>

const claimsOf = (token: string): Json =>
  JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString())
const now = (clock: Clock) => Math.floor(clock.now() / 1000)

/** A user with a confirmed TOTP factor: its secret, and its recovery codes. */
type Enrolled = TestUser & { secret: Buffer; recoveryCodes: string[] }

function post(t: TestApp, url: string, payload?: object, token?: string) {
  return t.app.inject({
    method: 'POST',
    url,
    ...(payload ? { payload } : {}),
    ...(token ? { headers: bearer(token) } : {}),
  })
}

/** A test app of its own, with these settings and a clock the test moves; closed whatever happens. */
async function withApp(env: Record<string, string>, run: (t: TestApp, clock: Clock) => Promise<void>) {
  const clock = createFixedClock()
  const t = await buildTestApp({ overrides: { clock }, env })
  try {
    await run(t, clock)
  } finally {
    await t.close()
  }
}

async function enrol(t: TestApp, clock: Clock, user: TestUser): Promise<Enrolled> {
  const started = await post(t, '/auth/mfa/totp', undefined, user.token)
  assert.equal(started.statusCode, 200, started.body)
  const secret = base32Decode(started.json().secret)
  const confirmed = await post(t, '/auth/mfa/totp/confirm', { code: totp(secret, now(clock)) }, user.token)
  assert.equal(confirmed.statusCode, 200, confirmed.body)
  // The code just used is spent: later logins of the test use the next steps.
  clock.advance(30_000)
  return { ...user, secret, recoveryCodes: confirmed.json().recovery_codes }
}

/** The first step of a login of an enrolled user: its MFA token. */
async function mfaToken(t: TestApp, user: TestUser): Promise<string> {
  const response = await post(t, '/auth/login', { username: user.username, password: user.password })
  assert.equal(response.statusCode, 200, response.body)
  const body = response.json()
  assert.equal(body.mfa_required, true)
  return body.mfa_token
}

const secondStep = (
  t: TestApp,
  token: string,
  factor: { code?: string; recovery_code?: string },
  remoteAddress?: string,
) =>
  t.app.inject({
    method: 'POST',
    url: '/auth/login/mfa',
    payload: { mfa_token: token, ...factor },
    ...(remoteAddress ? { remoteAddress } : {}),
  })

async function activity(t: TestApp, token: string): Promise<string[]> {
  const response = await t.app.inject({
    method: 'GET',
    url: '/auth/activity?limit=100',
    headers: bearer(token),
  })
  assert.equal(response.statusCode, 200, response.body)
  return response.json().events.map((event: Json) => event.type)
}

describe('enrolment', () => {
  let t: TestApp
  let clock: Clock
  before(async () => {
    clock = createFixedClock()
    t = await buildTestApp({
      overrides: { clock },
      env: { KEY_ENCRYPTION_SECRET: 'second-factor-at-rest-secret-0123456789abcdef' },
    })
  })
  after(() => t.close())

  it('returns the secret, an otpauth:// URI that authenticator apps read, and a QR code as SVG', async () => {
    const user = await registerUser(t.app)
    const response = await post(t, '/auth/mfa/totp', undefined, user.token)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.headers['cache-control'], 'no-store')
    const { secret, otpauth_uri, qr_svg } = response.json()
    assert.match(secret, /^[A-Z2-7]{32}$/, '160 bits in base32')
    const uri = new URL(otpauth_uri)
    assert.equal(uri.protocol, 'otpauth:')
    assert.equal(uri.host, 'totp')
    assert.equal(decodeURIComponent(uri.pathname), `/Tessera:${user.username}`)
    assert.equal(uri.searchParams.get('secret'), secret)
    assert.equal(uri.searchParams.get('issuer'), 'Tessera')
    assert.equal(uri.searchParams.get('algorithm'), 'SHA1')
    assert.equal(uri.searchParams.get('digits'), '6')
    assert.equal(uri.searchParams.get('period'), '30')
    assert.match(qr_svg, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
  })

  it('is enabled by a code of the app, which answers 10 distinct recovery codes; a wrong code is refused', async () => {
    const user = await registerUser(t.app)
    const started = await post(t, '/auth/mfa/totp', undefined, user.token)
    const secret = base32Decode(started.json().secret)
    const wrong = String((Number(totp(secret, now(clock))) + 1) % 1_000_000).padStart(6, '0')
    assertProblem(await post(t, '/auth/mfa/totp/confirm', { code: wrong }, user.token), 400, 'invalid_code')
    let status = await t.app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(user.token) })
    assert.equal(status.json().totp_enabled, false)

    const confirmed = await post(t, '/auth/mfa/totp/confirm', { code: totp(secret, now(clock)) }, user.token)
    assert.equal(confirmed.statusCode, 200, confirmed.body)
    const codes: string[] = confirmed.json().recovery_codes
    assert.equal(codes.length, 10)
    assert.equal(new Set(codes).size, 10)
    for (const code of codes)
      assert.match(code, /^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/)
    status = await t.app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(user.token) })
    assert.equal(status.json().totp_enabled, true)
    assert.equal(status.json().recovery_codes_remaining, 10)
    // Enrolling again needs the factor removed first (and, now, a sign-in with it).
    assertProblem(await post(t, '/auth/mfa/totp', undefined, user.token), 401, 'mfa_required')
    clock.advance(30_000)
    const proof = { password: user.password, code: totp(secret, now(clock)) }
    const stepped = (await post(t, '/auth/reauthenticate', proof, user.token)).json().access_token
    assertProblem(await post(t, '/auth/mfa/totp', undefined, stepped), 409, 'mfa_already_enabled')
    assert.deepEqual((await activity(t, user.token)).slice(0, 3), [
      'session.reauthenticated',
      'mfa.enabled',
      'mfa.enrollment_started',
    ])
  })

  it('keeps the secret sealed under KEY_ENCRYPTION_SECRET and the recovery codes only as HMACs', async () => {
    const user = await enrol(t, clock, await registerUser(t.app))
    const factor = await t.deps.db
      .selectFrom('totp_factors')
      .selectAll()
      .where('user_id', '=', user.id)
      .executeTakeFirstOrThrow()
    assert.match(factor.secret, /^[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+$/, 'a compact JWE')
    for (const form of ['hex', 'base64url', 'base64'] as const) {
      assert.ok(!factor.secret.includes(user.secret.toString(form)), `no secret in ${form}`)
    }
    assert.ok(!factor.secret.includes(base32Of(user.secret)), 'no secret in base32')
    const stored = await t.deps.db
      .selectFrom('recovery_codes')
      .selectAll()
      .where('user_id', '=', user.id)
      .execute()
    assert.equal(stored.length, 10)
    const text = JSON.stringify(stored)
    for (const code of user.recoveryCodes) {
      const bare = code.replaceAll('-', '')
      assert.ok(!text.includes(code) && !text.includes(bare), 'no recovery code in clear')
      // Keyed: not a plain hash of the code either, which a copy of the table could be searched with.
      for (const plain of [code, bare]) {
        assert.ok(!text.includes(createHash('sha256').update(plain).digest('hex')), 'no unkeyed hash')
      }
    }
  })

  it('forgets an enrolment that no code confirmed within 10 minutes', async () => {
    const user = await registerUser(t.app)
    const started = await post(t, '/auth/mfa/totp', undefined, user.token)
    const secret = base32Decode(started.json().secret)
    clock.advance(601_000)
    assertProblem(
      await post(t, '/auth/mfa/totp/confirm', { code: totp(secret, now(clock)) }, user.token),
      409,
      'no_mfa_enrollment',
    )
  })

  it('needs a recent authentication to start: an older token gets the RFC 9470 challenge', async () => {
    const user = await registerUser(t.app)
    clock.advance(301_000)
    const response = await post(t, '/auth/mfa/totp', undefined, user.token)
    assertProblem(response, 401, 'reauthentication_required')
    assert.equal(
      response.headers['www-authenticate'],
      'Bearer error="insufficient_user_authentication", error_description="A more recent authentication is required", max_age=300',
    )
  })
})

describe('login with a second factor', () => {
  let t: TestApp
  let clock: Clock
  let user: Enrolled
  before(async () => {
    clock = createFixedClock()
    t = await buildTestApp({ overrides: { clock } })
    user = await enrol(t, clock, await registerUser(t.app))
  })
  after(() => t.close())

  it('answers the right password with a single-use MFA token, not a session', async () => {
    const response = await post(t, '/auth/login', { username: user.username, password: user.password })
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.headers['cache-control'], 'no-store')
    const body = response.json()
    assert.deepEqual(Object.keys(body).sort(), ['expires_in', 'mfa_required', 'mfa_token'])
    assert.equal(body.expires_in, 300)
    // The wrong password still gets the plain refusal.
    assertProblem(
      await post(t, '/auth/login', { username: user.username, password: 'not it at all' }),
      401,
      'invalid_credentials',
    )
  })

  it('completes with a code: the grant of a password login, and tokens saying amr pwd+otp', async () => {
    const token = await mfaToken(t, user)
    const response = await secondStep(t, token, { code: totp(user.secret, now(clock)) })
    assert.equal(response.statusCode, 200, response.body)
    const grant = response.json()
    assert.ok(grant.refresh_token && grant.device_token && grant.access_token)
    const claims = claimsOf(grant.access_token)
    assert.deepEqual(claims.amr, ['pwd', 'otp'])
    assert.equal(claims.acr, 'mfa')
    assert.equal(claims.auth_time, now(clock))
    // A refresh keeps how and when the user authenticated.
    clock.advance(60_000)
    const refreshed = await post(t, '/auth/refresh', { refresh_token: grant.refresh_token })
    assert.equal(refreshed.statusCode, 200, refreshed.body)
    assert.deepEqual(claimsOf(refreshed.json().access_token).amr, ['pwd', 'otp'])
    assert.equal(claimsOf(refreshed.json().access_token).auth_time, claims.auth_time)
  })

  it('completes in cookie mode as a login does: the refresh token and the device token as cookies', async () => {
    clock.advance(30_000)
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/login/mfa',
      payload: {
        mfa_token: await mfaToken(t, user),
        code: totp(user.secret, now(clock)),
        refresh_token_delivery: 'cookie',
      },
    })
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.json().refresh_token, undefined)
    const cookies = [response.headers['set-cookie']].flat().join('\n')
    assert.match(cookies, /tessera_refresh_token=/)
    assert.match(cookies, /tessera_device=/)
  })

  it('accepts a code once: its replay in the same time step is refused, on a new login too', async () => {
    clock.advance(30_000)
    const code = totp(user.secret, now(clock))
    assert.equal((await secondStep(t, await mfaToken(t, user), { code })).statusCode, 200)
    assertProblem(await secondStep(t, await mfaToken(t, user), { code }), 401, 'invalid_mfa_code')
  })

  it('allows one step of clock drift either way, not two', async () => {
    const fresh = async () => {
      const enrolled = await enrol(t, clock, await registerUser(t.app))
      // Past the step the enrolment's code spent, which a code one step behind would otherwise be.
      clock.advance(30_000)
      return enrolled
    }
    const at = (enrolled: Enrolled, steps: number) => totp(enrolled.secret, now(clock) + steps * 30)
    const behind = await fresh()
    assert.equal((await secondStep(t, await mfaToken(t, behind), { code: at(behind, -1) })).statusCode, 200)
    const ahead = await fresh()
    assert.equal((await secondStep(t, await mfaToken(t, ahead), { code: at(ahead, 1) })).statusCode, 200)
    const farBehind = await fresh()
    assertProblem(
      await secondStep(t, await mfaToken(t, farBehind), { code: at(farBehind, -2) }),
      401,
      'invalid_mfa_code',
    )
    const farAhead = await fresh()
    assertProblem(
      await secondStep(t, await mfaToken(t, farAhead), { code: at(farAhead, 2) }),
      401,
      'invalid_mfa_code',
    )
  })

  it('completes with a recovery code, once; it is recorded, and one fewer is left', async () => {
    const [code] = user.recoveryCodes as [string]
    const response = await secondStep(t, await mfaToken(t, user), { recovery_code: code.toUpperCase() })
    assert.equal(response.statusCode, 200, response.body)
    assert.deepEqual(claimsOf(response.json().access_token).amr, ['pwd', 'otp'])
    assertProblem(
      await secondStep(t, await mfaToken(t, user), { recovery_code: code }),
      401,
      'invalid_mfa_code',
    )
    const token = response.json().access_token
    const status = await t.app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(token) })
    assert.equal(status.json().recovery_codes_remaining, 9)
    assert.ok((await activity(t, token)).includes('mfa.recovery_code_used'))
  })

  it('refuses the MFA token everywhere else, and after it was used', async () => {
    const token = await mfaToken(t, user)
    assertProblem(
      await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) }),
      401,
      'invalid_token',
    )
    assertProblem(await post(t, '/auth/refresh', { refresh_token: token }), 401, 'invalid_refresh_token')
    assertProblem(
      await post(t, '/auth/reauthenticate', { password: user.password }, token),
      401,
      'invalid_token',
    )
    clock.advance(30_000)
    assert.equal((await secondStep(t, token, { code: totp(user.secret, now(clock)) })).statusCode, 200)
    clock.advance(30_000)
    assertProblem(
      await secondStep(t, token, { code: totp(user.secret, now(clock)) }),
      401,
      'invalid_mfa_code',
    )
  })

  it('answers a wrong code, and a wrong, expired or worn-out MFA token, alike', async () => {
    const strip = (response: { body: string }) => {
      const { instance: _instance, ...body } = JSON.parse(response.body)
      return body
    }
    // A user of its own: the wrong codes here slow its logins down.
    const target = await enrol(t, clock, await registerUser(t.app))
    const code = totp(target.secret, now(clock))
    const wrongCode = await secondStep(t, await mfaToken(t, target), {
      code: code === '000000' ? '000001' : '000000',
    })
    const unknown = await secondStep(t, 'x'.repeat(59), { code })
    const expiring = await mfaToken(t, target)
    clock.advance(301_000)
    const expired = await secondStep(t, expiring, { code: totp(target.secret, now(clock)) })
    // Another user, whose five failures are all free (LOCKOUT_FREE_FAILURES): only the token is worn out.
    const patient = await enrol(t, clock, await registerUser(t.app))
    const wornOut = await mfaToken(t, patient)
    for (let i = 0; i < 5; i++) await secondStep(t, wornOut, { code: '000000' })
    const afterFiveTries = await secondStep(t, wornOut, { code: totp(patient.secret, now(clock)) })
    // While a new login of that user still works.
    assert.equal(
      (await secondStep(t, await mfaToken(t, patient), { code: totp(patient.secret, now(clock)) }))
        .statusCode,
      200,
    )
    for (const response of [wrongCode, unknown, expired, afterFiveTries]) {
      assertProblem(response, 401, 'invalid_mfa_code')
      assert.deepEqual(strip(response), strip(wrongCode))
    }
  })

  it('needs exactly one of code and recovery_code', async () => {
    const token = await mfaToken(t, user)
    const neither = assertProblem(await secondStep(t, token, {}), 400, 'validation_failed')
    assert.equal(neither.errors[0].field, '/body/code')
    const both = assertProblem(
      await secondStep(t, token, { code: '123456', recovery_code: 'abcd' }),
      400,
      'validation_failed',
    )
    assert.equal(both.errors[0].field, '/body/recovery_code')
  })

  it('a password changed since the first step ends its MFA token', async () => {
    const other = await enrol(t, clock, await registerUser(t.app))
    const token = await mfaToken(t, other)
    clock.advance(30_000)
    const session = await secondStep(t, await mfaToken(t, other), { code: totp(other.secret, now(clock)) })
    const access = session.json().access_token
    const changed = await post(
      t,
      '/users/me/password',
      { currentPassword: other.password, newPassword: 'a brand new secret phrase' },
      access,
    )
    assert.equal(changed.statusCode, 204, changed.body)
    clock.advance(30_000)
    assertProblem(
      await secondStep(t, token, { code: totp(other.secret, now(clock)) }),
      401,
      'invalid_mfa_code',
    )
  })
})

describe('wrong codes', () => {
  it('are limited per account and device apart from passwords (RATE_LIMIT_MFA_PER_ACCOUNT), from any address', () =>
    withApp({ RATE_LIMIT_MFA_PER_ACCOUNT: '3', LOCKOUT_FREE_FAILURES: '100' }, async (t, clock) => {
      const user = await enrol(t, clock, await registerUser(t.app))
      // The owner's device token, from a login of theirs.
      const owner = await secondStep(t, await mfaToken(t, user), { code: totp(user.secret, now(clock)) })
      const deviceToken = owner.json().device_token
      const mfaTokens = await Promise.all(Array.from({ length: 4 }, () => mfaToken(t, user)))
      const guess = (code: string, address: string) =>
        secondStep(t, mfaTokens.shift() as string, { code }, address)
      clock.advance(30_000)
      assertProblem(await guess('000000', '10.0.0.1'), 401, 'invalid_mfa_code')
      assertProblem(await guess('000000', '10.0.0.2'), 401, 'invalid_mfa_code')
      // A right code is given back: it does not use up the allowance.
      const right = await secondStep(
        t,
        await mfaToken(t, user),
        { code: totp(user.secret, now(clock)) },
        '10.0.0.3',
      )
      assert.equal(right.statusCode, 200, right.body)
      assertProblem(await guess('000000', '10.0.0.4'), 401, 'invalid_mfa_code')
      // Past the limit, clients without the device token are refused unchecked, as a wrong code is: a 429
      // would tell that their MFA token is a live one. Even the right code.
      clock.advance(30_000)
      const limited = await guess(totp(user.secret, now(clock)), '10.0.0.5')
      assertProblem(limited, 401, 'invalid_mfa_code')
      assert.equal(limited.headers['retry-after'], undefined)
      // The owner's device has a count of its own: the others' wrong codes never refuse it.
      const own = await post(t, '/auth/login', {
        username: user.username,
        password: user.password,
        device_token: deviceToken,
      })
      const completed = await secondStep(
        t,
        own.json().mfa_token,
        { code: totp(user.secret, now(clock)) },
        '10.0.0.6',
      )
      assert.equal(completed.statusCode, 200, completed.body)
      // The password step is not limited by them: the per-username count of failed logins is another one.
      assert.equal(
        (await post(t, '/auth/login', { username: user.username, password: user.password })).statusCode,
        200,
      )
      const events = (await t.deps.services.events.list({ userId: user.id }, { limit: 50 })).events
      assert.ok(
        events.some((event) => event.type === 'login.failed' && event.detail.reason === 'rate_limited'),
      )
    }))

  it('have a count of their own only on a device that completed a login with a code: tokens from before enrolling bring none', () =>
    withApp({ RATE_LIMIT_MFA_PER_ACCOUNT: '2', LOCKOUT_FREE_FAILURES: '100' }, async (t, clock) => {
      const registered = await registerUser(t.app)
      // A device token of a password login, before the factor (an attacker could gather many).
      const early = (
        await post(t, '/auth/login', { username: registered.username, password: registered.password })
      ).json()
      const user = await enrol(t, clock, registered)
      const login = (deviceToken?: string) =>
        post(t, '/auth/login', {
          username: user.username,
          password: user.password,
          device_token: deviceToken,
        })
      // The owner's device completes a login with a code: its renewed token now counts apart.
      const proven = await secondStep(t, (await login(early.device_token)).json().mfa_token, {
        code: totp(user.secret, now(clock)),
      })
      assert.equal(proven.statusCode, 200, proven.body)
      clock.advance(30_000)
      for (let i = 0; i < 2; i++) {
        assertProblem(
          await secondStep(t, (await login()).json().mfa_token, { code: '000000' }),
          401,
          'invalid_mfa_code',
        )
      }
      // The early token counts with everyone without one: past the limit, refused unchecked.
      const early2 = await secondStep(t, (await login(early.device_token)).json().mfa_token, {
        code: totp(user.secret, now(clock)),
      })
      assertProblem(early2, 401, 'invalid_mfa_code')
      const own = await secondStep(t, (await login(proven.json().device_token)).json().mfa_token, {
        code: totp(user.secret, now(clock)),
      })
      assert.equal(own.statusCode, 200, own.body)
    }))

  it('at the login form never refuse the owner in a session: its password checks count per session', () =>
    withApp({ RATE_LIMIT_LOGIN_PER_USERNAME: '3' }, async (t) => {
      const user = await registerUser(t.app)
      for (let i = 0; i < 3; i++) {
        const wrong = await post(t, '/auth/login', { username: user.username, password: `wrong guess ${i}` })
        assertProblem(wrong, 401, 'invalid_credentials')
      }
      assertProblem(
        await post(t, '/auth/login', { username: user.username, password: 'wrong again' }),
        429,
        'rate_limited',
      )
      const again = await post(t, '/auth/reauthenticate', { password: user.password }, user.token)
      assert.equal(again.statusCode, 200, again.body)
      const change = { currentPassword: user.password, newPassword: 'a new and better passphrase' }
      assert.equal((await post(t, '/users/me/password', change, again.json().access_token)).statusCode, 204)
    }))

  it('in a session (reauthentication, removing the factor) slow down that session only', () =>
    // A first wait that outlasts the clock's steps below.
    withApp({ LOCKOUT_FREE_FAILURES: '2', LOCKOUT_BASE_SECONDS: '600' }, async (t, clock) => {
      const user = await enrol(t, clock, await registerUser(t.app))
      const other = await secondStep(t, await mfaToken(t, user), { code: totp(user.secret, now(clock)) })
      const reauthenticate = (token: string, code: string) =>
        post(t, '/auth/reauthenticate', { password: user.password, code }, token)
      for (let i = 0; i < 3; i++) {
        assertProblem(await reauthenticate(user.token, '000000'), 400, 'reauthentication_failed')
      }
      clock.advance(30_000)
      // The session that guessed waits, even with the right code, and is told for how long (it is signed in).
      const slowed = await reauthenticate(user.token, totp(user.secret, now(clock)))
      assertProblem(slowed, 429, 'login_slowed_down')
      assert.ok(Number(slowed.headers['retry-after']) >= 1)
      // Its password is not checked meanwhile: a wrong one gets the same answer, which tells nothing.
      const wrongPassword = await post(
        t,
        '/auth/reauthenticate',
        { password: 'not the password', code: totp(user.secret, now(clock)) },
        user.token,
      )
      assertProblem(wrongPassword, 429, 'login_slowed_down')
      // Another session of the owner is not slowed down, nor are its logins.
      const fine = await reauthenticate(other.json().access_token, totp(user.secret, now(clock)))
      assert.equal(fine.statusCode, 200, fine.body)
      clock.advance(30_000)
      assert.equal(
        (await secondStep(t, await mfaToken(t, user), { code: totp(user.secret, now(clock)) })).statusCode,
        200,
      )
    }))

  it("count in the account's slowdown, for clients without its device token only", () =>
    withApp({ LOCKOUT_FREE_FAILURES: '2' }, async (t, clock) => {
      const user = await enrol(t, clock, await registerUser(t.app))
      // The owner's device token, from a login of theirs.
      const first = await secondStep(t, await mfaToken(t, user), { code: totp(user.secret, now(clock)) })
      const deviceToken = first.json().device_token
      for (let i = 0; i < 3; i++) await secondStep(t, await mfaToken(t, user), { code: '000000' })
      // Slowed down: clients without the device token get a wrong password's answer, even with the right one.
      assertProblem(
        await post(t, '/auth/login', { username: user.username, password: user.password }),
        401,
        'invalid_credentials',
      )
      // The owner's device goes through.
      const own = await post(t, '/auth/login', {
        username: user.username,
        password: user.password,
        device_token: deviceToken,
      })
      assert.equal(own.statusCode, 200, own.body)
      clock.advance(30_000)
      assert.equal(
        (await secondStep(t, own.json().mfa_token, { code: totp(user.secret, now(clock)) })).statusCode,
        200,
      )
      const events = await activity(t, first.json().access_token)
      assert.ok(events.includes('login.locked'))
    }))
})

describe('step-up (RFC 9470) and reauthentication', () => {
  let t: TestApp
  let clock: Clock
  before(async () => {
    clock = createFixedClock()
    t = await buildTestApp({ overrides: { clock } })
  })
  after(() => t.close())

  it('a password change needs an authentication within 5 minutes; POST /auth/reauthenticate gives one', async () => {
    const user = await registerUser(t.app)
    clock.advance(301_000)
    const change = { currentPassword: user.password, newPassword: 'another good passphrase' }
    const refused = await post(t, '/users/me/password', change, user.token)
    assertProblem(refused, 401, 'reauthentication_required')
    assert.match(
      String(refused.headers['www-authenticate']),
      /error="insufficient_user_authentication".*max_age=300/,
    )

    assertProblem(
      await post(t, '/auth/reauthenticate', { password: 'not my password' }, user.token),
      400,
      'reauthentication_failed',
    )
    const again = await post(t, '/auth/reauthenticate', { password: user.password }, user.token)
    assert.equal(again.statusCode, 200, again.body)
    const fresh = again.json().access_token
    assert.equal(claimsOf(fresh).sid, claimsOf(user.token).sid, 'the same session')
    assert.equal(claimsOf(fresh).auth_time, now(clock))
    assert.equal((await post(t, '/users/me/password', change, fresh)).statusCode, 204)
  })

  it('asks a user with a factor for a sign-in with it, and tells one without to enrol', async () => {
    const plain = await registerUser(t.app)
    assertProblem(
      await post(t, '/auth/mfa/recovery-codes', undefined, plain.token),
      403,
      'mfa_enrollment_required',
    )

    const user = await enrol(t, clock, await registerUser(t.app))
    // Its token is from before the factor: a password sign-in.
    const refused = await post(t, '/auth/mfa/recovery-codes', undefined, user.token)
    assertProblem(refused, 401, 'mfa_required')
    assert.equal(
      refused.headers['www-authenticate'],
      'Bearer error="insufficient_user_authentication", error_description="A second factor is required", acr_values="mfa", max_age=300',
    )
    // Reauthenticating needs the code too, now.
    const withoutCode = assertProblem(
      await post(t, '/auth/reauthenticate', { password: user.password }, user.token),
      400,
      'validation_failed',
    )
    assert.equal(withoutCode.errors[0].field, '/body/code')
    assertProblem(
      await post(t, '/auth/reauthenticate', { password: user.password, code: '000000' }, user.token),
      400,
      'reauthentication_failed',
    )
    const again = await post(
      t,
      '/auth/reauthenticate',
      { password: user.password, code: totp(user.secret, now(clock)) },
      user.token,
    )
    assert.equal(again.statusCode, 200, again.body)
    assert.deepEqual(claimsOf(again.json().access_token).amr, ['pwd', 'otp'])
    const both = { password: user.password, code: '123456', recovery_code: user.recoveryCodes[0] }
    const ambiguous = assertProblem(
      await post(t, '/auth/reauthenticate', both, user.token),
      400,
      'validation_failed',
    )
    assert.equal(ambiguous.errors[0].field, '/body/recovery_code')
    // Two regenerations at once: the codes of one of them work, ten in all, never both sets.
    const stepped = again.json().access_token
    const [first, second] = await Promise.all([
      post(t, '/auth/mfa/recovery-codes', undefined, stepped),
      post(t, '/auth/mfa/recovery-codes', undefined, stepped),
    ])
    assert.equal(first?.statusCode, 200)
    assert.equal(second?.statusCode, 200)
    const status = await t.app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(stepped) })
    assert.equal(status.json().recovery_codes_remaining, 10)
    const regenerated = await post(t, '/auth/mfa/recovery-codes', undefined, again.json().access_token)
    assert.equal(regenerated.statusCode, 200, regenerated.body)
    // The old codes died with the new ones.
    clock.advance(30_000)
    assertProblem(
      await secondStep(t, await mfaToken(t, user), { recovery_code: user.recoveryCodes[0] as string }),
      401,
      'invalid_mfa_code',
    )
    const fresh = await secondStep(t, await mfaToken(t, user), {
      recovery_code: regenerated.json().recovery_codes[0],
    })
    assert.equal(fresh.statusCode, 200, fresh.body)
    const events = await activity(t, fresh.json().access_token)
    for (const type of ['session.reauthenticated', 'mfa.recovery_codes_regenerated', 'login.mfa_required']) {
      assert.ok(events.includes(type), type)
    }
  })

  it('the OpenAPI document says which routes need a step-up, and answers 401 and 403 for it', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const route = doc.paths['/auth/mfa/recovery-codes'].post
    assert.deepEqual(route['x-step-up'], { mfa: true, maxAge: 300 })
    assert.ok(route.responses['401'] && route.responses['403'])
    assert.deepEqual(doc.paths['/users/me/password'].post['x-step-up'], { mfa: false, maxAge: 300 })
  })
})

describe('removing a factor', () => {
  let t: TestApp
  let clock: Clock
  before(async () => {
    clock = createFixedClock()
    t = await buildTestApp({ overrides: { clock } })
  })
  after(() => t.close())

  const remove = (token: string, payload: object) =>
    t.app.inject({ method: 'DELETE', url: '/auth/mfa/totp', headers: bearer(token), payload })

  it('by the user needs their password and a code or recovery code; logins then ask for the password only', async () => {
    const user = await enrol(t, clock, await registerUser(t.app))
    assertProblem(await remove(user.token, { password: user.password }), 400, 'validation_failed')
    assertProblem(
      await remove(user.token, { password: 'wrong password', code: totp(user.secret, now(clock)) }),
      400,
      'reauthentication_failed',
    )
    assertProblem(
      await remove(user.token, { password: user.password, code: '000000' }),
      400,
      'reauthentication_failed',
    )
    const removed = await remove(user.token, {
      password: user.password,
      recovery_code: user.recoveryCodes[1] as string,
    })
    assert.equal(removed.statusCode, 204, removed.body)
    const login = await post(t, '/auth/login', { username: user.username, password: user.password })
    assert.ok(login.json().access_token)
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/auth/mfa', headers: bearer(user.token) })).json()
        .totp_enabled,
      false,
    )
    assertProblem(
      await remove(user.token, { password: user.password, code: '123456' }),
      409,
      'mfa_not_enabled',
    )
    assert.ok((await activity(t, user.token)).includes('mfa.disabled'))
  })

  it('answers nothing to remove before any limit counts it as a failed login', () =>
    withApp({ RATE_LIMIT_LOGIN_PER_USERNAME: '2' }, async (limited) => {
      const user = await registerUser(limited.app)
      for (let i = 0; i < 3; i++) {
        const response = await limited.app.inject({
          method: 'DELETE',
          url: '/auth/mfa/totp',
          headers: bearer(user.token),
          payload: { password: user.password, code: '123456' },
        })
        assertProblem(response, 409, 'mfa_not_enabled')
      }
      const login = await limited.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: user.username, password: user.password },
      })
      assert.equal(login.statusCode, 200, login.body)
    }))

  it('ends what sign-ins with it could do, in the tokens already issued and in the sessions', async () => {
    const admin = await createAdmin(t.app, t.deps)
    const user = await enrol(t, clock, await registerUser(t.app))
    const grant = (
      await secondStep(t, await mfaToken(t, user), { code: totp(user.secret, now(clock)) })
    ).json()
    const strong = grant.access_token
    assert.equal((await post(t, '/auth/mfa/recovery-codes', undefined, strong)).statusCode, 200)
    assert.equal(
      (await t.app.inject({ method: 'DELETE', url: `/users/${user.id}/mfa`, headers: bearer(admin.token) }))
        .statusCode,
      204,
    )
    // Its token still says acr "mfa", but the factor is gone: it counts as a password sign-in.
    assertProblem(
      await post(t, '/auth/mfa/recovery-codes', undefined, strong),
      403,
      'mfa_enrollment_required',
    )
    const refreshed = await post(t, '/auth/refresh', { refresh_token: grant.refresh_token })
    assert.deepEqual(claimsOf(refreshed.json().access_token).amr, ['pwd'])
    assert.equal(claimsOf(refreshed.json().access_token).acr, 'pwd')
    // Nor does it count again once the user enrols a new factor: it was not made with that one.
    const relogin = await post(t, '/auth/login', { username: user.username, password: user.password })
    await enrol(t, clock, { ...user, token: relogin.json().access_token })
    assertProblem(await post(t, '/auth/mfa/recovery-codes', undefined, strong), 401, 'mfa_required')
  })

  it('by an admin (DELETE /users/{id}/mfa), for a user who lost their device; not by anyone else', async () => {
    const admin = await createAdmin(t.app, t.deps)
    const user = await enrol(t, clock, await registerUser(t.app))
    const other = await registerUser(t.app)
    const url = `/users/${user.id}/mfa`
    assertProblem(
      await t.app.inject({ method: 'DELETE', url, headers: bearer(other.token) }),
      403,
      'insufficient_role',
    )
    assert.equal(
      (await t.app.inject({ method: 'DELETE', url, headers: bearer(admin.token) })).statusCode,
      204,
    )
    assertProblem(
      await t.app.inject({ method: 'DELETE', url, headers: bearer(admin.token) }),
      409,
      'mfa_not_enabled',
    )
    assertProblem(
      await t.app.inject({
        method: 'DELETE',
        url: '/users/0190d8a0-0000-7000-8000-000000000000/mfa',
        headers: bearer(admin.token),
      }),
      404,
      'user_not_found',
    )
    assert.ok(
      (await post(t, '/auth/login', { username: user.username, password: user.password })).json()
        .access_token,
    )
  })
})

describe('MFA_REQUIRED_ROLES', () => {
  it('an admin without a factor gets tokens without admin powers, and the login says to enrol', () =>
    withApp({ MFA_REQUIRED_ROLES: 'admin' }, async (t, clock) => {
      const admin = await createAdmin(t.app, t.deps)
      const login = await post(t, '/auth/login', { username: admin.username, password: admin.password })
      assert.equal(login.json().mfa_enrollment_required, true)
      const token = login.json().access_token
      assertProblem(
        await t.app.inject({ method: 'GET', url: '/users', headers: bearer(token) }),
        403,
        'mfa_enrollment_required',
      )
      // The roles it acts with leave admin out, and so does the token itself, which other services read.
      assert.deepEqual(claimsOf(token).roles, ['user'])
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })).statusCode,
        200,
      )

      const enrolled = await enrol(t, clock, { ...admin, token })
      // A session signed in with the password alone still has no admin powers: it must step up.
      const stepUp = await t.app.inject({ method: 'GET', url: '/users', headers: bearer(token) })
      assertProblem(stepUp, 401, 'mfa_required')
      assert.match(String(stepUp.headers['www-authenticate']), /acr_values="mfa"/)
      const full = await secondStep(t, await mfaToken(t, enrolled), {
        code: totp(enrolled.secret, now(clock)),
      })
      assert.equal(full.json().mfa_enrollment_required, undefined)
      assert.deepEqual(claimsOf(full.json().access_token).roles, ['admin', 'user'])
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/users', headers: bearer(full.json().access_token) }))
          .statusCode,
        200,
      )
    }))
})

describe('password checks in a session', () => {
  it('slow down that session as failed logins slow down a device: a stolen access token guesses no faster than the form', () =>
    withApp({ LOCKOUT_FREE_FAILURES: '2', LOCKOUT_BASE_SECONDS: '600' }, async (t) => {
      const user = await registerUser(t.app)
      const other = await login(t.app, user.username, user.password)
      assertProblem(
        await post(t, '/auth/reauthenticate', { password: 'guess 1' }, user.token),
        400,
        'reauthentication_failed',
      )
      const change = (currentPassword: string, token = user.token) =>
        post(t, '/users/me/password', { currentPassword, newPassword: 'a fresh passphrase, long' }, token)
      assertProblem(await change('guess 2'), 400, 'invalid_current_password')
      assertProblem(await change('guess 3'), 400, 'invalid_current_password')
      // Past the free failures the session waits, even with the right password, which is not checked.
      const slowed = await post(t, '/auth/reauthenticate', { password: user.password }, user.token)
      assertProblem(slowed, 429, 'login_slowed_down')
      assertProblem(await change(user.password), 429, 'login_slowed_down')
      // The owner's other session, and their logins, are not slowed down.
      assert.equal(
        (await post(t, '/auth/login', { username: user.username, password: user.password })).statusCode,
        200,
      )
      assert.equal((await change(user.password, other)).statusCode, 204)
    }))
})
