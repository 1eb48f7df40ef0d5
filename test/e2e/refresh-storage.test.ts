// Issue 12: a session's storage stays constant however often it refreshes, with every guarantee of rotation
// kept: one live token, repeats answered alike within the window, reuse of any older token detected for the
// session's whole life, forged tokens refused without harm, and sessions started before the upgrade kept.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { KyselyPlugin, OperationNode, RootOperationNode, TableNode } from 'kysely'
import { loadConfig } from '../../src/config/load-config.ts'
import { createDb } from '../../src/db/create-db.ts'
import { createFixedClock } from '../../src/lib/clock.ts'
import { newId } from '../../src/lib/ids.ts'
import { refreshTokenFor } from '../../src/sessions/refresh-token.ts'
import { buildTestApp, TEST_ENV, type TestApp } from '../helpers/build-test-app.ts'
import { assertProblem, bearer, registerUser, type TestUser } from '../helpers/fixtures.ts'
import { createTestDatabase } from '../helpers/test-database.ts'

type Grant = { access_token: string; refresh_token: string }

const sessionIdOf = (accessToken: string): string =>
  JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')).sid

async function signIn(t: TestApp, user: Pick<TestUser, 'username' | 'password'>): Promise<Grant> {
  const response = await t.app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { username: user.username, password: user.password },
  })
  assert.equal(response.statusCode, 200, response.body)
  return response.json()
}

const refresh = (t: TestApp, token: string) =>
  t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: token } })

async function refreshed(t: TestApp, token: string): Promise<Grant> {
  const response = await refresh(t, token)
  assert.equal(response.statusCode, 200, response.body)
  return response.json()
}

const me = (t: TestApp, token: string) => t.app.inject({ url: '/auth/me', headers: bearer(token) })

/** Every stored row that belongs to a session: its own, and any refresh-token rows. */
async function rowsOf(t: TestApp, sessionId: string): Promise<number> {
  const sessions = await t.deps.db.selectFrom('sessions').select('id').where('id', '=', sessionId).execute()
  const tokens = await t.deps.db
    .selectFrom('refresh_tokens')
    .select('token_hash')
    .where('session_id', '=', sessionId)
    .execute()
  return sessions.length + tokens.length
}

/** A token in the tagged form, naming `sessionId` and `generation`, with a tag made up: a forgery. */
function forged(sessionId: string, generation: number): string {
  const body = Buffer.alloc(21)
  body.writeUInt8(1, 0)
  body.write(sessionId.replaceAll('-', ''), 1, 16, 'hex')
  body.writeUInt32BE(generation, 17)
  return Buffer.concat([body, randomBytes(32)]).toString('base64url')
}

const tableName = (node: OperationNode | undefined): string =>
  node?.kind === 'TableNode' ? (node as TableNode).table.identifier.name : String(node?.kind)

/** A statement that writes, as "update sessions" or "insert into events"; undefined for one that only reads. */
function writeOf(node: RootOperationNode): string | undefined {
  switch (node.kind) {
    case 'InsertQueryNode':
      return `insert into ${tableName(node.into)}`
    case 'UpdateQueryNode':
      return `update ${tableName(node.table)}`
    case 'DeleteQueryNode':
      return `delete from ${tableName(node.from.froms[0])}`
    case 'RawNode': {
      // sql`...` written by hand: as written.
      const text = node.sqlFragments.join('?').trim()
      return /^(insert|update|delete)\b/i.test(text) ? text : undefined
    }
    default:
      return undefined
  }
}

/**
 * Records the writes (INSERT, UPDATE, DELETE) of every statement run through a database it is a plugin of,
 * in a transaction or not.
 */
function writeRecorder() {
  const writes: string[] = []
  const plugin: KyselyPlugin = {
    transformQuery({ node }) {
      const write = writeOf(node)
      if (write) writes.push(write)
      return node
    },
    transformResult: async ({ result }) => result,
  }
  return {
    plugin,
    /** What `work` gave, and the writes made while it ran. */
    async during<T>(work: () => Promise<T>): Promise<[T, string[]]> {
      writes.length = 0
      const result = await work()
      return [result, writes.splice(0)]
    },
  }
}

describe('refresh tokens in constant storage (issue 12)', () => {
  const clock = createFixedClock(Date.now())
  let t: TestApp
  before(async () => {
    t = await buildTestApp({ overrides: { clock } })
  })
  after(() => t.close())

  it('a session refreshed 2,000 times holds as many rows as after its first refresh', async () => {
    let grant = await signIn(t, await registerUser(t.app))
    const sessionId = sessionIdOf(grant.access_token)
    grant = await refreshed(t, grant.refresh_token)
    const afterFirst = await rowsOf(t, sessionId)
    for (let i = 1; i < 2_000; i++) grant = await refreshed(t, grant.refresh_token)
    assert.equal(await rowsOf(t, sessionId), afterFirst)
    assert.equal((await me(t, grant.access_token)).statusCode, 200)
  })

  it('a refresh is one write: the compare-and-set UPDATE of its session row, and no event', async () => {
    // The app's own database, every statement of which the recorder sees.
    const database = await createTestDatabase()
    const recorder = writeRecorder()
    const db = createDb(loadConfig({ ...TEST_ENV, DATABASE_URL: database.url }).database)
    const counted = await buildTestApp({
      env: { DATABASE_URL: database.url },
      overrides: { db: db.withPlugin(recorder.plugin) },
    })
    try {
      const user = await registerUser(counted.app)
      const [first, atLogin] = await recorder.during(() => signIn(counted, user))
      // A login records an event, in the transaction that starts the session: the recorder sees it.
      assert.ok(atLogin.includes('insert into events'), `${atLogin}`)
      let grant = first
      for (const nth of ['first', 'second', 'third']) {
        const [next, writes] = await recorder.during(() => refreshed(counted, grant.refresh_token))
        assert.deepEqual(writes, ['update sessions'], `the ${nth} refresh writes once, and records no event`)
        grant = next
      }
    } finally {
      await counted.close()
      await database.drop()
    }
  })

  it('a forged token naming a real session and an old generation is 401, and does not revoke the session', async () => {
    const first = await signIn(t, await registerUser(t.app))
    const sessionId = sessionIdOf(first.access_token)
    let grant = await refreshed(t, first.refresh_token)
    grant = await refreshed(t, grant.refresh_token)
    clock.advance(60_000)
    for (const generation of [0, 1, 2, 3, 999]) {
      assertProblem(await refresh(t, forged(sessionId, generation)), 401, 'invalid_refresh_token')
    }
    // A real token with one bit of its tag changed is a forgery too.
    const bytes = Buffer.from(first.refresh_token, 'base64url')
    bytes[bytes.length - 1] = (bytes.at(-1) ?? 0) ^ 1
    assertProblem(await refresh(t, bytes.toString('base64url')), 401, 'invalid_refresh_token')
    assert.equal((await me(t, grant.access_token)).statusCode, 200, 'the session lives on')
    assert.equal((await refresh(t, grant.refresh_token)).statusCode, 200)
  })

  it('logout by a forged refresh token ends nothing', async () => {
    const grant = await signIn(t, await registerUser(t.app))
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      payload: { refresh_token: forged(sessionIdOf(grant.access_token), 0) },
    })
    assert.equal(response.statusCode, 204)
    assert.equal((await me(t, grant.access_token)).statusCode, 200)
  })

  it('the reuse of any older token of the session is detected, however long the session has lived', async () => {
    const first = await signIn(t, await registerUser(t.app))
    let grant = first
    // Refreshed every six days for 24 days (within the 7-day idle and 30-day absolute lifetimes).
    for (let i = 0; i < 4; i++) {
      clock.advance(6 * 86_400_000)
      grant = await refreshed(t, grant.refresh_token)
    }
    assertProblem(await refresh(t, first.refresh_token), 401, 'refresh_token_reused')
    assertProblem(await refresh(t, grant.refresh_token), 401, 'invalid_refresh_token')
    assertProblem(await me(t, grant.access_token), 401, 'invalid_token')
  })

  it('parallel refreshes with one token count one rotation against the per-session limit', async () => {
    const limited = await buildTestApp({ env: { RATE_LIMIT_REFRESH_PER_SESSION: '20' } })
    try {
      const first = await signIn(limited, await registerUser(limited.app))
      const responses = await Promise.all(
        Array.from({ length: 15 }, () => refresh(limited, first.refresh_token)),
      )
      for (const response of responses) assert.equal(response.statusCode, 200, response.body)
      let grant: Grant = (responses[0] as (typeof responses)[number]).json()
      // 19 more rotations fit in the limit of 20: the parallel repeats above took none of it.
      for (let i = 0; i < 19; i++) grant = await refreshed(limited, grant.refresh_token)
      assertProblem(await refresh(limited, grant.refresh_token), 429, 'rate_limited')
    } finally {
      await limited.close()
    }
  })

  it('within the window, only the token spent last is a repeat: an older one is reuse', async () => {
    const first = await signIn(t, await registerUser(t.app))
    const second = await refreshed(t, first.refresh_token)
    const third = await refreshed(t, second.refresh_token)
    assert.equal((await refreshed(t, second.refresh_token)).refresh_token, third.refresh_token)
    assertProblem(await refresh(t, first.refresh_token), 401, 'refresh_token_reused')
  })
})

describe('what a read-only copy of the database gives (issue 12)', () => {
  it('with KEY_ENCRYPTION_SECRET set, nothing stored in it mints a working refresh token', async () => {
    const t = await buildTestApp({ env: { KEY_ENCRYPTION_SECRET: randomBytes(32).toString('base64url') } })
    try {
      const grant = await signIn(t, await registerUser(t.app))
      const sessionId = sessionIdOf(grant.access_token)
      // Every stored text an attacker might try as the tag key, read as bytes every plausible way.
      const secrets = await t.deps.db.selectFrom('server_secrets').select('value').execute()
      const keys = await t.deps.db.selectFrom('signing_keys').select('private_jwk').execute()
      const texts = [...secrets.map((row) => row.value), ...keys.map((row) => row.private_jwk)]
      const candidates = texts.flatMap((text) => [Buffer.from(text, 'base64url'), Buffer.from(text)])
      for (const key of candidates) {
        const minted = refreshTokenFor(key, { sessionId, generation: 0 })
        assertProblem(await refresh(t, minted), 401, 'invalid_refresh_token')
      }
      assert.equal((await refresh(t, grant.refresh_token)).statusCode, 200, 'the real token still works')
    } finally {
      await t.close()
    }
  })
})

describe('sessions started before the upgrade, on this backend (issue 12)', () => {
  const clock = createFixedClock(Date.now())
  let t: TestApp
  before(async () => {
    t = await buildTestApp({ overrides: { clock } })
  })
  after(() => t.close())

  /**
   * A session as migration 0004 leaves one started before it: no generation, its live token a row, and
   * `spent` tokens spent before it (the oldest first, a day apart).
   */
  async function legacySession(
    user: TestUser,
    spent = 0,
  ): Promise<{ sessionId: string; token: string; old: string[] }> {
    const now = Math.floor(clock.now() / 1000)
    const sessionId = newId()
    const token = randomBytes(32).toString('base64url')
    await t.deps.db
      .insertInto('sessions')
      .values({
        id: sessionId,
        user_id: user.id,
        created_at: now,
        last_used_at: now,
        expires_at: now + 30 * 86_400,
        user_agent: null,
        ip: null,
        revoked_at: null,
        revoked_reason: null,
        token_version: 0,
        refresh_generation: null,
        refreshed_at: null,
      })
      .execute()
    const hash = (value: string) => createHash('sha256').update(value).digest('base64url')
    const old = Array.from({ length: spent }, () => randomBytes(32).toString('base64url'))
    const rows = [
      ...old.map((value, i) => ({ value, spentAt: now - (spent - i) * 86_400 })),
      { value: token, spentAt: null },
    ]
    for (const { value, spentAt } of rows) {
      await t.deps.db
        .insertInto('refresh_tokens')
        .values({ token_hash: hash(value), session_id: sessionId, created_at: now, spent_at: spentAt })
        .execute()
    }
    return { sessionId, token, old }
  }

  it('its token refreshes once into the new form; parallel refreshes with it agree; reuse later revokes', async () => {
    const user = await registerUser(t.app)
    const { sessionId, token } = await legacySession(user)
    const responses = await Promise.all(Array.from({ length: 6 }, () => refresh(t, token)))
    const tokens = new Set(responses.map((response) => response.json().refresh_token))
    assert.deepEqual(
      responses.map((response) => response.statusCode),
      Array(6).fill(200),
    )
    assert.equal(tokens.size, 1)
    const [converted] = tokens
    assert.match(String(converted), /^[A-Za-z0-9_-]{71}$/)
    assert.equal(await rowsOf(t, sessionId), 2, 'the legacy row stays, spent, and no row is added')
    clock.advance(10_000)
    assertProblem(await refresh(t, token), 401, 'refresh_token_reused')
    assertProblem(await refresh(t, String(converted)), 401, 'invalid_refresh_token')
  })

  it('right after the conversion, a legacy token spent days before is reuse, not a repeat', async () => {
    const { token, old } = await legacySession(await registerUser(t.app), 2)
    const converted = await refreshed(t, token)
    clock.advance(1_000)
    assertProblem(await refresh(t, String(old[0])), 401, 'refresh_token_reused')
    assertProblem(await refresh(t, converted.refresh_token), 401, 'invalid_refresh_token')
  })
})

describe('sessions started before the upgrade, in a database of the previous release (issue 12)', () => {
  // test/fixtures/sessions-0.1.0.db: an SQLite database written by the release before this change (see
  // test/fixtures/README.md): user "legacy", one session refreshed twice, one never refreshed.
  const fixture = JSON.parse(
    readFileSync(new URL('../fixtures/sessions-0.1.0.json', import.meta.url), 'utf8'),
  )
  let dir: string
  let t: TestApp
  const clock = createFixedClock(0)

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-upgrade-'))
    const file = join(dir, 'tessera.db')
    copyFileSync(new URL('../fixtures/sessions-0.1.0.db', import.meta.url), file)
    t = await buildTestApp({ env: { DATABASE_URL: file }, overrides: { clock } })
    const { at } = await t.deps.db
      .selectFrom('sessions')
      .select((eb) => eb.fn.max('created_at').as('at'))
      .executeTakeFirstOrThrow()
    // A minute after the fixture was written: its sessions are as live as they were then.
    clock.advance(Number(at) * 1000 + 60_000)
  })
  after(async () => {
    await t.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('a refresh token issued before the upgrade still refreshes, into the new form', async () => {
    const grant = await refreshed(t, fixture.rotated.live)
    assert.match(grant.refresh_token, /^[A-Za-z0-9_-]{71}$/)
    assert.equal((await me(t, grant.access_token)).statusCode, 200)
    const next = await refreshed(t, grant.refresh_token)
    assert.equal((await me(t, next.access_token)).statusCode, 200)
  })

  it('a repeat of a converted token within the window gets the same new token; after it, reuse revokes', async () => {
    const grant = await refreshed(t, fixture.fresh.live)
    clock.advance(2_000)
    assert.equal((await refreshed(t, fixture.fresh.live)).refresh_token, grant.refresh_token)
    clock.advance(10_000)
    assertProblem(await refresh(t, fixture.fresh.live), 401, 'refresh_token_reused')
    assertProblem(await refresh(t, grant.refresh_token), 401, 'invalid_refresh_token')
  })

  it('the reuse of a token spent before the upgrade is still detected, and revokes the session', async () => {
    const login = await signIn(t, fixture)
    assertProblem(await refresh(t, fixture.rotated.spent[0]), 401, 'refresh_token_reused')
    const sessions = await t.app.inject({ url: '/auth/sessions', headers: bearer(login.access_token) })
    const ids = sessions.json().sessions.map((session: { current: boolean }) => session.current)
    assert.deepEqual(ids, [true], 'only the session started after the upgrade is left')
  })
})
