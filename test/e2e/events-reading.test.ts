// Issue 13, point 2: reading the event log. Admins page through it with filters (GET /admin/events); a user sees
// only their own activity (GET /auth/activity); nothing secret is ever stored in it; it is kept for
// EVENTS_RETENTION_DAYS; and `tessera events list | tail | purge` read it from a terminal.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
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
import { sharedTestDatabases } from '../helpers/test-database.ts'

// biome-ignore lint/suspicious/noExplicitAny: the tests read the fields they expect and assert on them.
type ApiEvent = any

const DAY_MS = 86_400_000

describe('issue 13: GET /admin/events and GET /auth/activity', () => {
  const clock = createFixedClock(Date.UTC(2026, 4, 1, 12))
  let t: TestApp
  let admin: TestUser
  before(async () => {
    t = await buildTestApp({ overrides: { clock } })
    admin = await createAdmin(t.app, t.deps)
  })
  after(() => t.close())

  const get = (url: string, token: string, query: Record<string, string> = {}) =>
    t.app.inject({ method: 'GET', url, query, headers: bearer(token) })
  /** A token valid at the clock's current time (the tests move it by days). */
  const tokenOf = (user: TestUser) => login(t.app, user.username, user.password)
  const asAdmin = async (query: Record<string, string>) => get('/admin/events', await tokenOf(admin), query)

  it('a user sees only their own security events, in the shape the admin API gives', async () => {
    const ada = await registerUser(t.app)
    const bob = await registerUser(t.app)
    await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: bob.username, password: 'wrong password' },
    })
    const response = await get('/auth/activity', ada.token)
    assert.equal(response.statusCode, 200, response.body)
    const { events, nextCursor } = response.json()
    assert.equal(nextCursor, null)
    assert.deepEqual(
      events.map((event: ApiEvent) => event.type),
      ['login.succeeded', 'user.registered'],
      'newest first',
    )
    for (const event of events) assert.equal(event.userId, ada.id)
    assert.deepEqual(events, (await asAdmin({ user: ada.id })).json().events)
    const [signedIn] = events
    assert.deepEqual(Object.keys(signedIn).sort(), [
      'actor',
      'at',
      'detail',
      'id',
      'ip',
      'sessionId',
      'type',
      'userAgent',
      'userId',
    ])
    assert.equal(signedIn.at, '2026-05-01T12:00:00.000Z')
    const bobs = (await get('/auth/activity', bob.token)).json().events
    assert.ok(bobs.every((event: ApiEvent) => event.userId === bob.id))
    assert.ok(bobs.some((event: ApiEvent) => event.detail.reason === 'wrong_password'))
  })

  it("a user's activity names an admin who acted on them as an admin, without the admin's id, address or browser", async () => {
    const ada = await registerUser(t.app)
    const adminToken = await tokenOf(admin)
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/users/${ada.id}`,
      headers: { ...bearer(adminToken), 'user-agent': 'AdminBrowser/7 secret-laptop' },
      payload: { roles: ['user', 'editor'] },
    })
    assert.equal(patched.statusCode, 200, patched.body)
    const { events } = (await get('/auth/activity', await tokenOf(ada))).json()
    const granted = events.find((event: ApiEvent) => event.type === 'role.granted')
    assert.deepEqual(granted.actor, { kind: 'admin' })
    assert.equal(granted.ip, null)
    assert.equal(granted.userAgent, null)
    const forAdmins = (await asAdmin({ user: ada.id.toUpperCase(), type: 'role.granted' })).json().events
    assert.equal(forAdmins.length, 1, 'an upper-case user id finds the same events')
    assert.equal(forAdmins[0].actor.id, admin.id, 'admins see who did it')
  })

  it('reads a leap second in since or until as the last second of its minute, never a 500', async () => {
    const queries: Record<string, string>[] = [
      { since: '2016-12-31T23:59:60Z' },
      { until: '2016-12-31T22:59:60-01:00' },
    ]
    for (const query of queries) {
      const response = await asAdmin(query)
      assert.equal(response.statusCode, 200, response.body)
    }
  })

  it('GET /admin/events is for admins only: 401 without a token, 403 for a user', async () => {
    const user = await registerUser(t.app)
    assertProblem(await t.app.inject({ method: 'GET', url: '/admin/events' }), 401, 'invalid_token')
    assertProblem(await get('/admin/events', user.token), 403, 'insufficient_role')
    assertProblem(await t.app.inject({ method: 'GET', url: '/auth/activity' }), 401, 'invalid_token')
  })

  it('filters by user, type and time, and pages newest first with a cursor, each event once', async () => {
    const user = await registerUser(t.app)
    const since = new Date(clock.now()).toISOString()
    for (let day = 0; day < 5; day++) {
      clock.advance(DAY_MS)
      const token = await tokenOf(user)
      for (const firstName of ['Augusta', 'Ada']) {
        const patched = await t.app.inject({
          method: 'PATCH',
          url: '/users/me',
          payload: { firstName },
          headers: bearer(token),
        })
        assert.equal(patched.statusCode, 200)
      }
    }
    const all = (await asAdmin({ user: user.id, type: 'user.updated' })).json()
    assert.equal(all.events.length, 10)
    const ids = all.events.map((event: ApiEvent) => event.id)
    assert.deepEqual(ids, [...ids].sort().reverse(), 'newest first')

    const paged: string[] = []
    let cursor: string | null = null
    do {
      const query: Record<string, string> = { user: user.id, type: 'user.updated', limit: '3' }
      if (cursor) query.cursor = cursor
      const page = (await asAdmin(query)).json()
      assert.ok(page.events.length <= 3)
      paged.push(...page.events.map((event: ApiEvent) => event.id))
      cursor = page.nextCursor
    } while (cursor)
    assert.deepEqual(paged, ids)

    const day2 = new Date(Date.parse(since) + 2 * DAY_MS).toISOString()
    const day4 = new Date(Date.parse(since) + 4 * DAY_MS).toISOString()
    const window = (await asAdmin({ user: user.id, type: 'user.updated', since: day2, until: day4 })).json()
    const day3 = new Date(Date.parse(since) + 3 * DAY_MS).toISOString()
    assert.deepEqual(
      window.events.map((event: ApiEvent) => event.at),
      [day3, day3, day2, day2],
      'since is inclusive, until exclusive',
    )
    const types = (await asAdmin({ type: 'user.registered' })).json().events
    assert.ok(types.length >= 2 && types.every((event: ApiEvent) => event.type === 'user.registered'))
  })

  it('refuses an unknown type, a malformed user or cursor, and a limit outside 1..100', async () => {
    const queries: Record<string, string>[] = [
      { type: 'user.hacked' },
      { user: 'not-a-uuid' },
      { cursor: 'x' },
      { limit: '0' },
      { limit: '101' },
      { since: 'yesterday' },
    ]
    for (const query of queries) {
      assertProblem(await asAdmin(query), 400, 'validation_failed')
    }
  })

  it('never stores a password, a token, a hash or the name typed at a failed login (a scripted session)', async () => {
    const password = 'Correct-Horse-Battery-7781'
    const user = await registerUser(t.app, { password })
    const grant = (
      await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: { username: user.username, password },
        headers: { 'user-agent': 'scripted/1.0' },
      })
    ).json()
    const refreshed = (
      await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        payload: { refresh_token: grant.refresh_token },
      })
    ).json()
    const typedAsName = 'MyS3cret-Passw0rd'
    await t.app.inject({ method: 'POST', url: '/auth/login', payload: { username: typedAsName, password } })
    const newPassword = 'Another-Horse-Battery-9902'
    await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      payload: { currentPassword: password, newPassword },
      headers: bearer(refreshed.access_token),
    })
    await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      payload: { refresh_token: refreshed.refresh_token },
    })

    const rows = await t.deps.db.selectFrom('events').selectAll().execute()
    assert.ok(rows.some((row) => row.user_id === user.id && row.type === 'password.changed'))
    const stored = JSON.stringify(rows).toLowerCase()
    const hashes = await t.deps.db.selectFrom('users').select('password_hash').execute()
    const secrets = [
      password,
      newPassword,
      typedAsName,
      grant.access_token,
      grant.refresh_token,
      refreshed.access_token,
      refreshed.refresh_token,
      ...grant.access_token.split('.'),
      ...hashes.map((row) => row.password_hash),
    ]
    for (const secret of secrets)
      assert.ok(!stored.includes(secret.toLowerCase()), `stored: ${secret.slice(0, 12)}…`)
  })

  it(`purges events older than EVENTS_RETENTION_DAYS (90 by default), and keeps the others`, async () => {
    const user = await registerUser(t.app)
    clock.advance(60 * DAY_MS)
    const patched = await t.app.inject({
      method: 'PATCH',
      url: '/users/me',
      payload: { firstName: 'Later' },
      headers: bearer(await tokenOf(user)),
    })
    assert.equal(patched.statusCode, 200)
    clock.advance(31 * DAY_MS)
    assert.ok((await t.deps.services.events.purge()) > 0)
    const left = (await asAdmin({ user: user.id })).json().events
    assert.deepEqual(
      left.map((event: ApiEvent) => event.type),
      ['user.updated', 'login.succeeded'],
    )
    assert.equal(await t.deps.services.events.purge(), 0, 'a second purge finds nothing')
  })
})

describe('issue 13: tessera events list | tail | purge, and the key commands record events', () => {
  const BIN = fileURLToPath(new URL('../../bin/tessera.js', import.meta.url))
  const dir = mkdtempSync(join(tmpdir(), 'tessera-events-'))
  const databases = sharedTestDatabases()
  let env: Record<string, string>
  let t: TestApp
  let user: TestUser
  const children: ChildProcess[] = []

  before(async () => {
    env = { DATABASE_URL: await databases.url(join(dir, 'tessera.db')) }
    t = await buildTestApp({ env })
    user = await registerUser(t.app)
  })
  after(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
    await t.close()
    await databases.dropAll()
    rmSync(dir, { recursive: true, force: true })
  })

  function start(args: string[]) {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env },
    })
    children.push(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.stdin.end()
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    return { child, exited, stdout: () => stdout, stderr: () => stderr }
  }

  async function tessera(args: string[]) {
    const run = start(args)
    const code = await run.exited
    return { code, stdout: run.stdout(), stderr: run.stderr() }
  }

  async function waitFor(what: string, done: () => boolean, timeoutMs = 15_000) {
    const started = Date.now()
    while (!done()) {
      if (Date.now() - started > timeoutMs) assert.fail(`timed out waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }

  it('events list prints the newest events, filtered by username and type; --json gives the API shape', async () => {
    const table = await tessera(['events', 'list', '--user', user.username])
    assert.equal(table.code, 0, table.stderr)
    const lines = table.stdout.trim().split('\n')
    assert.match(lines[0] ?? '', /^AT\s+TYPE\s+ACTOR\s+USER\s+IP\s+DETAIL$/)
    assert.match(lines[1] ?? '', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\s+login\.succeeded\s+user:/)
    assert.match(lines[2] ?? '', /user\.registered\s+anonymous/)

    const json = await tessera(['events', 'list', '--user', user.id, '--type', 'user.registered', '--json'])
    assert.equal(json.code, 0, json.stderr)
    const events = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    assert.equal(events.length, 1)
    assert.deepEqual(events[0].detail, { username: user.username, roles: ['user'] })

    const bad = await tessera(['events', 'list', '--type', 'nope'])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--type must be one of/)
    const unknown = await tessera(['events', 'list', '--user', 'nobody-at-all'])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /No user "nobody-at-all"/)
  })

  it('events tail prints each event as it is recorded, and stops on SIGINT', async () => {
    const tail = start(['events', 'tail', '--json', '--interval-ms', '100'])
    await waitFor('tail to start', () => tail.stderr().includes('Following security events'))
    assert.equal(tail.stdout(), '', 'nothing recorded before it started')
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/login',
      payload: { username: user.username, password: user.password },
    })
    assert.equal(response.statusCode, 200)
    await waitFor('the login event', () => tail.stdout().includes('login.succeeded'))
    const printed = JSON.parse(tail.stdout().trim().split('\n')[0] ?? '')
    assert.equal(printed.type, 'login.succeeded')
    assert.equal(printed.userId, user.id)
    tail.child.kill('SIGINT')
    assert.equal(await tail.exited, 0)
    assert.equal(tail.stdout().trim().split('\n').length, 1, 'printed once')
  })

  it('keys rotate and keys prune record key.rotated and key.pruned, with the actor cli', async () => {
    const rotated = await tessera(['keys', 'rotate'])
    assert.equal(rotated.code, 0, rotated.stderr)
    const kid = /key: (\S+)/.exec(rotated.stdout)?.[1]
    const listed = await tessera(['events', 'list', '--type', 'key.rotated', '--json'])
    const events = listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    assert.deepEqual(events[0].actor, { kind: 'cli' })
    assert.equal(events[0].detail.kid, kid)
    // The key it retired, as if retired long ago: no token can need it any more.
    const retired = await t.deps.db
      .updateTable('signing_keys')
      .set({ retired_at: 1 })
      .where('state', '=', 'retired')
      .returning('kid')
      .execute()
    const pruned = await tessera(['keys', 'prune'])
    assert.equal(pruned.code, 0, pruned.stderr)
    const prunedEvents = (await tessera(['events', 'list', '--type', 'key.pruned', '--json'])).stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    assert.deepEqual(
      prunedEvents.map((event) => event.detail.kid).sort(),
      retired.map((row) => row.kid).sort(),
    )
    assert.ok(prunedEvents.every((event) => event.actor.kind === 'cli'))
    const again = await tessera(['keys', 'prune'])
    assert.equal(again.stdout.trim(), 'No key to prune.')
    const afterwards = await tessera(['events', 'list', '--type', 'key.pruned', '--json'])
    assert.equal(afterwards.stdout.trim().split('\n').length, retired.length, 'no key pruned, no event')
  })

  it('events purge deletes what is past EVENTS_RETENTION_DAYS, and says how many', async () => {
    const purged = await tessera(['events', 'purge'])
    assert.equal(purged.code, 0, purged.stderr)
    assert.equal(purged.stdout.trim(), 'Purged 0 events.')
    const help = await tessera(['events', '--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /events list[\s\S]*events tail[\s\S]*events purge/)
  })
})
