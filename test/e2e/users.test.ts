import assert from 'node:assert/strict'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import { sql } from 'kysely'
import { createDb } from '../../src/db/create-db.ts'
import { ADMIN_GUARD_LOCK } from '../../src/users/user.repository.ts'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import {
  assertProblem,
  bearer,
  createAdmin,
  login,
  registerUser,
  type TestUser,
} from '../helpers/fixtures.ts'
import { TEST_POSTGRES_URL } from '../helpers/test-database.ts'

describe('the signed-in user', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp()
  })
  after(() => t.close())

  it('PATCH /users/me changes first and last name, and nothing else', async () => {
    const user = await registerUser(t.app)
    const response = await t.app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: bearer(user.token),
      payload: { firstName: 'Augusta' },
    })
    assert.equal(response.statusCode, 200)
    assert.equal(response.json().firstName, 'Augusta')
    assert.equal(response.json().lastName, 'Lovelace')
  })

  it('PATCH /users/me refuses roles, unknown fields and an empty body', async () => {
    const user = await registerUser(t.app)
    for (const payload of [{ roles: ['admin'] }, { username: 'other' }, {}]) {
      const response = await t.app.inject({
        method: 'PATCH',
        url: '/users/me',
        headers: bearer(user.token),
        payload,
      })
      assertProblem(response, 400, 'validation_failed')
    }
  })

  it('POST /users/me/password changes the password; tokens issued before it stop working', async () => {
    const user = await registerUser(t.app)
    const response = await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(user.token),
      payload: { currentPassword: user.password, newPassword: 'a brand new password' },
    })
    assert.equal(response.statusCode, 204)
    const old = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
    assertProblem(old, 401, 'invalid_token')
    const oldLogin = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: user.username, password: user.password },
    })
    assertProblem(oldLogin, 401, 'invalid_credentials')
    const fresh = await login(t.app, user.username, 'a brand new password')
    const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(fresh) })
    assert.equal(me.statusCode, 200)
  })

  it('POST /users/me/password with a wrong current password is 400 and changes nothing', async () => {
    const user = await registerUser(t.app)
    const response = await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(user.token),
      payload: { currentPassword: 'not my password', newPassword: 'a brand new password' },
    })
    assertProblem(response, 400, 'invalid_current_password')
    const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
    assert.equal(me.statusCode, 200)
  })
})

describe('admin user management', () => {
  let t: TestApp
  let admin: TestUser
  before(async () => {
    t = await buildTestApp()
    admin = await createAdmin(t.app, t.deps)
  })
  after(() => t.close())

  it('is 403 insufficient_role for a signed-in user without the admin role', async () => {
    const user = await registerUser(t.app)
    for (const [method, url] of [
      ['GET', '/users'],
      ['GET', `/users/${user.id}`],
      ['PATCH', `/users/${user.id}`],
      ['DELETE', `/users/${user.id}`],
    ] as const) {
      const response = await t.app.inject({
        method,
        url,
        headers: bearer(user.token),
        payload: { disabled: true },
      })
      assertProblem(response, 403, 'insufficient_role')
    }
  })

  it('GET /users pages through every user in creation order with a cursor', async () => {
    for (let i = 0; i < 5; i++) await registerUser(t.app)
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const url: string = `/users?limit=2${cursor ? `&cursor=${cursor}` : ''}`
      const response = await t.app.inject({ method: 'GET', url, headers: bearer(admin.token) })
      assert.equal(response.statusCode, 200, response.body)
      const page = response.json()
      assert.ok(page.users.length <= 2)
      seen.push(...page.users.map((u: { id: string }) => u.id))
      cursor = page.nextCursor
    } while (cursor)
    assert.equal(new Set(seen).size, seen.length, 'no user appears twice')
    assert.deepEqual(seen, [...seen].sort(), 'ordered by time-ordered id')
    const all = await t.deps.repositories.users.list({ limit: 1000 })
    assert.equal(seen.length, all.length)
  })

  it('GET /users refuses a limit outside 1..100 and a malformed cursor', async () => {
    for (const query of ['limit=0', 'limit=101', 'limit=abc', 'cursor=not-a-uuid', 'other=1']) {
      const response = await t.app.inject({
        method: 'GET',
        url: `/users?${query}`,
        headers: bearer(admin.token),
      })
      assertProblem(response, 400, 'validation_failed')
    }
  })

  it('GET /users/{id} returns one user; 404 for an unknown id; 400 for a malformed id', async () => {
    const user = await registerUser(t.app)
    const found = await t.app.inject({
      method: 'GET',
      url: `/users/${user.id}`,
      headers: bearer(admin.token),
    })
    assert.equal(found.json().username, user.username)
    const missing = await t.app.inject({
      method: 'GET',
      url: '/users/01900000-0000-7000-8000-000000000000',
      headers: bearer(admin.token),
    })
    assertProblem(missing, 404, 'user_not_found')
    const malformed = await t.app.inject({
      method: 'GET',
      url: '/users/..%2F..',
      headers: bearer(admin.token),
    })
    assertProblem(malformed, 400, 'validation_failed')
  })

  it('PATCH /users/{id} disabling a user stops their existing tokens at once, and their logins', async () => {
    const user = await registerUser(t.app)
    const before = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
    assert.equal(before.statusCode, 200)
    const response = await t.app.inject({
      method: 'PATCH',
      url: `/users/${user.id}`,
      headers: bearer(admin.token),
      payload: { disabled: true },
    })
    assert.equal(response.statusCode, 200)
    assert.equal(response.json().disabled, true)
    const after = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
    assertProblem(after, 401, 'invalid_token')
    const relogin = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: user.username, password: user.password },
    })
    assertProblem(relogin, 401, 'invalid_credentials')
  })

  it('PATCH /users/{id} granting and removing admin takes effect on the next request', async () => {
    const user = await registerUser(t.app)
    const grant = await t.app.inject({
      method: 'PATCH',
      url: `/users/${user.id}`,
      headers: bearer(admin.token),
      payload: { roles: ['user', 'admin'] },
    })
    assert.deepEqual(grant.json().roles, ['user', 'admin'])
    const list = await t.app.inject({ method: 'GET', url: '/users', headers: bearer(user.token) })
    assert.equal(list.statusCode, 200)
    await t.app.inject({
      method: 'PATCH',
      url: `/users/${user.id}`,
      headers: bearer(admin.token),
      payload: { roles: ['user'] },
    })
    const denied = await t.app.inject({ method: 'GET', url: '/users', headers: bearer(user.token) })
    assertProblem(denied, 403, 'insufficient_role')
  })

  it('GET /auth/me shows a change of name or roles on the next request, however often it was read before', async () => {
    // Issue 19: /auth/me's answer is kept per remembered session state; a change must not be answered stale.
    const user = await registerUser(t.app)
    const me = () => t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
    for (let i = 0; i < 3; i++) assert.equal((await me()).json().firstName, 'Ada')
    const renamed = await t.app.inject({
      method: 'PATCH',
      url: '/users/me',
      headers: bearer(user.token),
      payload: { firstName: 'Augusta' },
    })
    assert.equal(renamed.statusCode, 200)
    assert.equal((await me()).json().firstName, 'Augusta')
    await t.app.inject({
      method: 'PATCH',
      url: `/users/${user.id}`,
      headers: bearer(admin.token),
      payload: { roles: ['user', 'admin'] },
    })
    assert.deepEqual((await me()).json().roles, ['user', 'admin'])
  })

  it('PATCH /users/{id} refuses malformed roles and unknown fields', async () => {
    const user = await registerUser(t.app)
    for (const payload of [
      { roles: ['Admin!'] },
      { roles: ['a', 'a'] },
      { password: 'x' },
      { disabled: 'yes' },
    ]) {
      const response = await t.app.inject({
        method: 'PATCH',
        url: `/users/${user.id}`,
        headers: bearer(admin.token),
        payload,
      })
      assertProblem(response, 400, 'validation_failed')
    }
  })

  it('DELETE /users/{id} deletes the user, whose tokens stop working at once; a second delete is 404', async () => {
    const user = await registerUser(t.app)
    const response = await t.app.inject({
      method: 'DELETE',
      url: `/users/${user.id}`,
      headers: bearer(admin.token),
    })
    assert.equal(response.statusCode, 204)
    const after = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(user.token) })
    assertProblem(after, 401, 'invalid_token')
    const again = await t.app.inject({
      method: 'DELETE',
      url: `/users/${user.id}`,
      headers: bearer(admin.token),
    })
    assertProblem(again, 404, 'user_not_found')
  })
})

describe('issue 11: there is always an enabled admin', () => {
  let t: TestApp
  beforeEach(async () => {
    t = await buildTestApp()
  })
  afterEach(() => t.close())

  const patch = (as: TestUser, id: string, payload: object) =>
    t.app.inject({ method: 'PATCH', url: `/users/${id}`, headers: bearer(as.token), payload })
  const remove = (as: TestUser, id: string) =>
    t.app.inject({ method: 'DELETE', url: `/users/${id}`, headers: bearer(as.token) })
  const enabledAdmins = async () =>
    (await t.deps.repositories.users.list({ limit: 1000 })).filter(
      (u) => u.roles.includes('admin') && !u.disabled,
    )

  it('refuses to let the only enabled admin demote, disable or delete themselves: 409 last_admin', async () => {
    const admin = await createAdmin(t.app, t.deps)
    for (const response of [
      await patch(admin, admin.id, { roles: ['user'] }),
      await patch(admin, admin.id, { disabled: true }),
      await patch(admin, admin.id, { roles: ['admin', 'user'], disabled: true }),
      await remove(admin, admin.id),
    ]) {
      const problem = assertProblem(response, 409, 'last_admin')
      assert.match(problem.detail, /no enabled admin/)
    }
    const me = await t.app.inject({ method: 'GET', url: '/auth/me', headers: bearer(admin.token) })
    assert.equal(me.statusCode, 200, 'nothing changed: the admin is still signed in')
    assert.deepEqual(me.json().roles, ['admin', 'user'])
    assert.equal(me.json().disabled, false)
  })

  it('counts only enabled admins: a disabled admin cannot be the one who remains', async () => {
    const admin = await createAdmin(t.app, t.deps)
    const other = await createAdmin(t.app, t.deps)
    assert.equal((await patch(admin, other.id, { disabled: true })).statusCode, 200)
    assertProblem(await patch(admin, admin.id, { roles: ['user'] }), 409, 'last_admin')
    // Enabling the other admin again makes room for this one to step down.
    assert.equal((await patch(admin, other.id, { disabled: false })).statusCode, 200)
    assert.equal((await patch(admin, admin.id, { roles: ['user'] })).statusCode, 200)
  })

  it('lets an admin step down, be disabled or be deleted while another enabled admin remains', async () => {
    const admin = await createAdmin(t.app, t.deps)
    const user = await registerUser(t.app)
    assert.equal((await patch(admin, user.id, { roles: ['user', 'admin'] })).statusCode, 200)
    const other = await createAdmin(t.app, t.deps)
    assert.equal((await patch(admin, admin.id, { roles: ['user'] })).statusCode, 200)
    assert.equal((await patch(other, user.id, { disabled: true })).statusCode, 200)
    assert.equal((await remove(other, user.id)).statusCode, 204)
    assert.deepEqual(
      (await enabledAdmins()).map((u) => u.id),
      [other.id],
    )
    // Changes that leave an admin an admin are never refused, even for the last one.
    assert.equal((await patch(other, other.id, { roles: ['admin'] })).statusCode, 200)
    assert.equal((await patch(other, other.id, { disabled: false })).statusCode, 200)
  })

  it('when two admins demote each other at once, one is refused and an enabled admin remains', async () => {
    for (let round = 0; round < 5; round++) {
      // The previous round's survivor makes way for this round's pair.
      const survivors = await enabledAdmins()
      const a = await createAdmin(t.app, t.deps)
      const b = await createAdmin(t.app, t.deps)
      for (const survivor of survivors) {
        assert.equal((await patch(a, survivor.id, { roles: ['user'] })).statusCode, 200)
      }
      const answers = await Promise.all([
        patch(a, b.id, { roles: ['user'] }),
        patch(b, a.id, { roles: ['user'] }),
        remove(a, a.id),
        patch(b, b.id, { disabled: true }),
      ])
      const statuses = answers.map((r) => r.statusCode)
      assert.ok(statuses.filter((s) => s === 409).length >= 1, `round ${round}: ${statuses.join(', ')}`)
      assert.equal((await enabledAdmins()).length, 1, `round ${round}: ${statuses.join(', ')}`)
    }
  })

  it('on PostgreSQL, double clicks on both sides of a race never answer 500 (a deadlock), and an enabled admin remains', {
    skip: TEST_POSTGRES_URL ? false : 'PostgreSQL only',
  }, async () => {
    for (let round = 0; round < 20; round++) {
      const survivors = await enabledAdmins()
      const a = await createAdmin(t.app, t.deps)
      const b = await createAdmin(t.app, t.deps)
      for (const survivor of survivors) await patch(a, survivor.id, { roles: ['user'] })
      const answers = await Promise.all([
        ...Array.from({ length: 4 }, () => patch(a, b.id, { roles: ['user'] })),
        ...Array.from({ length: 4 }, () => remove(b, a.id)),
      ])
      const statuses = answers.map((r) => r.statusCode)
      assert.ok(
        statuses.every((s) => [200, 204, 401, 403, 404, 409].includes(s)),
        `round ${round}: ${statuses.join(', ')}`,
      )
      assert.equal((await enabledAdmins()).length, 1, `round ${round}: ${statuses.join(', ')}`)
    }
  })

  it('on PostgreSQL, waits for an admin change another instance has in flight before counting admins', {
    skip: TEST_POSTGRES_URL ? false : 'PostgreSQL only',
  }, async () => {
    const a = await createAdmin(t.app, t.deps)
    const b = await createAdmin(t.app, t.deps)
    // Another instance demoting a, as this one would (take the guard's lock, then write), held open.
    const elsewhere = createDb(t.deps.config.database)
    try {
      const trx = await elsewhere.startTransaction().execute()
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)
      await sql`select pg_advisory_xact_lock(${ADMIN_GUARD_LOCK})`.execute(trx)
      await trx.updateTable('users').set({ roles: '["user"]' }).where('id', '=', a.id).execute()

      let answered = false
      const response = patch(b, b.id, { roles: ['user'] }).finally(() => {
        answered = true
      })
      // Until b's demotion waits on that transaction (or was answered without waiting for it).
      for (let i = 0; i < 500 && !answered; i++) {
        const waiting = await sql<{ n: number }>`
            select count(*)::int as n from pg_stat_activity where ${rows[0]?.pid} = any(pg_blocking_pids(pid))`.execute(
          elsewhere,
        )
        if ((waiting.rows[0]?.n ?? 0) > 0) break
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      await trx.commit().execute()
      assertProblem(await response, 409, 'last_admin')
      assert.deepEqual(
        (await enabledAdmins()).map((u) => u.id),
        [b.id],
      )
    } finally {
      await elsewhere.destroy()
    }
  })
})
