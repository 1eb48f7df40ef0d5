import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { buildTestApp, type TestApp } from '../helpers/build-test-app.ts'
import {
  assertProblem,
  bearer,
  createAdmin,
  login,
  registerUser,
  type TestUser,
} from '../helpers/fixtures.ts'

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
