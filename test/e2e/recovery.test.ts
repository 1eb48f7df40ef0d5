// Issue 14, points 1 and 2: account recovery without email. An admin issues a single-use reset token and its
// link (POST /users/{id}/password-reset); the token sets a new password once (POST /auth/password-reset), under
// the rules of any new password, ending every session. Every token that may not be used is refused alike.
// With PASSWORD_RESET_WEBHOOK_URL, a user asks for a link (POST /auth/password-reset/request), answered alike
// whether or not the account exists, and the link goes to the app as a signed webhook. All through HTTP.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, afterEach, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { RESEND_AFTER_SECONDS } from '../../src/auth/password-reset.service.ts'
import { createFixedClock } from '../../src/lib/clock.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import {
  assertProblem,
  bearer,
  createAdmin,
  registerUser,
  type TestUser,
  uniqueUsername,
} from '../helpers/fixtures.ts'
import {
  assertSigned,
  type Received,
  type Receiver,
  startReceiver,
  TEST_WEBHOOK_SECRET,
} from '../helpers/webhook-receiver.ts'

// biome-ignore lint/suspicious/noExplicitAny: the tests read the fields they expect and assert on them.
type Json = any
type Response = Awaited<ReturnType<TestApp['app']['inject']>>

const TOKEN = /^[A-Za-z0-9_-]{59}$/
const GOOD_PASSWORD = 'a fresh start, at last'
const sha256Hex = (text: string) => createHash('sha256').update(text).digest('hex')
/** The secret half of a token (after its 16-character selector). */
const verifierOf = (token: string) => token.slice(16)

function issueLink(t: TestApp, userId: string, token: string) {
  return t.app.inject({ method: 'POST', url: `/users/${userId}/password-reset`, headers: bearer(token) })
}

/** An admin's reset link for `user`, asserted issued. */
async function linkFor(t: TestApp, admin: TestUser, user: { id: string }) {
  const response = await issueLink(t, user.id, admin.token)
  assert.equal(response.statusCode, 200, response.body)
  return response.json() as { token: string; url: string; expires_in: number }
}

function reset(t: TestApp, token: string, newPassword = GOOD_PASSWORD, remoteAddress?: string) {
  return t.app.inject({
    method: 'POST',
    url: '/auth/password-reset',
    payload: { token, newPassword },
    ...(remoteAddress ? { remoteAddress } : {}),
  })
}

function signIn(t: TestApp, username: string, password: string) {
  return t.app.inject({ method: 'POST', url: '/auth/login', payload: { username, password } })
}

function requestLink(t: TestApp, username: string, remoteAddress?: string) {
  return t.app.inject({
    method: 'POST',
    url: '/auth/password-reset/request',
    payload: { username },
    ...(remoteAddress ? { remoteAddress } : {}),
  })
}

/** The refusal of a token: 400 invalid_reset_token; its body without what may differ per request. */
function refused(response: Response): Json {
  const { instance: _perRequest, ...body } = assertProblem(response, 400, 'invalid_reset_token')
  return body
}

/** Events as GET /admin/events shows them, oldest first. */
async function events(t: TestApp, admin: TestUser, query: Record<string, string>): Promise<Json[]> {
  const response = await t.app.inject({
    method: 'GET',
    url: '/admin/events',
    query: { limit: '100', ...query },
    headers: bearer(admin.token),
  })
  assert.equal(response.statusCode, 200, response.body)
  return response.json().events.reverse()
}

async function resetRow(t: TestApp, userId: string) {
  return t.deps.db.selectFrom('password_resets').selectAll().where('user_id', '=', userId).executeTakeFirst()
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

describe('issue 14, point 1: an admin issues a reset link, and its token sets a new password once', () => {
  let t: TestApp
  let admin: TestUser
  before(async () => {
    t = await buildTestApp()
    admin = await createAdmin(t.app, t.deps)
  })
  after(() => t.close())

  it('answers 200 {token, url, expires_in}, not to be cached: the link is PUBLIC_URL + /reset-password + #token=, valid 1800 s', async () => {
    const user = await registerUser(t.app)
    const response = await issueLink(t, user.id, admin.token)
    assert.equal(response.statusCode, 200, response.body)
    assert.equal(response.headers['cache-control'], 'no-store')
    const link = response.json()
    assert.deepEqual(Object.keys(link).sort(), ['expires_in', 'token', 'url'])
    assert.match(link.token, TOKEN)
    assert.equal(link.url, `http://tessera.test/reset-password#token=${link.token}`)
    assert.equal(link.expires_in, 1800)
    const again = await linkFor(t, admin, user)
    assert.notEqual(again.token, link.token, 'each link has a token of its own')
  })

  it('sets the password: the new one signs in, the old one no longer does, every session ends, password.reset is recorded', async () => {
    const user = await registerUser(t.app)
    const grant = (await signIn(t, user.username, user.password)).json()
    const link = await linkFor(t, admin, user)

    const response = await reset(t, link.token)
    assert.equal(response.statusCode, 204, response.body)
    assert.equal(response.body, '')

    assert.equal((await signIn(t, user.username, GOOD_PASSWORD)).statusCode, 200, 'the new password works')
    assertProblem(await signIn(t, user.username, user.password), 401, 'invalid_credentials')
    for (const token of [user.token, grant.access_token]) {
      const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(token) })
      assert.equal(me.statusCode, 401, `an access token of before the reset: ${me.body}`)
    }
    const refresh = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refresh_token: grant.refresh_token },
    })
    assert.equal(refresh.statusCode, 401, `a refresh token of before the reset: ${refresh.body}`)

    const [issued, ...moreIssued] = await events(t, admin, {
      type: 'password.reset_link_issued',
      user: user.id,
    })
    assert.deepEqual(moreIssued, [])
    assert.deepEqual(issued.detail, { via: 'admin', expiresIn: 1800 })
    assert.deepEqual(issued.actor, { kind: 'admin', id: admin.id })
    const [done, ...moreDone] = await events(t, admin, { type: 'password.reset', user: user.id })
    assert.deepEqual(moreDone, [])
    assert.deepEqual(done.actor, { kind: 'anonymous' })
    assert.deepEqual(done.detail, { sessionsRevoked: 2 }, 'the sign-up session and the second sign-in')
    assert.equal(done.ip, '127.0.0.1')
  })

  it("forgets the account's failed logins: the new password works at once on a device without a device token (found by an outside attack)", async () => {
    const user = await registerUser(t.app)
    for (let i = 0; i < 6; i++)
      assert.equal((await signIn(t, user.username, `wrong guess ${i}`)).statusCode, 401)
    // Slowed down: the right password is refused too.
    assert.equal((await signIn(t, user.username, user.password)).statusCode, 401)
    const { token } = await linkFor(t, admin, user)
    assert.equal((await reset(t, token)).statusCode, 204)
    assert.equal((await signIn(t, user.username, GOOD_PASSWORD)).statusCode, 200)
    const [unlocked, ...more] = await events(t, admin, { type: 'login.unlocked', user: user.id })
    assert.deepEqual(
      [unlocked?.actor, unlocked?.detail, more.length],
      [{ kind: 'anonymous' }, { throttles: 1 }, 0],
    )
  })

  it('forgets the failed logins of this minute too: the per-username limit does not refuse the new password (found by an outside attack)', async () => {
    const limited = await buildTestApp({ env: { RATE_LIMIT_LOGIN_PER_USERNAME: '10' } })
    try {
      const chief = await createAdmin(limited.app, limited.deps)
      const user = await registerUser(limited.app)
      const statuses: number[] = []
      for (let i = 0; i < 12; i++)
        statuses.push((await signIn(limited, user.username, `wrong guess ${i}`)).statusCode)
      assert.equal(statuses.at(-1), 429)
      const { token } = await linkFor(limited, chief, user)
      assert.equal((await reset(limited, token)).statusCode, 204)
      const after = await signIn(limited, user.username, GOOD_PASSWORD)
      assert.equal(after.statusCode, 200, after.body)
    } finally {
      await limited.close()
    }
  })

  it('is for admins only: 403 for a user (even about themselves), 401 without a token, 404 for an unknown id', async () => {
    const user = await registerUser(t.app)
    const other = await registerUser(t.app)
    assertProblem(await issueLink(t, other.id, user.token), 403, 'insufficient_role')
    assertProblem(await issueLink(t, user.id, user.token), 403, 'insufficient_role')
    const anonymous = await t.app.inject({ method: 'POST', url: `/users/${user.id}/password-reset` })
    assert.equal(anonymous.statusCode, 401, anonymous.body)
    assertProblem(await issueLink(t, crypto.randomUUID(), admin.token), 404, 'user_not_found')
    assert.equal(await resetRow(t, user.id), undefined, 'nothing was issued')
    assert.deepEqual(await events(t, admin, { type: 'password.reset_link_issued', user: user.id }), [])
  })

  it('refuses a used, superseded, password-changed-since, malformed, unknown or forged token alike: 400 invalid_reset_token, one body', async () => {
    const bodies: [string, Json][] = []
    const refuse = async (what: string, token: string) => {
      bodies.push([what, refused(await reset(t, token))])
    }

    const used = await registerUser(t.app)
    const usedLink = await linkFor(t, admin, used)
    assert.equal((await reset(t, usedLink.token)).statusCode, 204)
    await refuse('used', usedLink.token)
    await refuse('used, with another new password', usedLink.token)

    const superseded = await registerUser(t.app)
    const older = await linkFor(t, admin, superseded)
    const newer = await linkFor(t, admin, superseded)
    await refuse('superseded by a newer link', older.token)

    const changed = await registerUser(t.app)
    const beforeChange = await linkFor(t, admin, changed)
    const change = await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      payload: { currentPassword: changed.password, newPassword: 'changed it myself' },
      headers: bearer(changed.token),
    })
    assert.equal(change.statusCode, 204, change.body)
    await refuse('the password changed since', beforeChange.token)

    await refuse('malformed: not a token', 'not-a-reset-token')
    await refuse('malformed: a character outside base64url', `${newer.token.slice(0, 58)}.`)
    await refuse('malformed: one character too many', `${newer.token}A`)
    await refuse('malformed: one character too few', newer.token.slice(0, 58))
    await refuse('unknown, of the right shape', randomBytes(44).toString('base64url'))
    const forged = `${newer.token.slice(0, 16)}${randomBytes(32).toString('base64url').slice(0, 43)}`
    assert.match(forged, TOKEN)
    await refuse('a live selector with a wrong verifier', forged)

    const [[, first], ...rest] = bodies as [[string, Json], ...[string, Json][]]
    assert.equal(first.status, 400)
    for (const [what, body] of rest) assert.deepEqual(body, first, `the body for a token ${what}`)

    // None of the refusals spent or changed anything: the newest link still works, the changed password stands.
    assert.equal((await reset(t, newer.token)).statusCode, 204, 'the newer link works')
    assert.equal((await signIn(t, superseded.username, GOOD_PASSWORD)).statusCode, 200)
    assert.equal((await signIn(t, changed.username, 'changed it myself')).statusCode, 200)
    assert.deepEqual(await events(t, admin, { type: 'password.reset', user: changed.id }), [])
  })

  it('refuses a weak new password with 400 validation_failed naming /body/newPassword, and the token stays usable', async () => {
    const user = await registerUser(t.app, { username: uniqueUsername('marie') })
    const link = await linkFor(t, admin, user)
    for (const weak of ['password', 'iloveyou', `${user.username}!2026`, user.username.toUpperCase()]) {
      const body = assertProblem(await reset(t, link.token, weak), 400, 'validation_failed')
      assert.deepEqual(
        body.errors.map((error: { field: string }) => error.field),
        ['/body/newPassword'],
        `refused: ${weak}`,
      )
    }
    const short = assertProblem(await reset(t, link.token, 'short'), 400, 'validation_failed')
    assert.deepEqual(
      short.errors.map((error: { field: string }) => error.field),
      ['/body/newPassword'],
    )
    assert.equal((await signIn(t, user.username, user.password)).statusCode, 200, 'the password is unchanged')
    assert.deepEqual(await events(t, admin, { type: 'password.reset', user: user.id }), [])

    assert.equal((await reset(t, link.token)).statusCode, 204, 'the token was not spent')
    assert.equal((await signIn(t, user.username, GOOD_PASSWORD)).statusCode, 200)
  })

  it('lets one of two concurrent resets with the same token through', async () => {
    const user = await registerUser(t.app)
    const link = await linkFor(t, admin, user)
    const answers = await Promise.all([
      reset(t, link.token, 'first of the two racers'),
      reset(t, link.token, 'second of the two racers'),
    ])
    const statuses = answers.map((answer) => answer.statusCode).sort()
    assert.deepEqual(statuses, [204, 400], answers.map((answer) => answer.body).join(' | '))
    const loser = answers.find((answer) => answer.statusCode === 400) ?? assert.fail()
    refused(loser)
    const winner = answers[0]?.statusCode === 204 ? 'first of the two racers' : 'second of the two racers'
    assert.equal((await signIn(t, user.username, winner)).statusCode, 200)
    assert.equal((await events(t, admin, { type: 'password.reset', user: user.id })).length, 1)
  })

  it('never stores the token: its row holds the selector and a hash of the verifier; no event holds either', async () => {
    const user = await registerUser(t.app)
    const link = await linkFor(t, admin, user)
    const verifier = verifierOf(link.token)
    const row = (await resetRow(t, user.id)) ?? assert.fail('no password_resets row for the user')
    const stored = JSON.stringify(row)
    assert.ok(!stored.includes(link.token), 'the row holds the token')
    assert.ok(!stored.includes(verifier), 'the row holds the verifier')
    assert.equal(row.selector, link.token.slice(0, 16))
    assert.equal(row.verifier_hash, sha256Hex(verifier), 'the verifier is stored as its SHA-256 only')
    assert.equal(Number(row.expires_at) - Number(row.created_at), 1800)

    assert.equal((await reset(t, link.token)).statusCode, 204)
    assert.equal(await resetRow(t, user.id), undefined, 'a spent token leaves no row')
    const issued = await events(t, admin, { type: 'password.reset_link_issued', user: user.id })
    const done = await events(t, admin, { type: 'password.reset', user: user.id })
    const shown = JSON.stringify([...issued, ...done])
    assert.equal(issued.length + done.length, 2)
    const logged = JSON.stringify(await t.deps.db.selectFrom('events').selectAll().execute())
    for (const text of [shown, logged]) {
      assert.ok(!text.includes(verifier), 'an event holds the verifier')
      assert.ok(!text.includes(link.token.slice(0, 16)), 'an event holds the selector')
    }
  })
})

describe('issue 14, point 1: a token expires PASSWORD_RESET_TTL_SECONDS after it was issued', () => {
  it('is accepted until then and refused after, with the same body as any refusal; the link follows PASSWORD_RESET_PATH', async () => {
    const clock = createFixedClock(Date.UTC(2026, 4, 1, 12))
    const t = await buildTestApp({
      env: { PASSWORD_RESET_TTL_SECONDS: '600', PASSWORD_RESET_PATH: '/account/new-password' },
      overrides: { clock },
    })
    try {
      const admin = await createAdmin(t.app, t.deps)
      const user = await registerUser(t.app)
      const link = await linkFor(t, admin, user)
      assert.equal(link.expires_in, 600)
      assert.equal(link.url, `http://tessera.test/account/new-password#token=${link.token}`)
      const unknown = refused(await reset(t, randomBytes(44).toString('base64url')))

      clock.advance(599_000)
      // Still accepted (a weak password is refused for itself, which spends nothing).
      assertProblem(await reset(t, link.token, 'password'), 400, 'validation_failed')
      clock.advance(2_000)
      assert.deepEqual(refused(await reset(t, link.token)), unknown)
      assert.equal((await signIn(t, user.username, user.password)).statusCode, 200, 'the password stands')

      // A token issued now lives its 600 s from now.
      const fresh = await linkFor(t, await createAdmin(t.app, t.deps), user)
      clock.advance(599_000)
      assert.equal((await reset(t, fresh.token)).statusCode, 204)
    } finally {
      await t.close()
    }
  })
})

describe('issue 14, point 2: self-service requests, sent to the app through PASSWORD_RESET_WEBHOOK_URL', () => {
  it('is not served without PASSWORD_RESET_WEBHOOK_URL: 404', async () => {
    const t = await buildTestApp()
    try {
      const user = await registerUser(t.app)
      const response = await requestLink(t, user.username)
      assert.equal(response.statusCode, 404, response.body)
    } finally {
      await t.close()
    }
  })

  describe('with PASSWORD_RESET_WEBHOOK_URL', () => {
    let t: TestApp
    let admin: TestUser
    let hook: Receiver
    before(async () => {
      hook = await startReceiver()
      t = await buildTestApp({
        env: { PASSWORD_RESET_WEBHOOK_URL: hook.url, PASSWORD_RESET_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET },
      })
      t.deps.webhooks.dispatcher.start()
      admin = await createAdmin(t.app, t.deps)
    })
    after(async () => {
      await t.close()
      await hook.close()
    })

    const parsed = (entry: Received) => JSON.parse(entry.body) as Json
    const sentFor = (userId: string) => hook.received.filter((entry) => parsed(entry).data?.userId === userId)
    const sentNaming = (username: string) => hook.received.filter((entry) => entry.body.includes(username))
    /** Lets requests' work after their answers, and the sending of what it enqueued, finish. */
    const settle = async () => {
      await sleep(300)
      await t.deps.webhooks.dispatcher.deliverDue()
    }

    it('answers 202 with the same body for an existing and an unknown username, in about the same time', async () => {
      const user = await registerUser(t.app)
      const unknown = uniqueUsername('nobody')
      const known = await requestLink(t, user.username)
      const none = await requestLink(t, unknown)
      assert.equal(known.statusCode, 202, known.body)
      assert.equal(none.statusCode, 202, none.body)
      assert.equal(known.body, none.body)
      assert.equal(known.headers['content-type'], none.headers['content-type'])
      assert.equal(known.json().status, 'accepted')

      // Interleaved, after a warm-up, each on its own (the work done after an answer does not weigh on the next).
      const times: Record<'known' | 'unknown', number[]> = { known: [], unknown: [] }
      for (let round = 0; round < 23; round++) {
        for (const [which, name] of [
          ['known', user.username],
          ['unknown', unknown],
        ] as const) {
          const started = performance.now()
          const response = await requestLink(t, name)
          const elapsed = performance.now() - started
          assert.equal(response.statusCode, 202)
          assert.equal(response.body, known.body)
          if (round >= 3) times[which].push(elapsed)
          await sleep(5)
        }
      }
      const [k, u] = [median(times.known), median(times.unknown)]
      const ratio = Math.max(k, u) / Math.min(k, u)
      assert.ok(
        ratio < 3 || Math.abs(k - u) < 5,
        `median ${k.toFixed(2)} ms for an existing user, ${u.toFixed(2)} ms for an unknown one`,
      )
      await settle()
      assert.deepEqual(sentNaming(unknown), [], 'nothing is sent for an unknown username')
    })

    it('sends the link for an existing user only, once, signed; its token resets the password', async () => {
      const user = await registerUser(t.app)
      const grant = (await signIn(t, user.username, user.password)).json()
      const unknown = uniqueUsername('ghost')
      assert.equal((await requestLink(t, unknown)).statusCode, 202)
      assert.equal((await requestLink(t, user.username)).statusCode, 202)
      await hook.waitFor(() => sentFor(user.id).length > 0, 5000, "the user's reset link")
      await settle()

      const sent = sentFor(user.id)
      assert.equal(sent.length, 1, 'sent once')
      const [entry] = sent as [Received]
      assert.equal(entry.status, 204)
      assertSigned(entry, TEST_WEBHOOK_SECRET)
      assert.equal(entry.contentType, 'application/json')
      const body = parsed(entry)
      assert.deepEqual(Object.keys(body), ['type', 'timestamp', 'data'])
      assert.equal(body.type, 'password.reset_requested')
      assert.deepEqual(Object.keys(body.data).sort(), ['expires_in', 'url', 'userId', 'username'])
      assert.equal(body.data.username, user.username)
      assert.equal(body.data.expires_in, 1800)
      const match = /^http:\/\/tessera\.test\/reset-password#token=([A-Za-z0-9_-]+)$/.exec(body.data.url)
      assert.ok(match, `the link: ${body.data.url}`)
      const token = match[1] ?? assert.fail()
      assert.match(token, TOKEN)
      assert.deepEqual(sentNaming(unknown), [], 'nothing for the unknown name')

      // Once delivered, the link is erased from the outbox: no table holds the token.
      const verifier = verifierOf(token)
      const stored = async () =>
        JSON.stringify([
          await t.deps.db.selectFrom('webhook_deliveries').selectAll().execute(),
          await t.deps.db.selectFrom('password_resets').selectAll().execute(),
          await t.deps.db.selectFrom('events').selectAll().execute(),
        ])
      for (let i = 0; i < 100 && (await stored()).includes(verifier); i++) await sleep(20)
      assert.ok(!(await stored()).includes(verifier), 'the database holds the verifier after delivery')

      const issued = await events(t, admin, { type: 'password.reset_link_issued', user: user.id })
      assert.equal(issued.length, 1)
      assert.deepEqual(issued[0].detail, { via: 'self_service', expiresIn: 1800 })
      assert.deepEqual(issued[0].actor, { kind: 'anonymous' })

      assert.equal((await reset(t, token)).statusCode, 204)
      assert.equal((await signIn(t, user.username, GOOD_PASSWORD)).statusCode, 200)
      const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(grant.access_token) })
      assert.equal(me.statusCode, 401, 'sessions ended')
      refused(await reset(t, token))
    })

    it('neither ends a link an admin handed over nor sends another within 5 minutes; then a new link ends the last (found by an outside attack)', async () => {
      const clock = createFixedClock(Math.floor(Date.now() / 1000) * 1000)
      const own = await startReceiver()
      const app = await buildTestApp({
        env: { PASSWORD_RESET_WEBHOOK_URL: own.url, PASSWORD_RESET_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET },
        overrides: { clock },
      })
      try {
        const chief = await createAdmin(app.app, app.deps)
        const user = await registerUser(app.app)
        const handedOver = await linkFor(app, chief, user)
        const ask = async () => {
          assert.equal((await requestLink(app, user.username)).statusCode, 202)
          await sleep(100)
          await app.deps.webhooks.dispatcher.deliverDue()
        }
        await ask()
        assert.equal(own.received.length, 0, "nothing is sent while the admin's link is live")
        clock.advance(1800_000)
        // The admin's link has expired: a request sends one, and more within 5 minutes send nothing.
        await ask()
        await ask()
        clock.advance(RESEND_AFTER_SECONDS * 1000 - 1000)
        await ask()
        assert.equal(own.received.length, 1)
        clock.advance(1000)
        await ask()
        assert.equal(own.received.length, 2)
        const tokenOf = (entry: Received) =>
          String(/#token=([\w-]+)/.exec(JSON.parse(entry.body).data.url)?.[1])
        const [first, second] = own.received.map(tokenOf) as [string, string]
        refused(await reset(app, first))
        refused(await reset(app, handedOver.token))
        assert.equal((await reset(app, second)).statusCode, 204)
      } finally {
        await app.close()
        await own.close()
      }
    })

    it('sends one link for parallel requests, however the name is written (a race sent three, on PostgreSQL)', async () => {
      const user = await registerUser(t.app)
      const spellings = [user.username, user.username.toUpperCase(), user.username]
      const answers = await Promise.all(spellings.map((name, i) => requestLink(t, name, `192.0.2.${i + 10}`)))
      for (const answer of answers) assert.equal(answer.statusCode, 202)
      await hook.waitFor(() => sentFor(user.id).length > 0, 5000, "the user's reset link")
      await settle()
      assert.equal(sentFor(user.id).length, 1)
    })

    it('sends nothing for a disabled user, and issues no token', async () => {
      const user = await registerUser(t.app)
      const disable = await t.app.inject({
        method: 'PATCH',
        url: `/users/${user.id}`,
        payload: { disabled: true },
        headers: bearer(admin.token),
      })
      assert.equal(disable.statusCode, 200, disable.body)
      const answer = await requestLink(t, user.username)
      assert.equal(answer.statusCode, 202)
      // A request for an enabled user after it: once its link arrives, the one before was handled too.
      const witness = await registerUser(t.app)
      assert.equal((await requestLink(t, witness.username)).statusCode, 202)
      await hook.waitFor(() => sentFor(witness.id).length > 0, 5000, "the witness's reset link")
      await settle()
      assert.deepEqual(sentFor(user.id), [])
      assert.deepEqual(sentNaming(user.username), [])
      assert.equal(await resetRow(t, user.id), undefined)
      assert.deepEqual(await events(t, admin, { type: 'password.reset_link_issued', user: user.id }), [])
    })
  })
})

describe('issue 14, point 2: self-service requests are rate-limited per username and per address', () => {
  let t: TestApp
  let hook: Receiver
  before(async () => {
    hook = await startReceiver()
  })
  afterEach(() => t?.close())
  after(() => hook.close())

  const start = async (limits: Record<string, string>) => {
    t = await buildTestApp({
      env: {
        PASSWORD_RESET_WEBHOOK_URL: hook.url,
        PASSWORD_RESET_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
        RATE_LIMIT_WINDOW_SECONDS: '60',
        ...limits,
      },
    })
  }

  it('past RATE_LIMIT_PASSWORD_RESET_PER_USERNAME requests for a name, from any address: 429 rate_limited, alike for known and unknown names', async () => {
    await start({ RATE_LIMIT_PASSWORD_RESET_PER_USERNAME: '3' })
    const user = await registerUser(t.app)
    const unknown = uniqueUsername('nobody')
    const limited: Record<string, Json> = {}
    for (const name of [user.username, unknown]) {
      const statuses = []
      for (let i = 0; i < 3; i++) statuses.push((await requestLink(t, name, `10.0.0.${i + 1}`)).statusCode)
      assert.deepEqual(statuses, [202, 202, 202], name)
      const response = await requestLink(t, name, '10.0.0.9')
      const { instance: _perRequest, ...body } = assertProblem(response, 429, 'rate_limited')
      const retryAfter = Number(response.headers['retry-after'])
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${response.headers['retry-after']}`)
      limited[name] = { body, retryAfter: response.headers['retry-after'] !== undefined }
    }
    assert.deepEqual(limited[user.username], limited[unknown], 'known and unknown names are limited alike')
    // The name in another case is the same account.
    assertProblem(await requestLink(t, user.username.toUpperCase(), '10.0.0.10'), 429, 'rate_limited')
    // Other names go on.
    assert.equal((await requestLink(t, uniqueUsername('other'), '10.0.0.1')).statusCode, 202)
  })

  it('past RATE_LIMIT_PASSWORD_RESET_PER_IP requests from an address (requests and resets): 429; other addresses go on', async () => {
    await start({ RATE_LIMIT_PASSWORD_RESET_PER_IP: '3' })
    const statuses = []
    for (let i = 0; i < 2; i++) statuses.push((await requestLink(t, uniqueUsername(), '10.0.1.1')).statusCode)
    statuses.push(
      (await reset(t, randomBytes(44).toString('base64url'), GOOD_PASSWORD, '10.0.1.1')).statusCode,
    )
    assert.deepEqual(statuses, [202, 202, 400])
    assertProblem(await requestLink(t, uniqueUsername(), '10.0.1.1'), 429, 'rate_limited')
    assertProblem(
      await reset(t, randomBytes(44).toString('base64url'), GOOD_PASSWORD, '10.0.1.1'),
      429,
      'rate_limited',
    )
    assert.equal((await requestLink(t, uniqueUsername(), '10.0.1.2')).statusCode, 202)
  })
})
