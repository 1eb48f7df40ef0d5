// Issue 13, point 1: every security-relevant change is recorded as an event, once, in the transaction that makes
// it: nothing for an action that was refused, nothing for a change that rolled back, nothing for a refresh.
// Events are read back the way an operator reads them, through GET /admin/events.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Store } from '../../src/deps.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import {
  assertProblem,
  bearer,
  createAdmin,
  registerUser,
  type TestUser,
  uniqueUsername,
} from '../helpers/fixtures.ts'
import { TEST_WEBHOOK_SECRET } from '../helpers/webhook-receiver.ts'

// biome-ignore lint/suspicious/noExplicitAny: the tests read the fields they expect and assert on them.
type ApiEvent = any

/** Every event about `userId` (or of the whole log), oldest first, as GET /admin/events shows them. */
async function eventsAbout(t: TestApp, admin: TestUser, query: Record<string, string>): Promise<ApiEvent[]> {
  const found: ApiEvent[] = []
  let cursor: string | undefined
  do {
    const response = await t.app.inject({
      method: 'GET',
      url: '/admin/events',
      query: { limit: '100', ...query, ...(cursor ? { cursor } : {}) },
      headers: bearer(admin.token),
    })
    assert.equal(response.statusCode, 200, response.body)
    found.push(...response.json().events)
    cursor = response.json().nextCursor ?? undefined
  } while (cursor)
  return found.reverse()
}

const typesOf = (events: ApiEvent[]) => events.map((event) => event.type)

function login(t: TestApp, username: string, password: string, userAgent = 'test-agent/1.0') {
  return t.app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { username, password },
    headers: { 'user-agent': userAgent },
  })
}

describe('issue 13: each security event is recorded once, after its action, and never after a refused one', () => {
  let t: TestApp
  let admin: TestUser
  const about = (user: { id: string }) => eventsAbout(t, admin, { user: user.id })
  before(async () => {
    t = await buildTestApp({ env: { REFRESH_REUSE_WINDOW_SECONDS: '0' } })
    admin = await createAdmin(t.app, t.deps)
  })
  after(() => t.close())

  it('records user.registered (anonymous, with the address) and login.succeeded (with the session, address and user agent)', async () => {
    const user = await registerUser(t.app)
    const response = await login(t, user.username, user.password, 'Firefox/140')
    assert.equal(response.statusCode, 200)
    const events = await about(user)
    assert.deepEqual(typesOf(events), ['user.registered', 'login.succeeded', 'login.succeeded'])
    const [registered, , signedIn] = events
    assert.deepEqual(registered.actor, { kind: 'anonymous' })
    assert.deepEqual(registered.detail, { username: user.username, roles: ['user'] })
    assert.equal(registered.ip, '127.0.0.1')
    assert.match(registered.at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
    assert.deepEqual(signedIn.actor, { kind: 'user', id: user.id })
    assert.equal(signedIn.userAgent, 'Firefox/140')
    const sessions = await t.app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(user.token) })
    assert.ok(sessions.json().sessions.some((session: { id: string }) => session.id === signedIn.sessionId))
  })

  it('records nothing for a registration refused as a taken username (a unique violation)', async () => {
    const user = await registerUser(t.app)
    const again = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { username: user.username, password: 'another password', firstName: 'A', lastName: 'B' },
    })
    assertProblem(again, 409, 'username_taken')
    assert.equal(
      (await eventsAbout(t, admin, { type: 'user.registered' })).filter(
        (event) => event.detail.username === user.username,
      ).length,
      1,
    )
  })

  it('records login.failed with its reason: wrong_password and disabled about the account, unknown_user as a hash of the name', async () => {
    const user = await registerUser(t.app)
    assertProblem(await login(t, user.username, 'not the password'), 401, 'invalid_credentials')
    const typed = `${user.username}-hunter2-typed-as-name`
    assertProblem(await login(t, typed, 'whatever'), 401, 'invalid_credentials')
    assertProblem(await login(t, typed.toUpperCase(), 'whatever'), 401, 'invalid_credentials')
    const disable = await t.app.inject({
      method: 'PATCH',
      url: `/users/${user.id}`,
      payload: { disabled: true },
      headers: bearer(admin.token),
    })
    assert.equal(disable.statusCode, 200)
    assertProblem(await login(t, user.username, user.password), 401, 'invalid_credentials')

    const failures = (await about(user)).filter((event) => event.type === 'login.failed')
    assert.deepEqual(
      failures.map((event) => event.detail),
      [{ reason: 'wrong_password' }, { reason: 'disabled' }],
    )
    assert.deepEqual(failures[0].actor, { kind: 'anonymous' })
    const unknown = (await eventsAbout(t, admin, { type: 'login.failed' })).filter(
      (event) => event.detail.reason === 'unknown_user',
    )
    const hashes = unknown.slice(-2).map((event) => event.detail.usernameHash)
    assert.equal(unknown.at(-1).userId, null)
    assert.match(hashes[0], /^[A-Za-z0-9_-]{22}$/)
    assert.equal(hashes[0], hashes[1], 'one name in any case: one hash, so attempts can be grouped')
    const log = JSON.stringify(await t.deps.db.selectFrom('events').selectAll().execute())
    assert.ok(!log.toLowerCase().includes(typed.toLowerCase()), 'the name typed is never stored')
  })

  it('records nothing for a refresh; records session.reuse_detected once when a spent token comes back', async () => {
    const user = await registerUser(t.app)
    const grant = (await login(t, user.username, user.password)).json()
    const before = (await about(user)).length
    let token = grant.refresh_token
    const first = token
    for (let i = 0; i < 5; i++) {
      const refreshed = await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        payload: { refresh_token: token },
      })
      assert.equal(refreshed.statusCode, 200, refreshed.body)
      token = refreshed.json().refresh_token
    }
    assert.equal((await about(user)).length, before, 'refreshes are not logged')
    for (let i = 0; i < 2; i++) {
      const reused = await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        payload: { refresh_token: first },
        headers: { 'user-agent': 'thief/0.1' },
      })
      assert.equal(reused.statusCode, 401)
    }
    const events = (await about(user)).slice(before)
    assert.deepEqual(typesOf(events), ['session.reuse_detected'])
    assert.deepEqual(events[0].actor, { kind: 'anonymous' })
    assert.equal(events[0].userAgent, 'thief/0.1')
    const claims = JSON.parse(Buffer.from(grant.access_token.split('.')[1], 'base64url').toString())
    assert.equal(events[0].sessionId, claims.sid)
  })

  it('records session.revoked for a logout and for signing out another device, once; sessions.revoked_all for logout-all', async () => {
    const user = await registerUser(t.app)
    const other = (await login(t, user.username, user.password)).json()
    const third = (await login(t, user.username, user.password)).json()
    const before = (await about(user)).length
    for (let i = 0; i < 2; i++) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/auth/logout',
        payload: { refresh_token: other.refresh_token },
      })
      assert.equal(response.statusCode, 204)
    }
    const sessions = await t.app.inject({ method: 'GET', url: '/auth/sessions', headers: bearer(user.token) })
    const thirdId = sessions.json().sessions.find((s: { current: boolean }) => !s.current).id
    const revoked = await t.app.inject({
      method: 'DELETE',
      url: `/auth/sessions/${thirdId}`,
      headers: bearer(user.token),
    })
    assert.equal(revoked.statusCode, 204)
    const all = await t.app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(user.token) })
    assert.equal(all.statusCode, 204)
    assert.ok(third.access_token)

    const events = (await about(user)).slice(before)
    assert.deepEqual(typesOf(events), ['session.revoked', 'session.revoked', 'sessions.revoked_all'])
    assert.deepEqual(
      events.map((event) => event.detail),
      [{ reason: 'logout' }, { reason: 'revoked_by_user' }, { sessionsRevoked: 1 }],
    )
    assert.equal(events[1].sessionId, thirdId)
    for (const event of events) assert.deepEqual(event.actor, { kind: 'user', id: user.id })
  })

  it('records password.changed with the sessions it ended; a refused change records nothing', async () => {
    const user = await registerUser(t.app)
    await login(t, user.username, user.password)
    const before = (await about(user)).length
    const change = (currentPassword: string, newPassword: string) =>
      t.app.inject({
        method: 'POST',
        url: '/users/me/password',
        payload: { currentPassword, newPassword },
        headers: bearer(user.token),
      })
    assertProblem(await change('not the password', 'a brand new password'), 400, 'invalid_current_password')
    assertProblem(await change(user.password, 'password'), 400, 'validation_failed')
    assert.equal((await about(user)).length, before, 'refusals record nothing')
    assert.equal((await change(user.password, 'a brand new password')).statusCode, 204)
    const events = (await about(user)).slice(before)
    assert.deepEqual(typesOf(events), ['password.changed'])
    assert.deepEqual(events[0].detail, { sessionsRevoked: 2 })
    assert.deepEqual(events[0].actor, { kind: 'user', id: user.id })
  })

  it('records user.updated naming only the fields that changed, and nothing when none did', async () => {
    const user = await registerUser(t.app, { firstName: 'Ada', lastName: 'Lovelace' })
    const patch = (payload: object) =>
      t.app.inject({ method: 'PATCH', url: '/users/me', payload, headers: bearer(user.token) })
    assert.equal((await patch({ firstName: 'Augusta', lastName: 'Lovelace' })).statusCode, 200)
    assert.equal((await patch({ firstName: 'Augusta' })).statusCode, 200)
    const updates = (await about(user)).filter((event) => event.type === 'user.updated')
    assert.deepEqual(
      updates.map((event) => event.detail),
      [{ fields: ['firstName'] }],
    )
  })

  it('records what an admin changed: role.granted and role.revoked per role, user.disabled, user.enabled, user.deleted', async () => {
    const user = await registerUser(t.app)
    const patch = (payload: object) =>
      t.app.inject({ method: 'PATCH', url: `/users/${user.id}`, payload, headers: bearer(admin.token) })
    assert.equal((await patch({ roles: ['user', 'editor', 'auditor'] })).statusCode, 200)
    assert.equal((await patch({ roles: ['user', 'editor', 'auditor'] })).statusCode, 200)
    assert.equal((await patch({ roles: ['user', 'editor'] })).statusCode, 200)
    assert.equal((await patch({ disabled: true })).statusCode, 200)
    assert.equal((await patch({ disabled: true })).statusCode, 200)
    assert.equal((await patch({ disabled: false })).statusCode, 200)
    const removed = await t.app.inject({
      method: 'DELETE',
      url: `/users/${user.id}`,
      headers: bearer(admin.token),
    })
    assert.equal(removed.statusCode, 204)

    const events = (await about(user)).filter((event) => !event.type.startsWith('login.'))
    assert.deepEqual(
      events.map((event) => [event.type, event.detail]),
      [
        ['user.registered', { username: user.username, roles: ['user'] }],
        ['role.granted', { role: 'editor' }],
        ['role.granted', { role: 'auditor' }],
        ['role.revoked', { role: 'auditor' }],
        ['user.disabled', { sessionsRevoked: 1 }],
        ['user.enabled', {}],
        ['user.deleted', { username: user.username }],
      ],
    )
    for (const event of events.slice(1)) assert.deepEqual(event.actor, { kind: 'admin', id: admin.id })
  })

  it('records nothing for an admin change refused as 409 last_admin', async () => {
    const soleAdminApp = await buildTestApp()
    try {
      const sole = await createAdmin(soleAdminApp.app, soleAdminApp.deps)
      const refused = await soleAdminApp.app.inject({
        method: 'PATCH',
        url: `/users/${sole.id}`,
        payload: { disabled: true },
        headers: bearer(sole.token),
      })
      assertProblem(refused, 409, 'last_admin')
      const events = await eventsAbout(soleAdminApp, sole, { user: sole.id })
      assert.deepEqual(typesOf(events), ['user.registered', 'login.succeeded'])
      assert.deepEqual(events[0].actor, { kind: 'cli' })
    } finally {
      await soleAdminApp.close()
    }
  })

  it('records key.rotated (actor system) when the server makes its signing key at first start', async () => {
    const rotations = await eventsAbout(t, admin, { type: 'key.rotated' })
    assert.equal(rotations.length, 1)
    assert.deepEqual(rotations[0].actor, { kind: 'system' })
    assert.equal(rotations[0].detail.algorithm, 'HS256')
    assert.match(rotations[0].detail.kid, /^[A-Za-z0-9_-]+$/)
  })
})

describe('issue 13: a login answered 429 is recorded as login.failed (rate_limited), once per window', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_LOGIN_PER_USERNAME: '2' } })
  })
  after(() => t.close())

  it('records two wrong passwords, then one rate_limited for three refusals with 429', async () => {
    const admin = await createAdmin(t.app, t.deps)
    const user = await registerUser(t.app)
    const statuses = []
    for (let i = 0; i < 5; i++) statuses.push((await login(t, user.username, 'not the password')).statusCode)
    assert.deepEqual(statuses, [401, 401, 429, 429, 429])
    // A throttled login is recorded after its answer is sent: wait for it rather than race it.
    const reasons = async () =>
      (await eventsAbout(t, admin, { user: user.id }))
        .filter((event) => event.type === 'login.failed')
        .map((event) => event.detail.reason)
    for (let tries = 0; tries < 50 && (await reasons()).length < 3; tries++) await sleep(20)
    assert.deepEqual(await reasons(), ['wrong_password', 'wrong_password', 'rate_limited'])
  })

  it('records a throttled unknown name by its hash; one rate_limited per address too, whatever the names', async () => {
    const admin = await createAdmin(t.app, t.deps)
    const attempt = (username: string) =>
      t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username, password: 'whatever' },
        remoteAddress: '10.0.0.7',
      })
    const names = [uniqueUsername('nobody'), uniqueUsername('nobody')]
    for (const name of names) for (let i = 0; i < 4; i++) await attempt(name)
    const failures = (await eventsAbout(t, admin, { type: 'login.failed' })).filter(
      (event) => event.ip === '10.0.0.7',
    )
    assert.deepEqual(
      failures.map((event) => event.detail.reason),
      ['unknown_user', 'unknown_user', 'rate_limited', 'unknown_user', 'unknown_user'],
    )
    const [first, , throttled, other] = failures.map((event) => event.detail.usernameHash)
    assert.equal(throttled, first, 'the throttled name is the first one, by its hash')
    assert.notEqual(other, first)
    const log = JSON.stringify(await t.deps.db.selectFrom('events').selectAll().execute())
    for (const name of names) assert.ok(!log.includes(name), 'names typed are never stored')
  })
})

describe('issue 13: a change and its events commit or roll back together', () => {
  /** A store whose `name` repository method fails after the real one ran, inside the unit of work. */
  const failingAfter =
    <K extends 'users' | 'sessions'>(repository: K, method: keyof Store[K]) =>
    (store: Store): Store => {
      const real = store[repository] as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
      const fails = async (...args: unknown[]) => {
        await real[method as string]?.(...args)
        throw new Error('the database failed half-way (a test)')
      }
      return { ...store, [repository]: { ...store[repository], [method]: fails } }
    }

  it('a password change whose session revocation fails leaves the old password and records no event', async () => {
    const t = await buildTestApp({ overrides: { store: failingAfter('sessions', 'revokeAllForUser') } })
    try {
      const admin = await createAdmin(t.app, t.deps)
      const user = await registerUser(t.app)
      const response = await t.app.inject({
        method: 'POST',
        url: '/users/me/password',
        payload: { currentPassword: user.password, newPassword: 'a brand new password' },
        headers: bearer(user.token),
      })
      assertProblem(response, 500, 'internal_error')
      assert.equal((await login(t, user.username, user.password)).statusCode, 200, 'the old password works')
      const types = typesOf(await eventsAbout(t, admin, { user: user.id }))
      assert.ok(!types.includes('password.changed'), types.join())
    } finally {
      await t.close()
    }
  })

  it('a profile change whose event fails to record is not made', async () => {
    const t = await buildTestApp({
      overrides: {
        store: (store) => ({
          ...store,
          events: {
            record: async (event) => {
              const recorded = await store.events.record(event)
              if (event.type === 'user.updated') throw new Error('the outbox failed (a test)')
              return recorded
            },
          },
        }),
      },
    })
    try {
      const admin = await createAdmin(t.app, t.deps)
      const user = await registerUser(t.app, { firstName: 'Ada' })
      const response = await t.app.inject({
        method: 'PATCH',
        url: '/users/me',
        payload: { firstName: 'Augusta' },
        headers: bearer(user.token),
      })
      assertProblem(response, 500, 'internal_error')
      const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
      assert.equal(me.json().firstName, 'Ada')
      assert.ok(!typesOf(await eventsAbout(t, admin, { user: user.id })).includes('user.updated'))
    } finally {
      await t.close()
    }
  })

  it('a registration that fails after its insert leaves neither the user nor an event', async () => {
    const t = await buildTestApp({ overrides: { store: failingAfter('users', 'insert') } })
    try {
      const name = uniqueUsername()
      const response = await t.app.inject({
        method: 'POST',
        url: '/auth/register',
        payload: { username: name, password: 'a fine password', firstName: 'A', lastName: 'B' },
      })
      assertProblem(response, 500, 'internal_error')
      const rows = await t.deps.db.selectFrom('events').select(['type', 'detail']).execute()
      assert.ok(!rows.some((row) => row.detail.includes(name)))
      assert.equal(
        (await t.deps.db.selectFrom('users').select('id').where('username', '=', name).execute()).length,
        0,
      )
    } finally {
      await t.close()
    }
  })

  it("enqueues each event's webhook in the same transaction: the delivery carries the event as the API shows it", async () => {
    const t = await buildTestApp({
      env: { WEBHOOK_URL: 'http://127.0.0.1:9/hook', WEBHOOK_SECRET: TEST_WEBHOOK_SECRET },
      overrides: { store: failingAfter('sessions', 'revokeAllForUser') },
    })
    try {
      const admin = await createAdmin(t.app, t.deps)
      const user = await registerUser(t.app)
      const [registered] = await eventsAbout(t, admin, { user: user.id, type: 'user.registered' })
      const deliveries = await t.deps.db.selectFrom('webhook_deliveries').selectAll().execute()
      const delivery = deliveries.find((row) => JSON.parse(row.payload).data.id === registered.id)
      assert.ok(delivery, 'a delivery for the event')
      assert.deepEqual(JSON.parse(delivery.payload), {
        type: 'user.registered',
        timestamp: registered.at,
        data: registered,
      })
      const count = deliveries.length
      // Rolled back (see above): neither the event nor its delivery.
      const failed = await t.app.inject({
        method: 'POST',
        url: '/users/me/password',
        payload: { currentPassword: user.password, newPassword: 'a brand new password' },
        headers: bearer(user.token),
      })
      assert.equal(failed.statusCode, 500)
      assert.equal((await t.deps.db.selectFrom('webhook_deliveries').select('id').execute()).length, count)
    } finally {
      await t.close()
    }
  })
})
